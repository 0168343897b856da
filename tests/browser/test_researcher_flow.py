"""A researcher's whole path through the dashboard in headless Chromium: sign in, create a HYPE-∞ study
through the form, upload a real and a model zip, publish, let one worker (a second browser context)
finish a session from the plain link, watch it arrive on the dashboard, exclude that worker with a
reason, and download the report and the CSV export.

With HYPE_WRITE_SCREENSHOTS=1 the dashboard and the downloaded report are also saved to
docs/screenshots/ (off by default so a test run never rewrites tracked files).
"""

from __future__ import annotations

import csv
import io
import os
import re
import zipfile
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import pytest

from browser_harness import Worker, always_correct, new_context

from hype.accounts import create_researcher
from pool_factory import make_pool_images

pytestmark = pytest.mark.browser

EMAIL = "researcher@example.org"
PASSWORD = "correct horse battery"
STUDY_NAME = "Browser flow faces"
N_QUAL = (2, 2)
N_TASK = (3, 3)
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
WRITE_SCREENSHOTS = os.environ.get("HYPE_WRITE_SCREENSHOTS") == "1"


def _write_zip(path: Path, files) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for f in files:
            zf.writestr(f.name, f.data)
    return path


def _upload(page, study_url: str, archive: Path, pool: str, model: str | None = None) -> None:
    form = page.locator("#add-images")
    form.locator("select[name=pool]").select_option(pool)
    if model:
        form.locator("input[name=model_name]").fill(model)
    form.locator("input[name=archive]").set_input_files(str(archive))
    with page.expect_navigation():
        form.locator("button[type=submit]").click()
    assert urlsplit(page.url).path == urlsplit(study_url).path, page.url


def test_researcher_creates_publishes_monitors_excludes_and_downloads(
    browser, live_server, guard, truth, session, tmp_path: Path
) -> None:
    create_researcher(session, EMAIL, PASSWORD)
    session.commit()
    base = live_server.url

    researcher_ctx = new_context(browser, guard, viewport=(1200, 900))
    worker_ctx = new_context(browser, guard)
    try:
        page = researcher_ctx.new_page()
        page_errors: list[str] = []
        page.on("pageerror", lambda exc: page_errors.append(str(exc)))

        # -- sign in ------------------------------------------------------------------------------
        page.goto(f"{base}/login")
        page.fill("input[name=email]", EMAIL)
        page.fill("input[name=password]", PASSWORD)
        with page.expect_navigation():
            page.click("button[type=submit]")
        assert "/login" not in page.url, page.inner_text("body")[:300]

        # -- create a HYPE-∞ study through the form ----------------------------------------------
        page.goto(f"{base}/studies/new")
        if WRITE_SCREENSHOTS:
            page.screenshot(path=str(SCREENSHOTS / "new-study.png"), full_page=True)
        page.fill("input[name=name]", STUDY_NAME)
        page.check("input[name=mode][value=hype-infinity]")
        page.fill("input[name=qualification_n_real]", str(N_QUAL[0]))
        page.fill("input[name=qualification_n_fake]", str(N_QUAL[1]))
        page.fill("input[name=infinity_n_real]", str(N_TASK[0]))
        page.fill("input[name=infinity_n_fake]", str(N_TASK[1]))
        # the time / hourly-pay figures follow the form (hype.effort via pay.json): 10 images, 30 s -> 1 min,
        # $1.00 = $60.00/hour, so the paper defaults' below-minimum warning is gone
        assert page.locator("#pay-warning").count() == 1  # paper defaults: $6.00/hour
        page.locator("#pay-figures", has_text="About 1 min").wait_for()  # (CSP: no string eval, so no wait_for_function)
        assert "$60.00/hour" in page.inner_text("#pay-figures") and page.locator("#pay-warning").count() == 0
        with page.expect_navigation():
            page.click("form.settings-form button[type=submit]")
        match = re.search(r"/studies/(\d+)$", urlsplit(page.url).path)
        assert match, f"not on a study page: {page.url}: {page.inner_text('body')[:300]}"
        study_url = page.url
        assert page.inner_text("#study-name") == STUDY_NAME
        assert page.inner_text("#study-status") == "draft"

        # -- upload a real and a model zip -------------------------------------------------------
        rng = np.random.default_rng(7)
        real_zip = _write_zip(tmp_path / "real.zip", make_pool_images(20, rng, 32, smooth=False))
        fake_zip = _write_zip(tmp_path / "gan.zip", make_pool_images(15, rng, 32, smooth=True))
        _upload(page, study_url, real_zip, "real")
        assert "Added 20 images" in page.inner_text("body")
        _upload(page, study_url, fake_zip, "fake", "gan")
        assert "Added 15 images" in page.inner_text("body")
        pools = page.inner_text("#pools")
        assert "20" in pools and "15" in pools and "gan" in pools, pools

        # -- publish, read the plain link --------------------------------------------------------
        with page.expect_navigation():
            page.click("#publish")
        assert page.inner_text("#study-status") == "published"
        plain = page.inner_text("#plain-link").strip()
        slug_match = re.search(r"/s/([^/?#\s]+)", plain)
        assert slug_match, plain
        slug = slug_match.group(1)

        # -- a worker, in a second context, completes a session -----------------------------------
        w = Worker(worker_ctx.new_page(), base, truth)
        w.open(slug)
        w.consent()
        w.instructions()
        w.run_phase("qualification", sum(N_QUAL), always_correct)
        w.wait_phase("task")
        assert "passed the qualification" in w.page.inner_text("#intro")
        w.run_phase("task", sum(N_TASK), always_correct)
        w.wait_done()
        w.assert_clean()

        # -- the dashboard shows it ---------------------------------------------------------------
        page.goto(study_url)
        progress_rows = page.locator("#progress tbody tr")
        assert progress_rows.count() == 1
        cells = progress_rows.first.locator("td").all_inner_texts()
        assert cells[0] == "gan" and cells[1].startswith("1 /"), cells  # valid / target
        assert cells[8] == "complete" or cells[8].endswith(" to go"), cells
        assert cells[6] == str(sum(N_TASK)), cells
        worker_rows = page.locator("#worker-table tbody tr")
        assert worker_rows.count() == 1
        row_text = worker_rows.first.inner_text()
        assert "completed" in row_text and "gan" in row_text, row_text
        page.wait_for_load_state("networkidle")
        # At 1400 px the worker table fits, and its exclusion action is on screen without scrolling.
        page.set_viewport_size({"width": 1400, "height": 900})
        overflow = page.evaluate("() => { const s = document.getElementById('workers'); return s.scrollWidth - s.clientWidth; }")
        assert overflow <= 0, f"the worker table scrolls sideways by {overflow} px at 1400 px"
        box = worker_rows.first.locator("button", has_text="exclude").bounding_box()
        assert box is not None and box["x"] + box["width"] <= 1400, box
        live_text = page.inner_text("#live-score")
        assert "needs 5 evaluators" in live_text and "0.0% – 0.0%" not in live_text, live_text
        if WRITE_SCREENSHOTS:
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(SCREENSHOTS / "dashboard.png"), full_page=True)
        page.set_viewport_size({"width": 1200, "height": 900})

        # -- after the first worker, only the target and the pay can change ------------------------
        page.click("#edit-settings")
        assert page.locator("#settings-locked").is_visible()
        assert page.locator("input[name=infinity_n_real]").is_disabled()
        page.fill("input[name=evaluators_per_model]", "12")
        if WRITE_SCREENSHOTS:
            page.screenshot(path=str(SCREENSHOTS / "settings-locked.png"), full_page=True)
        with page.expect_navigation():
            page.click("form.settings-form button[type=submit]")
        assert "evaluators_per_model changed" in page.inner_text("body")

        # -- exclude the worker with a reason -------------------------------------------------------
        reason = "told us they guessed"
        row = worker_rows.first
        row.locator("input[name=reason]").fill(reason)
        with page.expect_navigation():
            row.locator("button", has_text="exclude").click()
        excluded = page.locator("#worker-table tbody tr").first
        assert reason in excluded.inner_text()
        assert "excluded" in (excluded.get_attribute("class") or "")

        # -- the report: self-contained, names the study --------------------------------------------
        with page.expect_download() as info:
            page.click("#download-report")
        report_path = tmp_path / "report.html"
        info.value.save_as(str(report_path))
        report = report_path.read_text(encoding="utf-8")
        assert STUDY_NAME in report
        remote = re.findall(r"""(?:src|href)\s*=\s*["']?(?:https?:)?//[^\s"'>]+|url\(\s*["']?(?:https?:)?//[^)]+\)|@import""", report)
        assert not remote, f"the report loads remote resources: {remote[:5]}"

        # -- the CSV export: a zip with one trials row per planned trial ----------------------------
        with page.expect_download() as info:
            page.click("#download-csv")
        export_path = tmp_path / "export.zip"
        info.value.save_as(str(export_path))
        assert zipfile.is_zipfile(export_path)
        with zipfile.ZipFile(export_path) as zf:
            trials_names = [n for n in zf.namelist() if n.endswith("/trials.csv") or n == "trials.csv"]
            assert len(trials_names) == 1, zf.namelist()
            rows = list(csv.DictReader(io.StringIO(zf.read(trials_names[0]).decode("utf-8"))))
        assert len(rows) == sum(N_QUAL) + sum(N_TASK)
        assert sum(1 for r in rows if r["phase"] == "task") == sum(N_TASK)
        assert sum(1 for r in rows if r["phase"] == "qualification") == sum(N_QUAL)
        assert not page_errors, page_errors

        # -- the report opened in a page with no network at all --------------------------------------
        report_page = researcher_ctx.new_page()
        reached: list[str] = []

        def offline(route, request) -> None:
            if request.url.startswith(("file:", "data:", "blob:")):
                route.continue_()
            else:
                reached.append(request.url)
                route.abort("blockedbyclient")

        report_page.route("**/*", offline)
        report_page.goto(report_path.as_uri())
        report_page.wait_for_load_state("load")
        assert STUDY_NAME in report_page.inner_text("body")
        assert not reached, f"the report asked for {reached}"
        if WRITE_SCREENSHOTS:
            report_page.screenshot(path=str(SCREENSHOTS / "report.png"), full_page=True)
    finally:
        worker_ctx.close()
        researcher_ctx.close()
    assert not guard.refused, f"requests left 127.0.0.1: {[r.url for r in guard.refused]}"
