"""The study report as a reader sees it in Chromium: no word is broken across two lines (the report
once wrapped "modera te" inside a table cell), and no confidence interval either ("18.8 –" above
"77.1"), at a laptop width and a narrow one.

With HYPE_WRITE_SCREENSHOTS=1 the full page is saved to docs/screenshots/report-full.png for a look."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "db"))

from test_report import INF_SETTINGS, add_metrics, fill  # noqa: E402

from browser_harness import wrapped_intervals  # noqa: E402

from hype.report import build_report  # noqa: E402

pytestmark = pytest.mark.browser

MODELS = ("mild", "moderate", "strong", "severe")

# Every word of every text node, outside code / hashes (which may break anywhere on purpose), must
# lie on one line: a Range over the word then has a single client rect (or several on one line).
BROKEN_WORDS = """
() => {
  const broken = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const parent = node.parentElement;
    if (!parent || parent.closest("code, .mono, style, script")) continue;
    const re = /[^\\s\\-/–]+/g;  // a line may break after a hyphen, slash or dash, never inside a word
    let m;
    while ((m = re.exec(node.data))) {
      const range = document.createRange();
      range.setStart(node, m.index);
      range.setEnd(node, m.index + m[0].length);
      const tops = new Set(Array.from(range.getClientRects()).filter((r) => r.width > 0).map((r) => Math.round(r.top)));
      if (tops.size > 1) broken.push(m[0] + " in " + parent.tagName + "." + parent.className + " " + parent.closest("section")?.id);
    }
  }
  return broken;
}
"""


@pytest.mark.parametrize("width", [1000, 600])
def test_no_word_of_the_report_breaks_across_lines(browser, session, config, make_study, tmp_path, width) -> None:
    study = make_study("hype-infinity", settings=INF_SETTINGS, models=MODELS, n_real=80, n_fake=40)
    fill(session, study, 24, {"mild": 0.45, "moderate": 0.3, "strong": 0.15, "severe": 0.05})
    add_metrics(session, study, {"mild": 10.0, "moderate": 30.0, "strong": 20.0, "severe": 90.0})
    path = tmp_path / "report.html"
    path.write_text(build_report(session, config, study, n_resamples=200), encoding="utf-8")
    context = browser.new_context(viewport={"width": width, "height": 800})
    try:
        page = context.new_page()
        page.route("**/*", lambda route, request: route.continue_() if request.url.startswith(("file:", "data:")) else route.abort())
        page.goto(path.as_uri())
        assert page.evaluate(BROKEN_WORDS) == []
        assert wrapped_intervals(page) == []
        if width == 1000:
            from accessibility import axe_violations

            assert axe_violations(page) == []
        if os.environ.get("HYPE_WRITE_SCREENSHOTS") == "1" and width == 1000:
            page.screenshot(path=str(Path(__file__).resolve().parents[2] / "docs" / "screenshots" / "report-full.png"), full_page=True)
    finally:
        context.close()
