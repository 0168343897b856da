#!/usr/bin/env python
"""Screenshots of the researcher pages for the README, from a demo study that simulated evaluators
answered, taken in headless Chromium.

    python tests/browser/make_researcher_screenshots.py [--out docs/screenshots] [--evaluators 40]
        [--n-boot 50] [--encoder dinov2-vits14 --weights DIR]

(`python tests/browser/make_screenshots.py` runs this too, after the worker pages.)

What it builds, in a temporary directory, with nothing from the network:
- the HYPE-∞ demo study (hype/demo.py: 128x128 crops of scikit-image's photographs; the four models
  degrade other crops with one strength knob, so mild > moderate > strong > severe is the right order)
  with the paper's settings, and a second run of it with a stricter qualification (for the compare view,
  whose warning names that difference);
- ``--evaluators`` simulated evaluators on the first (half as many on the second), each answering every
  trial through the real session service (hype.sessions: enter, serve, record_answer), as a person of
  hype.simulate.Population would: a fake of a stronger-degraded model is easier to spot;
- the automated metrics on CPU (``--n-boot`` bootstrap replicates per interval). No published encoder
  weights can be downloaded here, so unless ``--weights`` names real ones the encoder is a randomly
  initialised tiny DINOv2 (tests/tiny_models.py): the metric values then only show the layout, which
  the README caption says.

Then it signs in as the demo researcher and takes: new-study.png (the form, HYPE-∞ chosen),
dashboard.png (the study page at 1400 px: progress, live score, the first rows of the worker table), report.png (the top of
the report, down to the leaderboard) and compare.png (the two runs side by side).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
for p in (str(HERE), str(HERE.parent), str(ROOT)):
    if p not in sys.path:
        sys.path.insert(0, p)

from browser_harness import LiveServer, NetworkGuard, launch_chromium, new_context  # noqa: E402

NAMES = ("new-study.png", "dashboard.png", "report.png", "compare.png")
EMAIL, PASSWORD = "demo@hype.local", "screenshots only"
SEED = 2019
SECOND_RUN = "Demo: HYPE-∞, second run (stricter qualification)"
SECOND_RUN_SETTINGS = {"qualification": {"pass_real": 0.7, "pass_fake": 0.7}}


def fake_accuracy(strength: float) -> float:
    """The median evaluator's accuracy on a model's fakes with unlimited time: the stronger the
    degradation (hype.demo.DEMO_MODELS, 0.2 .. 1.0), the easier a fake is to spot."""
    return 0.6 + 0.35 * strength


def _simulated_evaluator(population_for: Any, rng: Any) -> Any:
    """decide(assignment, trial, exposure) for session_player.play: one person of hype.simulate's
    population model (their own skill and criterion), judging each image by its model's realism."""
    z_ability, z_criterion = rng.standard_normal(2)

    def decide(assignment: Any, trial: Any, exposure_ms: Any) -> bool:
        population = population_for(trial.image.model.name if trial.is_fake else assignment.model.name)
        fake_acc, real_acc = population.accuracies(z_ability, z_criterion)
        p = float(fake_acc if trial.is_fake else real_acc)
        p = (1 - population.lapse) * p + population.lapse * population.guess
        right = bool(rng.random() < p)
        return bool(trial.is_fake) == right

    return decide


def _session_length(session: Any, assignment_id: int, reaction_ms: float) -> None:
    """A simulated session takes no time; it is given the length a person's would have (the consent
    page and the pay card show measured session times): instructions and check, then per trial the
    reaction time and a second for the answer to go and the next image to come."""
    import datetime as dt

    from hype.models import Assignment

    a = session.get(Assignment, assignment_id)
    n_trials = len(a.trials)
    a.created_at = a.completed_at - dt.timedelta(seconds=90 + n_trials * (reaction_ms / 1000 + 1.0))


def build(session: Any, config: Any, *, evaluators: int, n_boot: int, encoder: str, weights: str | None,
          images_per_pool: int, work: Path, settings: dict[str, Any] | None = None) -> tuple[Any, Any]:
    """The two demo runs, answered and measured; committed. Returns (first run, second run).
    ``settings``: laid under both runs' own (the tests make the sessions short with it)."""
    import numpy as np

    from hype.settings_form import merge

    from hype import studies
    from hype.accounts import create_researcher
    from hype.demo import DEMO_MODELS, INFINITY_NAME, _as_files, demo_pools
    from hype.simulate import Population
    from hype.study_metrics import compute_study_metrics
    from session_player import play

    owner = create_researcher(session, EMAIL, PASSWORD)
    session.flush()
    real, fakes = demo_pools(images_per_pool, seed=SEED)
    populations = {name: Population(fake_accuracy=fake_accuracy(strength)) for name, strength in DEMO_MODELS.items()}
    rng = np.random.default_rng(SEED)
    made = []
    for name, own, n in ((INFINITY_NAME, {}, evaluators), (SECOND_RUN, SECOND_RUN_SETTINGS, max(2, evaluators // 2))):
        study = studies.create_study(session, name=name, mode="hype-infinity", seed=SEED, owner_id=owner.id,
                                     settings=merge(settings or {}, own))
        studies.import_images(session, config, study, _as_files("real", real), pool="real")
        for model_name, arrays in fakes.items():
            studies.import_images(session, config, study, _as_files(model_name, arrays), pool="fake", model_name=model_name)
        studies.publish_study(session, config, study)
        session.commit()
        for k in range(n):
            reaction_ms = float(rng.lognormal(7.0, 0.3))  # a median of about 1.1 s
            assignment_id = play(session, study, f"sim-{len(made)}{k:05d}", rng=rng, reaction_ms=reaction_ms,
                                 decide=_simulated_evaluator(populations.__getitem__, rng))
            _session_length(session, assignment_id, reaction_ms)
            session.commit()
            print(f"{name}: evaluator {k + 1} of {n} done", file=sys.stderr, flush=True)
        made.append(study)
    if weights is None:
        from tiny_models import save_tiny_dinov2

        if encoder != "dinov2-vits14":
            raise SystemExit("without --weights only the tiny stand-in DINOv2 can be used (--encoder dinov2-vits14)")
        weights = str(save_tiny_dinov2(work / "tiny-dinov2"))
    compute_study_metrics(session, config, made[0], device="cpu", encoder=encoder, weights=weights, n_boot=n_boot,
                          progress=False)
    session.commit()
    return made[0], made[1]


def take_screenshots(browser: Any, base_url: str, first: Any, second: Any, out: Path) -> list[Path]:
    guard = NetworkGuard()
    context = new_context(browser, guard, viewport=(1400, 900))
    try:
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(f"{base_url}/login")
        page.fill("input[name=email]", EMAIL)
        page.fill("input[name=password]", PASSWORD)
        with page.expect_navigation():
            page.click("button[type=submit]")

        page.set_viewport_size({"width": 1200, "height": 900})
        page.goto(f"{base_url}/studies/new")
        page.fill("input[name=name]", "Checkpoint 40k")
        page.locator("#pay-figures").wait_for()
        page.screenshot(path=str(out / "new-study.png"), full_page=True)

        page.set_viewport_size({"width": 1400, "height": 900})
        page.goto(f"{base_url}/studies/{first.id}")
        page.locator("#live-score table").first.wait_for()
        # Down to the first rows of the worker table: the whole table of 40 would make the picture a strip.
        bottom = page.evaluate("() => { const rows = document.querySelectorAll('#workers tbody tr, table.workers tbody tr');"
                               " const last = rows[Math.min(rows.length, 6) - 1];"
                               " const el = last || document.body;"
                               " return Math.ceil(el.getBoundingClientRect().bottom + window.scrollY); }")
        page.screenshot(path=str(out / "dashboard.png"), full_page=True, clip={"x": 0, "y": 0, "width": 1400, "height": bottom + 16})

        page.set_viewport_size({"width": 1200, "height": 900})
        # The report is a self-contained download (no request leaves it): shown from its own bytes.
        response = page.request.get(f"{base_url}/studies/{first.id}/report.html")
        assert response.ok, response.status
        report = context.new_page()
        report.set_viewport_size({"width": 1200, "height": 900})
        report.set_content(response.text(), wait_until="load")
        bottom = report.evaluate("() => Math.ceil(document.getElementById('leaderboard').getBoundingClientRect().bottom + window.scrollY)")
        report.screenshot(path=str(out / "report.png"), full_page=True, clip={"x": 0, "y": 0, "width": 1200, "height": max(900, bottom + 24)})
        report.close()

        page.set_viewport_size({"width": 1400, "height": 900})
        page.goto(f"{base_url}/compare?study={first.id}&study={second.id}")
        page.locator("#comparison").wait_for()
        page.screenshot(path=str(out / "compare.png"), full_page=True)
        assert not errors, f"JavaScript errors: {errors}"
    finally:
        context.close()
    assert not guard.requests, f"requests left 127.0.0.1: {[r.url for r in guard.requests]}"
    return [out / name for name in NAMES]


def main(out: Path, browser: Any = None, *, evaluators: int = 40, n_boot: int = 50, encoder: str = "dinov2-vits14",
         weights: str | None = None, images_per_pool: int = 200, settings: dict[str, Any] | None = None) -> list[Path]:
    """Writes the four screenshots into ``out``; uses ``browser`` if given, else launches Chromium."""
    from hype.app import create_app
    from hype.config import load_config
    from hype.db import make_engine, make_session_factory
    from hype.migrate import upgrade

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="hype-researcher-screenshots-") as tmp:
        config = load_config(data_dir=Path(tmp) / "data", database_url=f"sqlite:///{tmp}/hype.db", secret_key="screenshots")
        engine = make_engine(config.database_url)
        upgrade(engine)
        session = make_session_factory(engine)()
        app = None
        try:
            first, second = build(session, config, evaluators=evaluators, n_boot=n_boot, encoder=encoder, weights=weights,
                                  images_per_pool=images_per_pool, work=Path(tmp), settings=settings)
            app = create_app(config)
            with LiveServer(app) as server:
                if browser is not None:
                    return take_screenshots(browser, server.url, first, second, out)
                from playwright.sync_api import sync_playwright

                with sync_playwright() as p:
                    b = launch_chromium(p)
                    try:
                        return take_screenshots(b, server.url, first, second, out)
                    finally:
                        b.close()
        finally:
            session.close()
            if app is not None:
                app.extensions["hype.engine"].dispose()
            engine.dispose()


def cli(argv: list[str] | None = None) -> list[Path]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots", help="folder for the PNGs (default: docs/screenshots)")
    parser.add_argument("--evaluators", type=int, default=40, help="simulated evaluators on the demo study (default 40)")
    parser.add_argument("--n-boot", type=int, default=50, help="bootstrap replicates per metric interval (default 50)")
    parser.add_argument("--encoder", default="dinov2-vits14", help="metrics encoder (default dinov2-vits14)")
    parser.add_argument("--weights", help="real encoder weights (else a randomly initialised tiny DINOv2)")
    args = parser.parse_args(argv)
    return main(args.out, evaluators=args.evaluators, n_boot=args.n_boot, encoder=args.encoder, weights=args.weights)


if __name__ == "__main__":
    for path in cli():
        print(path)
