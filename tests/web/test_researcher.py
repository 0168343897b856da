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
from hype.studies import study_settings
from pool_factory import make_pool_images
from session_player import play

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
    "/studies/{id}/reopen",
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
    assert sum(p["valid"] for p in live["progress"]) == 4 and not live["complete"]
    assert sum(p["judgments"] for p in live["progress"]) == 40
    assert live["score"]["available"] and live["score"]["totals"]["scored_evaluators"] == 4

    token = csrf_token(client, f"/studies/{owned_study.id}")
    client.post(f"/studies/{owned_study.id}/exclusion-rules",
                data={"csrf_token": token, "use_fast": "on", "min_median_reaction_ms": "300"})
    excl = session.scalars(select(Exclusion)).all()
    assert [(e.assignment_id, e.rule) for e in excl] == [(fast, "too-fast")]
    live = client.get(f"/studies/{owned_study.id}/live.json").json
    assert live["score"]["totals"]["scored_evaluators"] == 3
    assert (sum(p["valid"] for p in live["progress"]), sum(p["excluded"] for p in live["progress"])) == (3, 1)

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
    assert len(sheet) == 3, "the worker excluded by the too-fast rule is left out of the bonus sheet"
    for row in sheet:
        assert float(row["bonus_usd"]) == pytest.approx(int(row["correct_answers"]) * 0.02)


def test_dashboard_changes_the_target_says_when_complete_closes_and_reopens(client, owned_study, session):
    from hype.recruitment import set_recruitment

    set_recruitment(session, owned_study, evaluators_per_model=1)
    session.commit()
    rng = np.random.default_rng(1)
    for k in range(2):  # one per model (alpha, beta)
        play(session, owned_study, f"anon-done{k}", accuracy=0.9, rng=rng)
    login(client, "alice@example.org")
    page_url = f"/studies/{owned_study.id}"
    token = csrf_token(client, page_url)
    page = client.get(page_url).get_data(as_text=True)
    assert '<p id="study-complete" class="notice">Complete: every model has its 1 valid evaluator, so nobody new is taken.' in page
    assert page.count("<td>1 / 1</td>") == 2 and client.get(f"{page_url}/live.json").json["complete"] is True

    def save(**form):
        response = client.post(f"{page_url}/settings", data={"csrf_token": token, **form}, follow_redirects=True)
        return response.status_code, response.get_data(as_text=True)

    status, page = save(evaluators_per_model="1", recruitment_idle_timeout_minutes="30", recruitment_close_when_complete="on")
    assert status == 200 and "so the study was closed" in page and 'id="reopen"' in page
    session.refresh(owned_study)
    assert owned_study.status == "closed" and study_settings(owned_study).recruitment.close_when_complete
    settings_page = client.get(f"{page_url}/settings").get_data(as_text=True)
    assert "This study is closed" in settings_page and re.search(r'name="infinity_n_real"[^>]*disabled', settings_page)

    page = client.post(f"{page_url}/reopen", data={"csrf_token": token}, follow_redirects=True).get_data(as_text=True)
    assert "raise the target" in page
    status, page = save(evaluators_per_model="2", recruitment_idle_timeout_minutes="45", recruitment_close_when_complete="on")
    assert page.count("<td>1 / 2</td>") == 2 and "<td>1 to go</td>" in page
    assert '<p id="study-complete" class="notice" hidden>' in page and "no activity for 45 minutes" in page
    session.refresh(owned_study)
    assert owned_study.status == "published" and study_settings(owned_study).evaluators_per_model == 2

    status, refused = save(evaluators_per_model="0", recruitment_idle_timeout_minutes="45")
    assert status == 400 and "evaluators_per_model must be &gt;= 1" in refused


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


# -- issue 16: every protocol setting in the form, editable until the first worker starts ------------------


def _leaf_paths(data: dict, prefix: str = "") -> list[str]:
    out = []
    for key, value in data.items():
        out += _leaf_paths(value, f"{prefix}{key}.") if isinstance(value, dict) else [f"{prefix}{key}"]
    return out


def test_new_study_form_offers_every_protocol_setting(client, researchers):
    from hype.protocol import StudySettings

    login(client, "alice@example.org")
    page = client.get("/studies/new").get_data(as_text=True)
    paths = [p for p in _leaf_paths(StudySettings().to_dict()) if p not in ("mode", "seed")]
    missing = [p for p in paths if f'name="{p.replace(".", "_")}"' not in page]
    assert not missing, missing
    assert "PROTOCOL.md" not in page and "docs/protocol.md" in page


def test_form_sets_pay_countdown_masks_exposure_and_steps(client, researchers, session):
    login(client, "alice@example.org")
    token = csrf_token(client, "/studies/new")
    form = {"csrf_token": token, "name": "tuned", "mode": "hype-time", "qualification_enabled": "on",
            "pay_base_usd": "1.5", "pay_bonus_per_correct_usd": "0.03", "time_countdown_steps": "2",
            "time_countdown_ms": "400", "time_n_masks": "3", "time_mask_ms": "40", "time_min_ms": "50",
            "time_max_ms": "800", "time_start_ms": "400", "time_step_down_ms": "5", "time_step_up_ms": "15",
            "time_interleave_blocks": "on", "statistics_confidence_level": "0.9"}
    assert client.post("/studies/new", data=form).status_code == 302
    s = study_settings(session.scalar(select(Study).where(Study.name == "tuned")))
    assert (s.pay.base_usd, s.pay.bonus_per_correct_usd) == (1.5, 0.03)
    assert (s.time.countdown_steps, s.time.countdown_ms, s.time.n_masks, s.time.mask_ms) == (2, 400.0, 3, 40.0)
    assert (s.time.min_ms, s.time.max_ms, s.time.start_ms, s.time.step_down_ms, s.time.step_up_ms) == (50, 800, 400, 5, 15)
    assert s.time.interleave_blocks and s.qualification.enabled and s.statistics.confidence_level == 0.9
    assert not s.statistics.exclude_flagged_trials  # an unticked box is off, as a browser sends it
    assert s.time.adaptive_rule == "threshold"  # no choice sent: the default rule


def test_form_chooses_the_quest_exposure_rule_and_shows_the_studys_own(client, researchers, session):
    """The exposure rule is a setting like the others: chosen on the form, stored with the study, and the
    form shows the study's own rule, not today's default."""
    login(client, "alice@example.org")
    assert 'name="time_adaptive_rule"' in client.get("/studies/new").get_data(as_text=True)
    token = csrf_token(client, "/studies/new")
    form = {"csrf_token": token, "name": "joint", "mode": "hype-time", "time_adaptive": "on",
            "time_adaptive_rule": "parameters"}
    assert client.post("/studies/new", data=form).status_code == 302
    study = session.scalar(select(Study).where(Study.name == "joint"))
    assert study_settings(study).time.adaptive and study_settings(study).time.adaptive_rule == "parameters"
    page = client.get(f"/studies/{study.id}/settings").get_data(as_text=True)
    assert '<option value="parameters" selected>' in page and '<option value="threshold">' in page


@pytest.mark.parametrize("field, value, message", [
    ("time_min_ms", "600", "0 < min_ms <= start_ms <= max_ms"),
    ("qualification_pass_real", "1.5", "is a share in [0, 1]"),
    ("time_n_blocks", "2.5", "must be a whole number"),
    ("pay_base_usd", "inf", "must be a finite number"),
    ("statistics_n_resamples", "10", "n_resamples must be >= 100"),
    ("time_adaptive_rule", "entropy", "must be one of threshold, parameters, not 'entropy'"),
])
def test_form_validation_is_the_study_files(client, researchers, session, field, value, message):
    from hype.protocol import SettingsError, StudySettings

    login(client, "alice@example.org")
    token = csrf_token(client, "/studies/new")
    response = client.post("/studies/new", data={"csrf_token": token, "name": "bad", "mode": "hype-time", field: value})
    from markupsafe import escape

    assert response.status_code == 400 and str(escape(message)) in response.get_data(as_text=True)
    assert session.scalar(select(Study).where(Study.name == "bad")) is None
    if field in ("time_min_ms", "qualification_pass_real", "statistics_n_resamples"):  # a study file says the same
        section, key = field.split("_", 1)
        with pytest.raises(SettingsError, match=re.escape(message)):
            StudySettings.from_dict({"mode": "hype-time", section: {key: float(value) if "." in value else int(value)}})


def test_settings_change_until_the_first_worker_then_only_target_and_pay(client, owned_study, session):
    login(client, "alice@example.org")
    url = f"/studies/{owned_study.id}/settings"
    token = csrf_token(client, url)
    page = client.get(url).get_data(as_text=True)
    assert 'name="infinity_n_real"' in page and "disabled" not in page
    client.post(url, data={"csrf_token": token, "infinity_n_real": "6", "qualification_enabled": "on",
                           "statistics_exclude_flagged_trials": "on"})
    session.expire_all()
    assert study_settings(owned_study).infinity.n_real == 6
    too_many = client.post(url, data={"csrf_token": token, "infinity_n_real": "500", "qualification_enabled": "on"})
    assert too_many.status_code == 400 and "pools are too small" in too_many.get_data(as_text=True)

    play(session, owned_study, "anon-first", accuracy=0.9, rng=np.random.default_rng(1))
    page = client.get(url).get_data(as_text=True)
    assert "only the target" in page
    assert re.search(r'name="infinity_n_real"[^>]*disabled', page) and not re.search(r'name="pay_base_usd"[^>]*disabled', page)
    response = client.post(url, data={"csrf_token": token, "infinity_n_real": "7", "evaluators_per_model": "40",
                                      "pay_base_usd": "2", "pay_bonus_per_correct_usd": "0.05"})
    assert response.status_code == 302
    session.expire_all()
    s = study_settings(owned_study)
    assert (s.infinity.n_real, s.evaluators_per_model, s.pay.base_usd, s.pay.bonus_per_correct_usd) == (6, 40, 2.0, 0.05)
    assert s.qualification.enabled  # locked checkboxes are not sent, and not read
    from hype.studies import StudyError, update_settings

    with pytest.raises(StudyError, match="only the target and the pay"):
        update_settings(session, owned_study, {"infinity": {"n_real": 8}})


def test_upload_with_resize_brings_other_sizes_to_the_study_size(client, researchers, session):
    login(client, "alice@example.org")
    token = csrf_token(client, "/studies/new")
    client.post("/studies/new", data={"csrf_token": token, "name": "sizes", "mode": "hype-infinity"})
    study = session.scalar(select(Study).where(Study.name == "sizes"))
    rng = np.random.default_rng(5)
    for size, resize in ((16, ""), (24, "16x16")):
        data = {"csrf_token": token, "pool": "real", "resize": resize,
                "archive": (_zip_of(make_pool_images(3, rng, size, smooth=False)), "r.zip")}
        page = client.post(f"/studies/{study.id}/images", data=data, content_type="multipart/form-data", follow_redirects=True)
        assert "Added 3 images (16×16)" in page.get_data(as_text=True)
    data = {"csrf_token": token, "pool": "real", "resize": "big", "archive": (_zip_of(make_pool_images(1, rng, 16, smooth=False)), "r.zip")}
    page = client.post(f"/studies/{study.id}/images", data=data, content_type="multipart/form-data", follow_redirects=True)
    assert "resize is width x height" in page.get_data(as_text=True)


def test_live_score_shows_no_ci_below_the_minimum_and_no_cli_words(client, owned_study, session):
    from hype.scoring import MIN_EVALUATORS_FOR_CI

    login(client, "alice@example.org")
    page = client.get(f"/studies/{owned_study.id}").get_data(as_text=True)
    assert "No score yet" in page and "include_incomplete" not in page and "--include" not in page
    play(session, owned_study, "anon-only", accuracy=0.9, rng=np.random.default_rng(2))
    live = client.get(f"/studies/{owned_study.id}/live.json").json["score"]
    row = next(r for r in live["leaderboard"]["rows"] if r["n_evaluators"] == 1)
    assert row["ci_low"] is None and row["ci_high"] is None and str(MIN_EVALUATORS_FOR_CI) in row["ci_note"]
    page = client.get(f"/studies/{owned_study.id}").get_data(as_text=True)
    box = page[page.index('id="live-score"'):page.index('id="download-report"')]
    assert "0.0% – 0.0%" not in box and f"needs {MIN_EVALUATORS_FOR_CI} evaluators" in box
    assert f"from {MIN_EVALUATORS_FOR_CI} evaluators of a model on" in box


def test_compare_page_puts_studies_side_by_side_and_warns(client, make_study, researchers, session):
    a = make_study(settings={"qualification": {"n_real": 4, "n_fake": 4}, "infinity": {"n_real": 5, "n_fake": 5}})
    b = make_study(settings={"qualification": {"n_real": 4, "n_fake": 4}, "infinity": {"n_real": 4, "n_fake": 4}})
    other = make_study("hype-time", n_real=80, n_fake=40)
    for s in (a, b, other):
        s.owner_id = researchers[0].id
    a.name, b.name = "ckpt 1", "ckpt 2"
    session.commit()
    rng = np.random.default_rng(4)
    for k in range(2):
        play(session, a, f"anon-a{k}", accuracy=0.9, rng=rng)
        play(session, b, f"anon-b{k}", accuracy=0.6, rng=rng)
    login(client, "alice@example.org")
    assert 'id="compare"' in client.get("/studies").get_data(as_text=True)
    page = client.get(f"/studies/compare?study={a.id}&study={b.id}")
    assert page.status_code == 404  # the page is /compare, not a study
    response = client.get(f"/compare?study={a.id}&study={b.id}")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert 'id="protocol-warning"' in html and "infinity.n_real: 5 in ckpt 1, 4 in ckpt 2" in html
    assert html.count("<tr><td>ckpt 1</td>") == 2 and html.count("<tr><td>ckpt 2</td>") == 2  # alpha and beta each
    assert "needs 5 evaluators" in html and 'id="forest-plot"' in html and "data:image/png;base64," in html
    mixed = client.get(f"/compare?study={a.id}&study={other.id}")
    assert mixed.status_code == 400 and "one mode" in mixed.get_data(as_text=True)
    assert client.get(f"/compare?study={a.id}").status_code == 400
    login(client, "bob@example.org")
    assert client.get(f"/compare?study={a.id}&study={b.id}").status_code == 404  # not bob's studies
