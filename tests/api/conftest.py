"""Fixtures for the worker API tests; the helpers themselves live in apihelpers.py."""

from __future__ import annotations

from typing import Callable

import pytest
from sqlalchemy import select

from apihelpers import Worker
from hype.models import Trial


@pytest.fixture
def worker(app):
    """worker(study, params=None) -> a new browser for that study."""

    def factory(study, params: dict[str, str] | None = None) -> Worker:
        return Worker(app, study.slug, params)

    return factory


@pytest.fixture
def truth(session) -> Callable[[str], bool]:
    """truth(trial token) -> is_fake, read from the database."""

    def lookup(token: str) -> bool:
        session.rollback()  # a fresh snapshot: the app commits on its own connection
        value = session.scalar(select(Trial.is_fake).where(Trial.image_token == token))
        assert value is not None, f"no trial {token!r}"
        return bool(value)

    return lookup


@pytest.fixture
def oracle(truth) -> Callable[[str, bool], str]:
    """oracle(trial token, correct) -> the response that is right (or wrong) for that trial."""

    def respond(token: str, correct: bool = True) -> str:
        return "fake" if truth(token) == correct else "real"

    return respond


@pytest.fixture
def db_read(session):
    """db_read(fn) -> fn(session) on a fresh snapshot of the database."""

    def run(fn):
        session.rollback()
        return fn(session)

    return run
