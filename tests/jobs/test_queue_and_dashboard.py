"""Jobs started from the dashboard go through the real queue, on Huey's SQLite storage (the embedded
default) and on Redis (production; CI starts a throwaway redis-server and sets HYPE_TEST_REDIS_URL),
and a consumer runs them: the study page and jobs.json show their progress, their end and errors."""

from __future__ import annotations

import os
import re
import secrets
import time

import pytest

from hype.accounts import create_researcher
from hype.models import Job, MetricResult

pytestmark = pytest.mark.db
PASSWORD = "correct horse battery"
REDIS_URL = os.environ.get("HYPE_TEST_REDIS_URL")
REQUIRE_REDIS = os.environ.get("HYPE_TEST_REQUIRE_REDIS") == "1"
FAST = ["kid", "prd", "prdc"]


@pytest.fixture(params=["sqlite-queue", "redis-queue"])
def queue_config(request, config):
    """The test's config with the queue under test (a Redis queue of its own name, so tests never
    take each other's jobs)."""
    if request.param == "sqlite-queue":
        return config
    if not REDIS_URL:
        if REQUIRE_REDIS:
            pytest.fail("HYPE_TEST_REQUIRE_REDIS=1 but HYPE_TEST_REDIS_URL is not set")
        pytest.skip("no Redis server (set HYPE_TEST_REDIS_URL)")
    pytest.importorskip("redis")
    return config.with_overrides(extra={**config.extra, "redis_url": REDIS_URL,
                                        "queue_name": f"hype-test-{secrets.token_hex(4)}"})


@pytest.fixture
def signed_in(queue_config, engine, session, metrics_study, monkeypatch, tiny_weights):
    from hype.app import create_app

    monkeypatch.setenv("HYPE_INCEPTION_WEIGHTS", str(tiny_weights))
    owner = create_researcher(session, "owner@example.org", PASSWORD)
    metrics_study.owner_id = owner.id
    session.commit()
    client = create_app(queue_config).test_client()
    html = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)
    assert client.post("/login", data={"email": owner.email, "password": PASSWORD, "csrf_token": token}).status_code == 302
    return client


def _post(client, study_id: int, kind: str):
    html = client.get(f"/studies/{study_id}").get_data(as_text=True)
    assert 'id="start-metrics"' in html and "Compute metrics" in html
    token = re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)
    return client.post(f"/studies/{study_id}/jobs/{kind}", data={"csrf_token": token})


def _wait_done(client, study_id: int, job_id: int, timeout_s: float = 300):
    seen = []
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        jobs = {j["id"]: j for j in client.get(f"/studies/{study_id}/jobs.json").get_json()["jobs"]}
        seen.append((jobs[job_id]["state"], jobs[job_id]["percent"]))
        if not jobs[job_id]["active"]:
            return jobs[job_id], seen
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} did not end: {seen[-3:]}")


def test_dashboard_jobs_run_through_the_queue(signed_in, queue_config, session, metrics_study, monkeypatch):
    from hype.jobs.queue import get_queue, start_embedded_worker

    client = signed_in
    response = _post(client, metrics_study.id, "metrics")
    assert response.status_code == 302 and response.headers["Location"].endswith("#jobs")
    job = session.query(Job).one()
    job.params = {**job.params, "metrics": FAST, "batch_size": 4}  # FID's 2048-d eigendecompositions take minutes here
    session.commit()
    assert get_queue(queue_config).pending_count() == 1
    page = client.get(f"/studies/{metrics_study.id}").get_data(as_text=True)
    assert f'data-job="{job.id}"' in page and "waiting for a worker" in page
    # a second click while it waits is refused with a message, and queues nothing
    again = _post(client, metrics_study.id, "metrics")
    assert "already waiting" in client.get(again.headers["Location"]).get_data(as_text=True)
    assert get_queue(queue_config).pending_count() == 1

    consumer = start_embedded_worker(queue_config)
    try:
        view, seen = _wait_done(client, metrics_study.id, job.id)
        assert view["state"] == "done" and view["percent"] == 100, view
        assert any(state == "running" and 0 < pct < 100 for state, pct in seen), seen  # progress was visible
        session.expire_all()
        assert session.query(MetricResult).count() == 2
        report = client.get(f"/studies/{metrics_study.id}/report.html").get_data(as_text=True)
        assert "KID" in report

        response = _post(client, metrics_study.id, "report")
        report_job = max(session.query(Job).all(), key=lambda j: j.id)
        view, _ = _wait_done(client, metrics_study.id, report_job.id)
        assert view["state"] == "done", view
        page = client.get(f"/studies/{metrics_study.id}").get_data(as_text=True)
        link = f"/studies/{metrics_study.id}/jobs/{report_job.id}/report.html"
        assert link in page
        rendered = client.get(link)
        assert rendered.status_code == 200 and metrics_study.name in rendered.get_data(as_text=True)
    finally:
        consumer.stop(graceful=True)


def test_a_failed_job_shows_its_error_on_the_study_page(signed_in, queue_config, session, metrics_study, monkeypatch,
                                                        tmp_path):
    from hype.jobs.queue import start_embedded_worker

    monkeypatch.setenv("HYPE_INCEPTION_WEIGHTS", str(tmp_path / "private" / "gone.pt"))
    client = signed_in
    _post(client, metrics_study.id, "metrics")
    job = session.query(Job).one()
    consumer = start_embedded_worker(queue_config)
    try:
        view, _ = _wait_done(client, metrics_study.id, job.id, 60)
    finally:
        consumer.stop(graceful=True)
    assert view["state"] == "failed" and "gone.pt" in view["error"] and str(tmp_path) not in view["error"]
    page = client.get(f"/studies/{metrics_study.id}").get_data(as_text=True)
    assert "job-error" in page and "gone.pt" in page and str(tmp_path) not in page


def test_other_researchers_cannot_see_or_start_jobs(signed_in, session, metrics_study):
    other = create_researcher(session, "other@example.org", PASSWORD)
    session.commit()
    from hype.app import create_app

    assert signed_in.get(f"/studies/{metrics_study.id}/jobs.json").status_code == 200
    client = signed_in.application.test_client()
    html = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)
    client.post("/login", data={"email": other.email, "password": PASSWORD, "csrf_token": token})
    assert client.get(f"/studies/{metrics_study.id}/jobs.json").status_code == 404
    assert client.post(f"/studies/{metrics_study.id}/jobs/metrics", data={"csrf_token": token}).status_code in (400, 404)
    assert session.query(Job).count() == 0
