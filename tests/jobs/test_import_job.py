"""A large image import from the dashboard runs as a job: the request returns at once, the job adds
every image or none, and the uploaded zip is removed either way."""

from __future__ import annotations

import io
import re
import zipfile

import numpy as np
import pytest

from hype.accounts import create_researcher
from hype.models import Image, Job
from pool_factory import make_pool_images

PASSWORD = "correct horse battery"


def _zip(files) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for f in files:
            zf.writestr(f.name, f.data)
    return buf.getvalue()


@pytest.fixture
def client_and_study(app, session, monkeypatch):
    from hype.studies import create_study

    monkeypatch.setattr("hype.web.researcher.LARGE_IMPORT_BYTES", 1)  # every upload counts as large here
    owner = create_researcher(session, "imp@example.org", PASSWORD)
    study = create_study(session, name="imports", mode="hype-infinity", seed=1, owner_id=owner.id)
    session.commit()
    client = app.test_client()
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").get_data(as_text=True)).group(1)
    client.post("/login", data={"email": owner.email, "password": PASSWORD, "csrf_token": token})
    return client, study


def _upload(client, study, data: bytes, pool="real", model=""):
    page = client.get(f"/studies/{study.id}").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    return client.post(f"/studies/{study.id}/images", data={
        "csrf_token": token, "pool": pool, "model_name": model, "archive": (io.BytesIO(data), "pool.zip")},
        content_type="multipart/form-data")


def test_large_upload_runs_as_a_job_that_adds_everything(client_and_study, config, session):
    from hype.jobs import run_job

    client, study = client_and_study
    response = _upload(client, study, _zip(make_pool_images(12, np.random.default_rng(1), 32, smooth=False)))
    assert response.status_code == 302 and response.headers["Location"].endswith("#jobs")
    job = session.query(Job).one()
    assert job.kind == "import" and job.state == "queued" and session.query(Image).count() == 0
    assert run_job(config, job.id) == "done"
    session.expire_all()
    assert session.query(Image).filter(Image.pool == "real").count() == 12
    assert "added 12 images" in session.get(Job, job.id).message
    assert not list((config.staging_dir / "uploads").glob("*.zip"))


def test_a_bad_file_fails_the_import_job_and_adds_nothing(client_and_study, config, session):
    from hype.images import RawFile
    from hype.jobs import job_view, run_job

    client, study = client_and_study
    files = make_pool_images(5, np.random.default_rng(2), 32, smooth=False) + [RawFile("broken.png", b"not a png")]
    _upload(client, study, _zip(files))
    job = session.query(Job).one()
    assert run_job(config, job.id) == "failed"
    session.expire_all()
    view = job_view(session.get(Job, job.id))
    assert "broken.png" in view["error"] and str(config.data_dir) not in view["error"]
    assert session.query(Image).count() == 0
    assert not list((config.staging_dir / "uploads").glob("*.zip"))
