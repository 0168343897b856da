#!/usr/bin/env python
"""Screenshots of the worker pages for the README, taken in headless Chromium at 1000x700.

    python tests/browser/make_screenshots.py [--out docs/screenshots] [--workers-only]

writes every README screenshot: the worker pages (below), then the researcher pages
(make_researcher_screenshots.py: a demo study answered by 40 simulated evaluators) unless --workers-only.

Builds two throwaway studies in a temporary directory from the demo's photographs (128x128 crops of
scikit-image's bundled photos; fakes are degraded crops, see hype/demo.py), serves the app on
127.0.0.1 and walks a worker through them: consent.png, instructions.png, trial.png (a HYPE-∞ task
trial with the image and the answer buttons), mask.png (a HYPE-time backward mask on screen),
feedback.png (HYPE-time's "Correct" after an answer), done.png (the completion code), pause.png (the
break between HYPE-time blocks) and reconnecting.png (an answer being retried after the network dropped).

The 30 ms mask is caught by holding requestAnimationFrame right after the first mask is drawn
(an init script wraps drawImage and requestAnimationFrame in that page only), so the screenshot
never depends on timing luck. Nothing leaves the machine: every non-local request is refused.
"""

from __future__ import annotations

import argparse
import io
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
for p in (str(HERE), str(ROOT)):
    if p not in sys.path:
        sys.path.insert(0, p)

from browser_harness import LiveServer, NetworkGuard, Worker, always_correct, launch_chromium, new_context  # noqa: E402

VIEWPORT = (1000, 700)
NAMES = ("consent.png", "instructions.png", "trial.png", "mask.png", "feedback.png", "done.png", "pause.png", "reconnecting.png")
IMAGES_PER_POOL = 16
DEMO_MODELS = ("mild", "strong")
INFINITY_SETTINGS = {"qualification": {"n_real": 2, "n_fake": 2}, "infinity": {"n_real": 3, "n_fake": 3}}
TIME_SETTINGS = {"qualification": {"n_real": 2, "n_fake": 2}, "time": {"n_blocks": 2, "trials_per_block": 2}}

# Holds the runner's frames once the first mask of a HYPE-time task trial is drawn (drawImage #2 of
# the trial: #1 is the image), until window.__shot.release() is called.
FREEZE_AT_FIRST_MASK = """
(() => {
  const raf = window.requestAnimationFrame.bind(window);
  const held = [];
  const shot = { frozen: false, done: false, draws: 0,
    release() { this.frozen = false; held.splice(0).forEach((cb) => raf(cb)); } };
  window.__shot = shot;
  const draw = CanvasRenderingContext2D.prototype.drawImage;
  CanvasRenderingContext2D.prototype.drawImage = function (...args) {
    const result = draw.apply(this, args);
    if (!shot.done && document.body && document.body.dataset.phase === "task") {
      shot.draws += 1;
      if (shot.draws === 2) { shot.frozen = true; shot.done = true; }
    }
    return result;
  };
  window.requestAnimationFrame = (cb) => { if (shot.frozen) { held.push(cb); return 0; } return raf(cb); };
})();
"""


def _png_files(prefix: str, arrays: list[Any]) -> list[Any]:
    from PIL import Image as PILImage

    from hype.images import RawFile

    files = []
    for k, arr in enumerate(arrays):
        buf = io.BytesIO()
        PILImage.fromarray(arr).save(buf, format="PNG")
        files.append(RawFile(f"{prefix}/{k:04d}.png", buf.getvalue()))
    return files


def build_studies(session: Any, config: Any) -> tuple[Any, Any]:
    """A HYPE-∞ and a HYPE-time study on demo photographs, both published."""
    from hype.demo import demo_pools
    from hype.studies import create_study, import_images, publish_study

    real, fakes = demo_pools(IMAGES_PER_POOL)
    out = []
    for mode, settings in (("hype-infinity", INFINITY_SETTINGS), ("hype-time", TIME_SETTINGS)):
        study = create_study(session, name="Real or fake?", mode=mode, seed=2019, settings=settings)
        import_images(session, config, study, _png_files("real", real), pool="real")
        for name in DEMO_MODELS:
            import_images(session, config, study, _png_files(name, fakes[name]), pool="fake", model_name=name)
        publish_study(session, config, study)
        out.append(study)
    session.commit()
    return out[0], out[1]


def _wait_images_loaded(page: Any) -> None:
    page.wait_for_function("() => Array.from(document.images).every((img) => img.complete && img.naturalWidth > 0)")


def take_screenshots(browser: Any, base_url: str, infinity_slug: str, time_slug: str, truth: Any, out: Path) -> list[Path]:
    guard = NetworkGuard()
    shots: list[Path] = []

    def shoot(page: Any, name: str) -> None:
        path = out / name
        page.screenshot(path=str(path))
        shots.append(path)

    # HYPE-∞: consent, instructions, a task trial, the done page.
    context = new_context(browser, guard, viewport=VIEWPORT)
    try:
        w = Worker(context.new_page(), base_url, truth)
        w.open(infinity_slug)
        shoot(w.page, "consent.png")
        w.consent()
        _wait_images_loaded(w.page)
        shoot(w.page, "instructions.png")
        w.instructions()
        w.run_phase("qualification", 4, always_correct)
        w.start_phase("task")
        w.wait_answer_expected()
        shoot(w.page, "trial.png")
        w.run_phase("task", 6, always_correct, start=False)
        w.wait_done()
        shoot(w.page, "done.png")
        w.assert_clean()
    finally:
        context.close()

    # HYPE-time: a mask on screen, then the feedback after the answer.
    context = new_context(browser, guard, viewport=VIEWPORT)
    try:
        context.add_init_script(FREEZE_AT_FIRST_MASK)
        w = Worker(context.new_page(), base_url, truth)
        w.open(time_slug)
        w.consent()
        w.instructions()
        w.run_phase("qualification", 4, always_correct)
        w.start_phase("task")
        w.page.wait_for_function("() => window.__shot && window.__shot.frozen", timeout=20_000)
        w.page.wait_for_timeout(100)  # let the compositor put the held frame on screen
        shoot(w.page, "mask.png")
        w.page.evaluate("() => window.__shot.release()")
        trial = w.wait_answer_expected()
        w.answer(truth(trial["id"]))
        w.page.wait_for_selector("#overlay.good")
        shoot(w.page, "feedback.png")
        w.answer(truth(w.wait_answer_expected()["id"]))
        w.page.wait_for_selector("#pause:not([hidden])")
        shoot(w.page, "pause.png")
        # The network drops: the page says it is reconnecting, and keeps the answer.
        w.page.route("**/answers", lambda route, request: route.abort("internetdisconnected"))
        w.page.click("#pause-continue")
        trial = w.wait_answer_expected()
        w.answer(truth(trial["id"]))
        w.page.wait_for_selector("#net-status.reconnecting:not([hidden])")
        shoot(w.page, "reconnecting.png")
        w.page.unroute("**/answers")
        w.page.wait_for_selector("#net-status.saved:not([hidden])", timeout=20_000)
        w.assert_clean()
    finally:
        context.close()

    assert not guard.requests, f"requests left 127.0.0.1: {[r.url for r in guard.requests]}"
    return [out / name for name in NAMES]


def main(out: Path, browser: Any = None) -> list[Path]:
    """Writes the six screenshots into ``out``; uses ``browser`` if given, else launches Chromium."""
    from sqlalchemy import select

    from hype.app import create_app
    from hype.config import load_config
    from hype.db import make_engine, make_session_factory
    from hype.migrate import upgrade
    from hype.models import Trial

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="hype-screenshots-") as tmp:
        config = load_config(data_dir=Path(tmp) / "data", database_url=f"sqlite:///{tmp}/hype.db", secret_key="screenshots")
        engine = make_engine(config.database_url)
        upgrade(engine)
        session = make_session_factory(engine)()
        app = None
        try:
            infinity, time_study = build_studies(session, config)

            def truth(image_token: str) -> bool:
                value = session.scalar(select(Trial.is_fake).where(Trial.image_token == image_token))
                session.rollback()
                return bool(value)

            app = create_app(config)
            with LiveServer(app) as server:
                if browser is not None:
                    return take_screenshots(browser, server.url, infinity.slug, time_study.slug, truth, out)
                from playwright.sync_api import sync_playwright

                with sync_playwright() as p:
                    b = launch_chromium(p)
                    try:
                        return take_screenshots(b, server.url, infinity.slug, time_study.slug, truth, out)
                    finally:
                        b.close()
        finally:
            session.close()
            if app is not None:
                app.extensions["hype.engine"].dispose()
            engine.dispose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots", help="folder for the PNGs (default: docs/screenshots)")
    parser.add_argument("--workers-only", action="store_true", help="only the worker pages")
    args = parser.parse_args()
    for path in main(args.out):
        print(path)
    if not args.workers_only:
        import make_researcher_screenshots

        for path in make_researcher_screenshots.cli(["--out", str(args.out)]):
            print(path)
