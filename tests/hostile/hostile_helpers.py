"""Helpers for the hostile-input, fuzzing and cheating tests (tests/hostile): the browser of
tests/worker_client.py, and the database as the only source of truth about labels."""

from __future__ import annotations

from sqlalchemy import select

from hype.models import Assignment, Trial
from worker_client import GOOD_CHECK, ApiBrowser, faithful_timing, new_key  # noqa: F401 - re-exported

# One browser drives the session (tests/worker_client.py); these names are the hostile tests' own.
Browser = ApiBrowser
timing_for = faithful_timing


def truth(session, trial_id: str) -> bool:
    """is_fake of a trial, from the database (a fresh snapshot: the app commits on its own connection)."""
    session.rollback()
    value = session.scalar(select(Trial.is_fake).where(Trial.image_token == trial_id))
    assert value is not None, f"no trial {trial_id!r}"
    return bool(value)


def stage_of(session, token: str) -> str:
    session.rollback()
    return session.scalar(select(Assignment.stage).where(Assignment.token == token))


def run_correctly(browser: Browser, session, phase: str) -> int:
    """Answer every trial of ``phase`` correctly (from the database); returns how many."""
    n = 0
    while True:
        trial = browser.trial()["trial"]
        if trial is None or trial["phase"] != phase:
            return n
        response = browser.answer(trial, "fake" if truth(session, trial["id"]) else "real")
        assert response.status_code == 201, response.get_data(as_text=True)
        n += 1

