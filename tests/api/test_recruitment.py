"""Recruitment that counts valid work (issue 12, defects 2 and 3), through the worker API on SQLite and
PostgreSQL: excluded workers are replaced, idle sessions are abandoned and hold no slot, the target
can change after publishing, a closed study can be reopened, and a complete study can close itself."""

from __future__ import annotations

import datetime as dt
from collections import Counter

import pytest
from click.testing import CliRunner
from sqlalchemy import select, update

from hype.cli import main
from hype.models import Assignment, Judgment, Study, utcnow
from hype.monitoring import exclude, revoke

from apihelpers import assignment_of, run_phase
from test_worker_api import assert_json_error, mturk

pytestmark = pytest.mark.db

# No qualification and four task images: a worker completes in four answers.
FAST = {"qualification": {"enabled": False}, "infinity": {"n_real": 2, "n_fake": 2}}


def finish(w, oracle) -> None:
    w.start()
    run_phase(w, lambda t: oracle(t["id"]), "task")
    assert w.state()["stage"] == "completed"


def age(session, token: str, minutes: float) -> None:
    """Make a session's last step ``minutes`` old (every timestamp it has, so the same test tells the
    old code, which had no activity time, from the new)."""
    session.rollback()
    assignment = assignment_of(session, token)
    then = utcnow() - dt.timedelta(minutes=minutes)
    values = {"created_at": then}
    if hasattr(Assignment, "last_active_at"):
        values["last_active_at"] = then
    session.execute(update(Assignment).where(Assignment.id == assignment.id).values(**values))
    session.execute(update(Judgment).where(Judgment.assignment_id == assignment.id).values(received_at=then))
    session.commit()


def cli(config, *args: str):
    return CliRunner().invoke(main, ["--data-dir", str(config.data_dir), "--database-url", config.database_url, *args])


# -- defect 2: excluded workers are replaced --------------------------------------------------------------


def test_excluding_a_worker_reopens_the_slot_and_revoking_closes_it(make_study, worker, oracle, session):
    study = make_study(settings={**FAST, "evaluators_per_model": 3}, models=("alpha",))
    done = [worker(study, mturk(f"DONE{k}")) for k in range(3)]
    for w in done:
        finish(w, oracle)
    assert_json_error(worker(study, mturk("LATE0")).enter(), 409, "study-full")

    session.rollback()
    exclusions = [exclude(session, study, assignment_of(session, w.token).id, "careless") for w in done[:2]]
    session.commit()
    replacement = worker(study, mturk("REPLACE1"))
    assert replacement.enter().status_code == 201, "an excluded worker's slot must take a new worker"

    from hype.recruitment import model_slots

    session.rollback()
    (alpha,) = model_slots(session, study)
    assert (alpha.valid, alpha.target, alpha.excluded, alpha.in_progress, alpha.full) == (1, 3, 2, 1, False)
    assert (alpha.missing, alpha.open_slots) == (2, 1)

    for exclusion in exclusions:
        revoke(session, study, exclusion.id)
    session.commit()
    assert_json_error(worker(study, mturk("LATE1")).enter(), 409, "study-full")
    (alpha,) = model_slots(session, study)
    assert (alpha.valid, alpha.excluded, alpha.full) == (3, 0, True)


def test_the_target_can_be_raised_after_publishing_and_a_closed_study_reopened(make_study, worker, oracle, session, config):
    study = make_study(settings={**FAST, "evaluators_per_model": 1}, models=("alpha",))
    finish(worker(study, mturk("FIRST")), oracle)
    assert_json_error(worker(study, mturk("SECOND")).enter(), 409, "study-full")

    result = cli(config, "recruitment", str(study.id), "--evaluators", "2")
    assert result.exit_code == 0, result.output
    assert "1/2" in result.output and "1 more needed" in result.output
    assert worker(study, mturk("SECOND")).enter().status_code == 201

    assert cli(config, "close", str(study.id)).exit_code == 0
    assert_json_error(worker(study, mturk("THIRD")).enter(), 409, "study-closed")
    result = cli(config, "reopen", str(study.id))
    assert result.exit_code == 0, result.output
    assert worker(study, mturk("THIRD")).enter().status_code == 201

    bad = cli(config, "recruitment", str(study.id), "--evaluators", "0")
    assert bad.exit_code == 1 and "evaluators_per_model must be >= 1" in bad.output


def test_a_complete_study_closes_itself_when_its_setting_says_so(make_study, worker, oracle, session):
    settings = {**FAST, "evaluators_per_model": 1, "recruitment": {"close_when_complete": True}}
    study = make_study(settings=settings, models=("alpha", "beta"))
    first = worker(study, mturk("ONE"))
    finish(first, oracle)
    session.rollback()
    assert session.get(Study, study.id).status == "published"  # beta still needs its evaluator
    finish(worker(study, mturk("TWO")), oracle)
    session.rollback()
    assert session.get(Study, study.id).status == "closed"

    # Excluding and revoking: the slot reopens (the study stays closed until reopened), then closes.
    from hype.recruitment import is_complete, model_slots
    from hype.studies import reopen_study

    exclusion = exclude(session, study, assignment_of(session, first.token).id, "careless")
    reopen_study(session, study)
    session.commit()
    assert not is_complete(model_slots(session, study))
    revoke(session, study, exclusion.id)
    session.commit()
    assert session.get(Study, study.id).status == "closed"


# -- defect 3: abandoned sessions -------------------------------------------------------------------------


def test_idle_sessions_are_abandoned_hold_no_slot_and_cannot_resume(make_study, worker, oracle, session, db_read):
    study = make_study(settings={**FAST, "evaluators_per_model": 5})  # models alpha and beta
    started = [worker(study, mturk(f"START{k}")) for k in range(4)]
    for w in started:
        w.start()
    model_of = {w.token: db_read(lambda s, t=w.token: assignment_of(s, t).model_id) for w in started}
    first_model = model_of[started[0].token]
    idle = [w for w in started if model_of[w.token] == first_model]
    assert len(idle) == 2  # balanced: two per model
    for w in idle:
        age(session, w.token, 31)  # past the default 30 minutes

    # The two idle sessions no longer count: both newcomers go to their model.
    newcomers = [worker(study, mturk(f"NEW{k}")) for k in range(2)]
    for w in newcomers:
        assert w.enter().status_code == 201
    assert Counter(db_read(lambda s, t=w.token: assignment_of(s, t).model_id) for w in newcomers) == {first_model: 2}

    # The idle workers cannot resume: by the study link, the API or the session page.
    response = idle[0].enter()
    body = assert_json_error(response, 410, "session-abandoned", mentions="30 minutes")
    assert "cannot be resumed" in body["message"]
    assert_json_error(idle[1].client.get(f"/api/w/{idle[1].token}/trial"), 410, "session-abandoned")
    page = idle[1].client.get(f"/w/{idle[1].token}")
    assert page.status_code == 410 and b"Session closed" in page.data and b"cannot be resumed" in page.data
    assert db_read(lambda s: [assignment_of(s, w.token).stage for w in idle]) == ["abandoned", "abandoned"]
    assert_json_error(idle[0].client.post(f"/api/w/{idle[0].token}/instructions", json={}), 410, "session-abandoned")

    # A session idle for less than the timeout carries on.
    other = next(w for w in started if model_of[w.token] != first_model)
    age(session, other.token, 29)
    assert other.state()["stage"] == "task"
    run_phase(other, lambda t: oracle(t["id"]), "task")
    assert other.state()["stage"] == "completed"


def test_the_idle_timeout_is_a_study_setting_and_progress_counts_abandoned(make_study, worker, session, db_read):
    from hype.monitoring import model_progress
    from hype.recruitment import model_slots

    study = make_study(settings={**FAST, "recruitment": {"idle_timeout_minutes": 5}}, models=("alpha",))
    slow, quick = worker(study, mturk("SLOW")), worker(study, mturk("QUICK"))
    slow.start()
    quick.start()
    age(session, slow.token, 6)
    age(session, quick.token, 4)
    (alpha,) = db_read(lambda s: model_slots(s, s.get(Study, study.id)))
    assert (alpha.abandoned, alpha.idle_unmarked, alpha.in_progress) == (1, 1, 1)
    (row,) = db_read(lambda s: model_progress(s, s.get(Study, study.id)))
    assert row.to_dict()["abandoned"] == 1 and row.to_dict()["valid"] == 0
    from hype.monitoring import worker_rows

    stages = db_read(lambda s: {r.worker_id: r.stage for r in worker_rows(s, s.get(Study, study.id))})
    assert stages == {"SLOW": "abandoned", "QUICK": "task"}  # the worker table counts as progress does
    assert quick.state()["stage"] == "task"
    assert_json_error(slow.client.get(slow.api), 410, "session-abandoned", mentions="5 minutes")


def test_the_answer_path_writes_the_activity_time_about_once_a_minute(make_study, worker, oracle, session, db_read):
    study = make_study(settings=FAST, models=("alpha",))
    w = worker(study, mturk("STEADY"))
    w.start()
    stamp = db_read(lambda s: assignment_of(s, w.token).last_active_at)
    trial = w.trial()["trial"]
    assert w.answer(trial, oracle(trial["id"])).status_code == 201
    assert db_read(lambda s: assignment_of(s, w.token).last_active_at) == stamp  # under a minute: no write
    age(session, w.token, 2)
    trial = w.trial()["trial"]
    assert w.answer(trial, oracle(trial["id"])).status_code == 201
    fresh = db_read(lambda s: assignment_of(s, w.token).last_active_at)
    from hype.recruitment import as_utc

    assert utcnow() - as_utc(fresh) < dt.timedelta(seconds=30)
