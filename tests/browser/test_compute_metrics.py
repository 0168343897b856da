"""Issue 12: a researcher clicks "Compute metrics" on a small study, watches the job's progress on the
study page (a job worker runs beside the server, as in `hype demo`), and then finds the metrics in
the report."""

from __future__ import annotations

import re
import sys
import time
from pathlib import Path

import pytest

from hype.accounts import create_researcher

pytestmark = pytest.mark.browser
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "jobs"))

EMAIL = "metrics@example.org"
PASSWORD = "correct horse battery"


def test_compute_metrics_from_the_dashboard(browser, live_server, guard, session, make_study, config, tmp_path,
                                            monkeypatch):
    pytest.importorskip("torch")
    from tiny_inception import write_tiny_inception

    from browser_harness import new_context
    from hype.jobs.queue import start_embedded_worker

    monkeypatch.setenv("HYPE_INCEPTION_WEIGHTS", str(write_tiny_inception(tmp_path / "tiny.pt", depth=4)))
    monkeypatch.setenv("HYPE_METRICS", "kid,prd,prdc")  # FID's eigendecompositions take minutes on a busy CPU
    owner = create_researcher(session, EMAIL, PASSWORD)
    study = make_study("hype-infinity", models=("alpha", "beta"), n_real=240, n_fake=160, size=32)  # long enough to watch
    study.owner_id = owner.id
    session.commit()
    consumer = start_embedded_worker(config)
    context = new_context(browser, guard, viewport=(1200, 900))
    try:
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(f"{live_server.url}/login")
        page.fill("input[name=email]", EMAIL)
        page.fill("input[name=password]", PASSWORD)
        with page.expect_navigation():
            page.click("button[type=submit]")
        page.goto(f"{live_server.url}/studies/{study.id}")
        with page.expect_navigation():
            page.click("#start-metrics")
        assert "started" in page.inner_text("body")
        row = page.locator("#job-table tr[data-job]").first
        states, percents = set(), set()
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            try:
                state = row.get_attribute("data-state", timeout=2000)
                percents.add(int(row.locator("progress").get_attribute("value", timeout=2000)))
            except Exception:  # noqa: BLE001 - the page reloads itself when the job ends
                continue
            states.add(state)
            if state == "running":
                page.screenshot(path=str(tmp_path / "running.png"))
            if state in ("done", "failed"):
                break
            time.sleep(0.3)
        assert "running" in states, states
        assert any(0 < p < 100 for p in percents), percents  # progress was shown between start and end
        assert row.get_attribute("data-state") == "done", row.inner_text()
        assert "metrics stored for 2 model(s)" in row.inner_text()
        with page.expect_download() as download:
            page.click("#job-table a.job-link")
        report = Path(download.value.path()).read_text()
        section = report[report.index('<section id="metrics">'):]
        section = section[:section.index("</section>")]
        assert "No automated metrics yet" not in section
        for model in ("alpha", "beta"):  # a row per model with its KID (the job computed KID, PRD, P/R, D/C)
            assert re.search(rf'<td class="name">{model}</td>\s*<td class="num">[^<]*</td><td class="num">\s*-?\d', section), section[:1500]
        assert not errors, errors
    finally:
        context.close()
        consumer.stop(graceful=True)
