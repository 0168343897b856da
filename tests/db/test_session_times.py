"""Measured session times leave out the breaks between HYPE-time blocks (issue 16, item 9): the time a
worker spends on the pause screen is theirs, so it lengthens neither the time the consent page states
nor the hourly pay worked out from it (hype.effort)."""

from __future__ import annotations

import datetime as dt

import numpy as np
from sqlalchemy import select

from hype.models import Assignment, Judgment
from hype.monitoring import finished_session_seconds
from session_player import play


def test_breaks_between_blocks_are_left_out_of_session_times(make_study, session) -> None:
    study = make_study("hype-time")
    rng = np.random.default_rng(3)
    with_break = play(session, study, "worker-break", accuracy=0.8, rng=rng)
    without = play(session, study, "worker-plain", accuracy=0.8, rng=rng)
    for assignment_id, minutes in ((with_break, 10), (without, 7)):
        a = session.get(Assignment, assignment_id)
        a.created_at = a.completed_at - dt.timedelta(minutes=minutes)
    judgments = session.scalars(select(Judgment).where(Judgment.assignment_id == with_break).order_by(Judgment.id)).all()
    judgments[5].client_timestamps = {"image_on": 10.0, "break_ms": 90_000.0}  # a 90 s pause before that trial
    judgments[8].client_timestamps = {"break_ms": 30_000.0}  # and a 30 s one
    session.commit()
    assert sorted(finished_session_seconds(session, study)) == [7 * 60.0, 10 * 60.0 - 120.0]
