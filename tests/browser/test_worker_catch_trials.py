"""A worker's whole session with catch trials in Chromium, then the researcher's worker table.

Nothing the page receives may set a catch trial apart (docs/protocol.md, Catch trials): its trial
payload, its image response (bytes, type, headers) and the progress text are those of any task trial.
The dashboard's worker table then shows each worker's catch accuracy; a screenshot of it is kept for
a person to look at (tests/browser/…/catch-workers.png under pytest's tmp_path).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from sqlalchemy import select

from browser_harness import new_context
from hype.accounts import create_researcher
from hype.models import Trial

pytestmark = pytest.mark.browser

SETTINGS = {"qualification": {"enabled": False}, "infinity": {"n_real": 10, "n_fake": 10},
            "catch": {"n_fake": 2, "n_real": 2}}
EMAIL, PASSWORD = "dana@example.org", "correct horse battery"


def test_catch_trials_look_like_task_trials_and_the_worker_table_shows_catch_accuracy(
        make_study, new_worker, db_records, browser, live_server, guard, session, tmp_path: Path) -> None:
    researcher = create_researcher(session, EMAIL, PASSWORD)
    study = make_study("hype-infinity", settings=SETTINGS)
    study.owner_id = researcher.id
    session.commit()

    w = new_worker()
    images: list[tuple[str, int, str, tuple[str, ...]]] = []

    def on_image(response: Any) -> None:
        path = urlsplit(response.url).path
        if "/img/" in path and response.ok:
            headers = tuple(sorted(k for k in response.headers if k not in ("date",)))
            images.append((path.rsplit("/", 1)[-1], len(response.body()), response.headers.get("content-type", ""), headers))

    w.page.on("response", on_image)
    w.open(study.slug, {})
    w.consent()
    w.instructions()
    progress: list[str] = []

    def decide(k: int, trial: dict[str, Any], is_fake: bool) -> bool:
        progress.append(w.progress_text())
        return is_fake if k % 5 else not is_fake  # every fifth answer wrong, catch or not

    answered = w.run_phase("task", 24, decide)
    w.wait_done()
    w.assert_clean()
    assignment = db_records.assignment(w.token)
    catch = set(session.scalars(select(Trial.image_token).where(Trial.assignment_id == assignment.id, Trial.is_catch)))
    assert len(catch) == 4

    def shape(trial: dict[str, Any]) -> str:
        return re.sub(r"[A-Za-z0-9_-]{16,}", "T", str(sorted(trial.items())))

    catch_shapes = {shape(a.trial) for a in answered if a.token in catch}
    other_shapes = {shape(a.trial) for a in answered if a.token not in catch}
    assert catch_shapes == other_shapes and len(other_shapes) == 1
    served = {token: rest for token, *rest in images}
    assert {tuple(map(str, served[t])) for t in catch} == {tuple(map(str, served[a.token])) for a in answered
                                                           if a.token not in catch}
    assert all(re.search(r"\b24\b", text) for text in progress), progress[:3]

    # -- the researcher's worker table ---------------------------------------------------------------
    context = new_context(browser, guard, viewport=(1400, 900))
    try:
        page = context.new_page()
        page.goto(f"{live_server.url}/login")
        page.fill("input[name=email]", EMAIL)
        page.fill("input[name=password]", PASSWORD)
        with page.expect_navigation():
            page.click("button[type=submit]")
        page.goto(f"{live_server.url}/studies/{study.id}#workers")
        right = sum(1 for a in answered if a.token in catch and a.is_fake == a.judged_fake)
        header = page.inner_text("#worker-table thead")
        assert "Catch right" in header
        cell = page.inner_text(f"#worker-table tr[data-assignment='{assignment.id}'] td.catch")
        assert cell.startswith(f"{right}/4 ({round(100 * right / 4)}%)"), cell
        assert ("not scored" in cell) == (right / 4 < 0.8)
        assert page.is_visible("input[name=use_catch]")
        shot = tmp_path / "catch-workers.png"
        page.locator("#workers").screenshot(path=str(shot))
        assert shot.stat().st_size > 0
    finally:
        context.close()
