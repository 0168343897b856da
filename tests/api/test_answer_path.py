"""The answer path's shortcuts give what the plain queries give: progress taken from the current
trial's position (no COUNT) equals the count of stored answers, at every step of both phases."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from apihelpers import Worker, faithful_timing
from hype.models import Assignment, Judgment, Trial

pytestmark = pytest.mark.db


def _counted(session, token: str, phase: str) -> dict[str, int]:
    session.rollback()
    rows = select(func.count(Trial.id), func.count(Judgment.id)).outerjoin(Judgment, Judgment.trial_id == Trial.id).join(
        Assignment, Assignment.id == Trial.assignment_id).where(Assignment.token == token, Trial.phase == phase)
    total, done = session.execute(rows).one()
    return {"done": done, "total": total}


@pytest.mark.parametrize("mode", ["hype-infinity", "hype-time"])
def test_progress_from_positions_equals_the_count(make_study, app, session, oracle, mode):
    study = make_study(mode)
    w = Worker(app, study.slug, {"PROLIFIC_PID": f"p-{mode}", "STUDY_ID": "s", "SESSION_ID": "x"})
    w.start()
    state = w.trial()
    seen = 0
    while state["trial"] is not None:
        phase = state["trial"]["phase"]
        assert state["progress"] == _counted(session, w.token, phase)
        assert w.state()["progress"] == state["progress"]
        reply = w.answer(state["trial"]["id"], oracle(state["trial"]["id"]), timing=faithful_timing(state["trial"]))
        assert reply.status_code == 201, reply.get_data(as_text=True)
        state = reply.get_json()["next"]
        seen += 1
    assert seen >= 10 and state["stage"] in ("completed", "failed")
