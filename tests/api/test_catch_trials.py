"""Catch trials through the worker API, scoring, exports and the dashboard (docs/protocol.md, Catch
trials), on SQLite and PostgreSQL: nothing a worker receives sets a catch trial apart; HYPE-time shows
them at the longest exposure without moving the staircase (classic or QUEST+); scores, d′, the scored
export rows and the report's image tallies ignore them; the catch rule leaves a failing worker out."""

from __future__ import annotations

import re

import numpy as np
import pytest
from sqlalchemy import delete, select

from hype import adaptive
from hype.accounts import create_researcher
from hype.models import Exclusion, Image, StaircaseRecord, Trial
from hype.sessions import Answer, BrowserCheck, current_trial, enter, finish_instructions, identity_from_params, record_answer, serve_trial
from hype.sessions import record_browser_check
from hype.studies import study_settings

from apihelpers import assignment_of, faithful_timing, new_key

pytestmark = pytest.mark.db

INFINITY = {"qualification": {"enabled": False}, "infinity": {"n_real": 10, "n_fake": 10},
            "catch": {"n_fake": 2, "n_real": 2}}
TIME = {"qualification": {"enabled": False}, "time": {"n_blocks": 2, "trials_per_block": 8},
        "catch": {"n_fake": 2, "n_real": 1}}


def _catch_tokens(session, assignment_id: int) -> set[str]:
    session.rollback()
    return set(session.scalars(select(Trial.image_token).where(Trial.assignment_id == assignment_id, Trial.is_catch)))


def test_a_catch_trial_looks_like_any_task_trial_to_the_worker(make_study, worker, oracle, session, app):
    study = make_study("hype-infinity", settings=INFINITY)
    assert session.scalar(select(Image.id).where(Image.study_id == study.id, Image.pool == "catch")) is not None
    w = worker(study)
    assert w.start()["stage"] == "task"
    catch = _catch_tokens(session, assignment_of(session, w.token).id)
    assert len(catch) == 4
    shapes, sizes, totals = {}, {}, set()
    client = app.test_client()
    while (state := w.trial())["trial"] is not None:
        trial = state["trial"]
        totals.add(state["progress"]["total"])
        kind = trial["id"] in catch
        shape = {k: (v if k not in ("id", "image_url") else re.sub(r"[A-Za-z0-9_-]{16,}", "T", v)) for k, v in trial.items()}
        shapes.setdefault(kind, []).append(shape)
        image = client.get(trial["image_url"])
        assert image.status_code == 200
        sizes.setdefault(kind, set()).add((len(image.data), image.headers.get("Content-Type"),
                                           tuple(sorted(k for k, _ in image.headers))))
        response = w.answer(trial["id"], oracle(trial["id"], True), timing=faithful_timing(trial))
        assert response.status_code == 201 and set(response.get_json()) >= {"recorded", "feedback"}
        assert response.get_json()["feedback"] is None
    assert w.state()["stage"] == "completed"
    assert totals == {24}  # the worker is told 24 images and judges 24
    assert len(shapes[True]) == 4 and len(shapes[False]) == 20
    assert {str(s) for s in shapes[True]} <= {str(s) for s in shapes[False]}  # same payload, field by field
    assert sizes[True] == sizes[False] and len(sizes[True]) == 1  # same bytes, type and headers


def _run_time_session(session, study, decide) -> tuple[int, list[tuple[Trial, float, bool]]]:
    """One worker through the session service; decide(trial) -> answer right? Returns
    (assignment id, [(trial, exposure served, right)])."""
    assignment = enter(session, study, identity_from_params({}, f"anon-{new_key()[:10]}")).assignment
    finish_instructions(assignment)
    record_browser_check(session, assignment, BrowserCheck(16.7, 1200, 900))
    settings = study_settings(study)
    seen = []
    n = 0
    while (trial := current_trial(session, assignment)) is not None:
        exposure = serve_trial(session, assignment, settings, trial)
        right = decide(trial)
        record_answer(session, assignment, Answer(
            trial_token=trial.image_token, judged_fake=trial.is_fake if right else not trial.is_fake,
            idempotency_key=f"key{assignment.id:05d}{n:06d}", measured_ms=exposure or 900.0,
            mask_measured_ms=(33.3,) * 4 if exposure else (), refresh_interval_ms=16.7, reaction_ms=900.0))
        seen.append((trial, exposure, right))
        n += 1
    session.commit()
    return assignment.id, seen


@pytest.mark.parametrize("adaptive_on", [False, True], ids=["staircase", "quest"])
def test_hype_time_catch_trials_show_the_longest_exposure_and_leave_the_staircase_alone(make_study, session, adaptive_on):
    settings = {**TIME, "time": {**TIME["time"], "adaptive": adaptive_on}}
    study = make_study("hype-time", settings=settings)
    rng = np.random.default_rng(3)
    # catch trials answered wrong: were they counted, the staircase would move (up) on each of them
    assignment_id, seen = _run_time_session(session, study, lambda t: (not t.is_catch) and rng.random() < 0.7)
    catch = [(t, ms) for t, ms, _ in seen if t.is_catch]
    assert len(catch) == 3 and all(ms == 1000.0 for _, ms in catch)  # time.max_ms
    time_settings = study_settings(study).time
    cfg = adaptive.block_config(time_settings)
    for block in range(time_settings.n_blocks):
        state = adaptive.block_start(cfg)
        for trial, ms, right in seen:
            if trial.block != block or trial.is_catch:
                continue
            assert ms == adaptive.block_exposure(cfg, state)  # the exposure the scored answers alone give
            state = adaptive.block_advance(cfg, state, right)
        record = session.scalar(select(StaircaseRecord).where(StaircaseRecord.assignment_id == assignment_id,
                                                              StaircaseRecord.block == block))
        assert record.state == state


def _scores(session, study):
    from hype.study_scoring import score_study

    session.expire_all()
    score = score_study(session, study, n_resamples=300)
    return score.leaderboard.to_dict(), {m: c.to_dict() for m, c in score.counts.items()}


@pytest.mark.parametrize("mode", ["hype-infinity", "hype-time"])
def test_a_study_with_catch_trials_scores_exactly_as_its_answers_without_them(make_study, session, mode):
    from hype.exports import export_tables
    from hype.report import _sample_section  # noqa: F401 - the report's image tallies read the same rows

    study = make_study(mode, settings=INFINITY if mode == "hype-infinity" else TIME)
    rng = np.random.default_rng(11)
    for k in range(6):  # catch trials answered right, so the catch rule keeps everyone
        _run_time_session(session, study, lambda t, p=0.55 + 0.07 * k: t.is_catch or rng.random() < p)
    with_catch = _scores(session, study)
    exported = [r for r in export_tables(session, study).tables["trials"] if not r["catch"]]
    assert sum(r["catch"] for r in export_tables(session, study).tables["trials"]) == 6 * sum(
        study_settings(study).catch_counts())
    session.execute(delete(Trial).where(Trial.is_catch.is_(True)))  # the same answers, no catch trial
    session.commit()
    without = _scores(session, study)
    assert with_catch == without
    assert [r for r in export_tables(session, study).tables["trials"]] == exported
    if mode == "hype-infinity":
        assert with_catch[0]["rows"][0]["sdt"] is not None  # d′ is part of what compared equal


def test_the_catch_rule_leaves_a_failing_worker_out_and_the_dashboard_shows_catch_accuracy(make_study, session, client,
                                                                                            tmp_path):
    from hype.exports import export_tables
    from hype.study_scoring import score_study

    researcher = create_researcher(session, "carol@example.org", "correct horse battery")
    study = make_study("hype-infinity", settings=INFINITY)
    study.owner_id = researcher.id
    session.commit()
    good = [_run_time_session(session, study, lambda t: True)[0] for _ in range(3)]
    careless, _ = _run_time_session(session, study, lambda t: not (t.is_catch and t.is_fake))  # misses 2 of 4
    score = score_study(session, study, n_resamples=200)
    assert score.totals.failed_catch == 1 and score.totals.scored_evaluators == 3
    assert score.settings.min_catch_accuracy == 0.8
    assert score_study(session, study, n_resamples=200, min_catch_accuracy=0).totals.scored_evaluators == 4

    from hype.exports import import_bundle, read_export, write_export

    bundle = export_tables(session, study)
    write_export(bundle, tmp_path / "export", "csv")
    copy = import_bundle(session, read_export(tmp_path / "export"), name="catch copy")
    session.commit()
    again = score_study(session, copy, n_resamples=200)
    assert again.leaderboard.to_dict() == score.leaderboard.to_dict() and again.totals.failed_catch == 1

    participants = {p["evaluator"]: p for p in bundle.tables["participants"]}
    assert (participants[careless]["catch_correct"], participants[careless]["catch_answered"]) == (2, 4)
    assert participants[careless]["catch_accuracy"] == 0.5 and participants[good[0]]["catch_accuracy"] == 1.0

    html = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)
    client.post("/login", data={"email": "carol@example.org", "password": "correct horse battery", "csrf_token": token})
    page = client.get(f"/studies/{study.id}").get_data(as_text=True)
    table = page[page.index('id="worker-table"'):]
    assert "Catch right" in table and "2/4 (50%)" in table and "4/4 (100%)" in table
    assert 'name="use_catch" checked' in page and 'name="min_catch_percent" value="80"' in page
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    client.post(f"/studies/{study.id}/exclusion-rules",
                data={"csrf_token": token, "use_catch": "on", "min_catch_percent": "80"})
    session.expire_all()
    rules = [(e.assignment_id, e.rule) for e in session.scalars(select(Exclusion))]
    assert rules == [(careless, "failed-catch")]


def test_catch_trials_cannot_be_switched_on_after_publishing_without_their_images(make_study, session):
    from hype.studies import StudyError, update_settings

    study = make_study("hype-infinity", settings={k: v for k, v in INFINITY.items() if k != "catch"})
    with pytest.raises(StudyError, match="made when a study is published"):
        update_settings(session, study, {"catch": {"n_fake": 2, "n_real": 2}})
    assert update_settings(session, study, {"catch": {"min_accuracy": 0.5}}) == ["catch.min_accuracy"]
