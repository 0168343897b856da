"""Fixtures for the browser tests: the app served on 127.0.0.1, Debian's headless Chromium through sync
Playwright, and workers whose every request stays on the machine.

Browser tests run on SQLite only (``db_url`` is overridden below, so the root conftest's
``db_backend`` parametrisation does not reach them): the API tests already cover PostgreSQL, and a
browser session costs seconds, not milliseconds. Chromium is /usr/bin/chromium (Debian's package;
Playwright's own browser download is never used). Without it the tests skip, except under CI=true,
where a missing browser is a failure so CI cannot go green without having run them.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
from sqlalchemy import select

sys.path.insert(0, str(Path(__file__).resolve().parent))

from browser_harness import CHROMIUM, LiveServer, NetworkGuard, Worker, launch_chromium, new_context  # noqa: E402

from hype.models import Assignment, Judgment, Trial  # noqa: E402

IN_CI = os.environ.get("CI") == "true"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    here = Path(__file__).resolve().parent
    for item in items:
        if Path(str(item.fspath)).resolve().parent == here and item.get_closest_marker("browser") is None:
            item.add_marker(pytest.mark.browser)


@pytest.fixture
def db_url(tmp_path: Path) -> Iterator[str]:
    """SQLite only for browser tests (overrides the root fixture and with it the backend choice)."""
    yield f"sqlite:///{tmp_path / 'browser.db'}"


@pytest.fixture(scope="session")
def playwright_instance() -> Iterator[Any]:
    if not CHROMIUM.exists():
        message = f"{CHROMIUM} not found: install Debian's chromium package (Playwright's browser download is not used)"
        if IN_CI:
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:  # pragma: no cover - the dev extra installs it
        if IN_CI:
            pytest.fail(f"playwright is not installed: {exc}", pytrace=False)
        pytest.skip(f"playwright is not installed: {exc}")
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="session")
def browser(playwright_instance: Any) -> Iterator[Any]:
    b = launch_chromium(playwright_instance)
    try:
        yield b
    finally:
        b.close()


@pytest.fixture
def live_server(app) -> Iterator[LiveServer]:
    server = LiveServer(app)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def guard() -> NetworkGuard:
    return NetworkGuard()


@pytest.fixture
def truth(session) -> Callable[[str], bool]:
    """image token -> is the trial's image fake? (read from the database, as the page cannot)."""

    def lookup(image_token: str) -> bool:
        value = session.scalar(select(Trial.is_fake).where(Trial.image_token == image_token))
        session.rollback()
        assert value is not None, f"no trial has image token {image_token}"
        return bool(value)

    return lookup


@pytest.fixture
def new_worker(browser, live_server: LiveServer, guard: NetworkGuard, truth) -> Iterator[Callable[..., Worker]]:
    """new_worker(viewport=(1280, 720)) -> a Worker on a fresh browser context (own cookies)."""
    contexts: list[Any] = []

    def factory(viewport: tuple[int, int] = (1280, 720)) -> Worker:
        context = new_context(browser, guard, viewport=viewport)
        contexts.append(context)
        return Worker(context.new_page(), live_server.url, truth)

    yield factory
    for context in contexts:
        context.close()
    # Nothing but the platforms' completion endpoints may ever have been asked for.
    assert not guard.refused, f"requests left 127.0.0.1: {[r.url for r in guard.refused]}"


@pytest.fixture
def db_records(session):
    """Fresh reads of a session's rows (the app writes them from its own threads)."""

    class Records:
        def assignment(self, token: str) -> Assignment:
            session.rollback()
            a = session.scalar(select(Assignment).where(Assignment.token == token))
            assert a is not None, "no assignment for this token"
            return a

        def trials(self, assignment: Assignment, phase: str | None = None) -> list[Trial]:
            q = select(Trial).where(Trial.assignment_id == assignment.id)
            if phase:
                q = q.where(Trial.phase == phase)
            return list(session.scalars(q.order_by(Trial.position)))

        def judgments(self, assignment: Assignment) -> list[Judgment]:
            return list(session.scalars(select(Judgment).where(Judgment.assignment_id == assignment.id).order_by(Judgment.id)))

        def count_assignments(self, study_id: int) -> int:
            session.rollback()
            return len(list(session.scalars(select(Assignment.id).where(Assignment.study_id == study_id))))

    return Records()
