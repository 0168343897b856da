"""Helpers for the worker API tests: counts and phases on top of tests/worker_client.py, with the DB as
the oracle (the truth of a trial is read from the database by its opaque token, never from the API)."""

from __future__ import annotations

from typing import Any, Callable

from sqlalchemy import func, select

from hype.models import Assignment, Judgment
from worker_client import FRAME_60HZ, GOOD_CHECK, ApiBrowser, faithful_timing, new_key  # noqa: F401 - re-exported

# One browser drives the session (tests/worker_client.py); these names are the API tests' own.
Worker = ApiBrowser


def count_judgments(session, **where) -> int:
    query = select(func.count()).select_from(Judgment)
    for name, value in where.items():
        query = query.where(getattr(Judgment, name) == value)
    return int(session.scalar(query) or 0)


def assignment_of(session, token: str) -> Assignment:
    return session.scalar(select(Assignment).where(Assignment.token == token))


def run_phase(w: Worker, respond: Callable[[dict[str, Any]], str], phase: str) -> list[tuple[dict, dict]]:
    """Answer every trial of ``phase`` (with faithful timing); returns [(trial payload, answer body)]."""
    out = []
    while True:
        state = w.trial()
        trial = state["trial"]
        if trial is None or trial["phase"] != phase:
            return out
        response = w.answer(trial["id"], respond(trial), timing=faithful_timing(trial))
        assert response.status_code == 201, response.get_data(as_text=True)
        out.append((trial, response.get_json()))
