"""Researcher routes: sign-in, ownership, CSRF, study lifecycle from zips, monitoring, exclusions."""

from __future__ import annotations

import csv
import io
import re
import zipfile

import numpy as np
import pytest
from sqlalchemy import select

from hype.accounts import create_researcher
from hype.models import Exclusion, Study
from hype.sessions import Answer, BrowserCheck, current_trial, enter, finish_instructions, identity_from_params, record_answer, record_browser_check, serve_trial
from hype.studies import study_settings

from pool_factory import make_pool_images

PASSWORD = "correct horse battery"


def csrf_token(client, path: str = "/login") -> str:
    html = client.get(path).get_data(as_text=True)
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, f"no CSRF token on {path}"
    return match.group(1)


def login(client, email: str) -> None:
    token = csrf_token(client)
    response = client.post("/login", data={"email": email, "password": PASSWORD, "csrf_token": token})
    assert response.status_code == 302, response.get_data(as_text=True)


@pytest.fixture
def researchers(session):
    alice = create_researcher(session, "alice@example.org", PASSWORD)
    bob = create_researcher(session, "bob@example.org", PASSWORD)
    session.commit()
    return alice, bob


@pytest.fixture
def owned_study(make_study, researchers, session):
    study = make_study()
    study.owner_id = researchers[0].id
    session.commit()
    return study


def play(session, study, worker: str, *, accuracy: float, rng, reaction_ms: float = 900.0, platform_params=None) -> int:
    """One worker through the real session service, answering correctly with probability `accuracy`."""
    identity = identity_from_params(platform_params or {}, worker)
    assignment = enter(session, study, identity).assignment
    finish_instructions(assignment)
    record_browser_check(session, assignment, BrowserCheck(16.7, 1200, 900))
    settings = study_settings(study)
    n = 0
    while (trial := current_trial(session, assignment)) is not None:
        exposure = serve_trial(session, assignment, settings, trial)
        right = trial.phase == "qualification" or rng.random() < accuracy
        record_answer(
            session,
            assignment,
            Answer(
                trial_token=trial.image_token,
                judged_fake=trial.is_fake if right else not trial.is_fake,
                idempotency_key=f"k{worker[-6:]}{n:08d}",
                measured_ms=exposure if exposure is not None else reaction_ms,
                mask_measured_ms=(33.3,) * 4 if exposure is not None else (),
                refresh_interval_ms=16.7,
                reaction_ms=reaction_ms,
            ),
        )
        n += 1
    session.commit()
    return assignment.id


RESEARCHER_GETS = [
    "/studies",
    "/studies/new",
    "/studies/{id}",
    "/studies/{id}/bonus.csv",
    "/studies/{id}/report.html",
    "/studies/{id}/export.zip",
]
RESEARCHER_POSTS = [
    "/studies/new",
    "/studies/{id}/images",
    "/studies/{id}/publish",
    "/studies/{id}/close",
    "/studies/{id}/exclusions",
    "/studies/{id}/exclusions/1/revoke",
    "/studies/{id}/exclusion-rules",
]


def test_every_researcher_route_needs_sign_in(client, owned_study):
    for path in RESEARCHER_GETS:
        response = client.get(path.format(id=owned_study.id))
        assert response.status_code == 302 and "/login" in response.headers["Location"], path
    response = client.get(f"/studies/{owned_study.id}/live.json")
    assert response.status_code == 401 and response.json["error"] == "unauthorized"
    token = csrf_token(client)
    for path in RESEARCHER_POSTS:
        response = client.post(path.format(id=owned_study.id), data={"csrf_token": token})
        assert response.status_code == 302 and "/login" in response.headers["Location"], path


def test_wrong_password_is_refused(client, researchers):
    token = csrf_token(client)
    response = client.post("/login", data={"email": "alice@example.org", "password": "nope-nope", "csrf_token": token})
    assert response.status_code == 401 and "Wrong e-mail or password" in response.get_data(as_text=True)
    assert client.get("/studies").status_code == 302


def test_another_researchers_study_is_404(client, owned_study):
    login(client, "bob@example.org")
    for path in RESEARCHER_GETS[2:] + ["/studies/{id}/live.json"]:
        assert client.get(path.format(id=owned_study.id)).status_code == 404, path
    token = csrf_token(client, "/studies/new")
    for path in RESEARCHER_POSTS[1:]:
        assert client.post(path.format(id=owned_study.id), data={"csrf_token": token}).status_code == 404, path
    assert owned_study.name not in client.get("/studies").get_data(as_text=True)


def test_form_post_without_csrf_token_is_400(client, owned_study, session):
    login(client, "alice@example.org")
    response = client.post(f"/studies/{owned_study.id}/close", data={})
    assert response.status_code == 400
    session.expire_all()
    assert session.get(Study, owned_study.id).status == "published"
    assert client.post("/login", data={"email": "alice@example.org", "password": PASSWORD}).status_code == 400


def _zip_of(files) -> io.BytesIO:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for f in files:
            zf.writestr(f.name, f.data)
    buf.seek(0)
    return buf


def test_create_upload_publish_close_from_the_browser_forms(client, researchers, session):
    login(client, "alice@example.org")
    token = csrf_token(client, "/studies/new")
    response = client.post(
        "/studies/new",
        data={"csrf_token": token, "name": "Faces <b>v2</b>", "mode": "hype-infinity", "seed": "11", "qualification_enabled": "on",
              "qualification_n_real": "4", "qualification_n_fake": "4", "infinity_n_real": "5", "infinity_n_fake": "5"},
    )
    assert response.status_code == 302
    study = session.scalar(select(Study).where(Study.name == "Faces <b>v2</b>"))
    assert study.owner_id == researchers[0].id and study.seed == 11
    assert study_settings(study).infinity.n_real == 5 and study_settings(study).qualification.n_fake == 4
    page = client.get(f"/studies/{study.id}").get_data(as_text=True)
    assert "Faces &lt;b&gt;v2&lt;/b&gt;" in page and "Faces <b>v2</b>" not in page

    rng = np.random.default_rng(3)
    publish_early = client.post(f"/studies/{study.id}/publish", data={"csrf_token": token}, follow_redirects=True)
    assert "cannot publish" in publish_early.get_data(as_text=True)
    uploads = [("real", None, make_pool_images(20, rng, 16, smooth=False)), ("fake", "gan", make_pool_images(15, rng, 16, smooth=True))]
    for pool, model, files in uploads:
        data = {"csrf_token": token, "pool": pool, "archive": (_zip_of(files), "images.zip")}
        if model:
            data["model_name"] = model
        page = client.post(f"/studies/{study.id}/images", data=data, content_type="multipart/form-data", follow_redirects=True)
        assert f"Added {len(files)} images" in page.get_data(as_text=True)
    bad = client.post(f"/studies/{study.id}/images", data={"csrf_token": token, "pool": "fake", "archive": (_zip_of(files[:1]), "x.zip")},
                      content_type="multipart/form-data", follow_redirects=True)
    assert "name the model" in bad.get_data(as_text=True)

    page = client.post(f"/studies/{study.id}/publish", data={"csrf_token": token}, follow_redirects=True).get_data(as_text=True)
    assert "Published" in page and f"/s/{study.slug}" in page and "ExternalQuestion" in page and "PROLIFIC_PID" in page
    assert study.completion_code in page
    page = client.post(f"/studies/{study.id}/close", data={"csrf_token": token}, follow_redirects=True).get_data(as_text=True)
    session.expire_all()
    assert session.get(Study, study.id).status == "closed" and "Closed" in page


def test_invalid_settings_are_reported_not_stored(client, researchers, session):
    login(client, "alice@example.org")
    token = csrf_token(client, "/studies/new")
    response = client.post("/studies/new", data={"csrf_token": token, "name": "x", "mode": "hype-time", "time_trials_per_block": "7"})
    assert response.status_code == 400 and "even trials_per_block" in response.get_data(as_text=True)
    response = client.post("/studies/new", data={"csrf_token": token, "name": "x", "mode": "hype-time", "time_start_ms": "fast"})
    assert response.status_code == 400 and "must be a number" in response.get_data(as_text=True)
    assert session.scalar(select(Study).where(Study.name == "x")) is None


def test_monitoring_exclusions_rules_and_bonus(client, owned_study, session):
    rng = np.random.default_rng(0)
    good = [play(session, owned_study, f"anon-good{k}", accuracy=0.9, rng=rng) for k in range(3)]
    fast = play(session, owned_study, "anon-fast0", accuracy=0.5, rng=rng, reaction_ms=120.0)
    login(client, "alice@example.org")
    live = client.get(f"/studies/{owned_study.id}/live.json").json
    assert sum(p["completed"] for p in live["progress"]) == 4
    assert sum(p["judgments"] for p in live["progress"]) == 40
    assert live["score"]["available"] and live["score"]["totals"]["scored_evaluators"] == 4

    token = csrf_token(client, f"/studies/{owned_study.id}")
    client.post(f"/studies/{owned_study.id}/exclusion-rules",
                data={"csrf_token": token, "use_fast": "on", "min_median_reaction_ms": "300"})
    excl = session.scalars(select(Exclusion)).all()
    assert [(e.assignment_id, e.rule) for e in excl] == [(fast, "too-fast")]
    live = client.get(f"/studies/{owned_study.id}/live.json").json
    assert live["score"]["totals"]["scored_evaluators"] == 3

    client.post(f"/studies/{owned_study.id}/exclusions", data={"csrf_token": token, "assignment_id": str(good[0]), "reason": "spoke to us"})
    assert client.get(f"/studies/{owned_study.id}/live.json").json["score"]["totals"]["scored_evaluators"] == 2
    page = client.get(f"/studies/{owned_study.id}").get_data(as_text=True)
    assert "spoke to us" in page and "too-fast" in page
    live_box = page[page.index('id="live-score"'):page.index('id="download-report"')]
    assert "<table>" in live_box and "alpha" in live_box and "beta" in live_box, "live score must render on page load"
    missing_reason = client.post(f"/studies/{owned_study.id}/exclusions", data={"csrf_token": token, "assignment_id": str(good[1]), "reason": " "}, follow_redirects=True)
    assert "say why" in missing_reason.get_data(as_text=True)

    by_hand = session.scalar(select(Exclusion).where(Exclusion.rule.is_(None)))
    client.post(f"/studies/{owned_study.id}/exclusions/{by_hand.id}/revoke", data={"csrf_token": token})
    assert client.get(f"/studies/{owned_study.id}/live.json").json["score"]["totals"]["scored_evaluators"] == 3

    sheet = list(csv.DictReader(io.StringIO(client.get(f"/studies/{owned_study.id}/bonus.csv").get_data(as_text=True))))
    assert len(sheet) == 4
    for row in sheet:
        assert float(row["bonus_usd"]) == pytest.approx(int(row["correct_answers"]) * 0.02)


def test_user_supplied_names_are_escaped_on_the_dashboard(client, make_study, researchers, session):
    hostile = "<img src=x onerror=alert(1)>"
    study = make_study(models=(hostile, "plain"))
    study.owner_id = researchers[0].id
    study.name = "<script>alert('study')</script>"
    session.commit()
    play(session, study, "anon-000001", accuracy=1.0, rng=np.random.default_rng(1))
    login(client, "alice@example.org")
    page = client.get(f"/studies/{study.id}").get_data(as_text=True)
    assert hostile not in page and "&lt;img src=x onerror=alert(1)&gt;" in page
    assert "<script>alert('study')</script>" not in page
    listing = client.get("/studies").get_data(as_text=True)
    assert "<script>alert(" not in listing


def test_hostile_worker_ids_never_enter(client, owned_study):
    response = client.post(f"/api/s/{owned_study.slug}/sessions",
                           json={"consent": True, "params": {"PROLIFIC_PID": "<script>alert(1)</script>", "STUDY_ID": "s", "SESSION_ID": "t"}})
    assert response.status_code == 400 and "PROLIFIC_PID" in response.json["message"]
