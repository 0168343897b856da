"""A new session's planned trials: stored as the plan says, in one statement whose text does not
depend on the plan's length (on PostgreSQL psycopg then prepares it once per connection)."""

from __future__ import annotations

import pytest
from sqlalchemy import event, select

from apihelpers import Worker
from hype.design import plan_session
from hype.models import Assignment, Trial
from hype.studies import pool_ids, study_settings

pytestmark = pytest.mark.db


def test_a_sessions_trials_are_its_plan_in_one_statement_of_one_text(make_study, app, session):
    engine = app.extensions["hype.engine"]
    sent: list[tuple[str, bool]] = []

    def record(_conn, _cursor, statement, _params, _context, executemany):
        if statement.lstrip().upper().startswith("INSERT INTO TRIALS"):
            sent.append((statement, executemany))

    event.listen(engine, "before_cursor_execute", record)
    try:
        tokens = []
        for mode in ("hype-infinity", "hype-time"):  # plans of different lengths
            study = make_study(mode)
            w = Worker(app, study.slug, {"PROLIFIC_PID": f"plan-{mode}", "STUDY_ID": "s", "SESSION_ID": "x"})
            w.start()
            tokens.append((study, w.token))
    finally:
        event.remove(engine, "before_cursor_execute", record)
    assert len(sent) == 2, sent  # one statement a session
    if engine.dialect.name == "postgresql":
        assert sent[0][0] == sent[1][0]  # one text, whatever the plan's length
    session.rollback()
    for study, token in tokens:
        assignment = session.scalar(select(Assignment).where(Assignment.token == token))
        settings = study_settings(study)
        real, fakes = pool_ids(session, study)
        plan = plan_session(settings, real, fakes, assignment.model_id, assignment.draw_key, None)
        trials = session.scalars(select(Trial).where(Trial.assignment_id == assignment.id).order_by(Trial.position)).all()
        assert [(t.phase, t.block, t.image_id, t.is_fake, t.is_catch) for t in trials] == [
            (p.phase, p.block, p.image_id, p.is_fake, p.is_catch) for p in plan]
        assert [t.position for t in trials] == list(range(len(plan)))
        assert all(t.presentations == 0 and t.requested_ms is None for t in trials)
        assert len({t.image_token for t in trials}) == len(trials)
