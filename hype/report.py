"""The study report: one self-contained HTML file with everything a paper's results section needs.

`build_report(session, config, study)` returns the HTML; `write_report(..., path)` writes it. The file
makes no request of its own: CSS is inline, every plot and thumbnail is a `data:` URI, there is no
script and no link to any web address, so it can be archived, mailed or opened offline and always
shows the same thing. Everything user-given (study and model names, exclusion reasons) goes through
Jinja2's autoescaping; plot labels are made mathtext-safe in hype.report_plots.

What it shows, and where each number comes from
- Settings and seed: the study's stored settings (hype.protocol.StudySettings) and the options the
  scores were computed with (hype.study_scoring.ScoreSettings), including, for HYPE-time, whether the
  requested or the measured exposures were scored.
- Leaderboard, separability, ranking stability: `score_study` (hype.scoring), unchanged; the report
  only formats them (HYPE-∞ as % error, HYPE-time in ms).
- Per-evaluator distributions: the per-evaluator scores the t-test / ANOVA compare, from the same
  inputs `score_study` builds (same evaluators, same trials left out).
- Staircase traces (HYPE-time): the stored staircase states (the exposures each block presented and
  the answers), for a few evaluators per model spread over the range of their scores.
- Automated metrics: per encoder (Inception, DINOv2, CLIP), the newest MetricResult per model
  (hype.study_metrics.latest_metrics_by_encoder) with every number's bootstrap interval, the weights
  (sha256, source), preprocessing and device that produced them, and the PRD curves.
- Human vs automated: Spearman's rank correlation across models between the human score and every
  metric on every encoder, each metric oriented so that higher = better; a warning below 4 models.
- Exclusions: every Exclusion row (active or revoked) and the per-model counts of what scoring left out.
- Sample grid: per model, the generated images most often judged real and most often judged fake,
  and over the study the real images most often judged fake, from the judgments that were scored.

Evaluators are named by their assignment id and a pseudonym, the first 16 hex digits of
HMAC-SHA256(study.export_salt, "platform:worker_id"): stable within a study, not linkable across
studies, never the crowd platform's worker id itself, and equal to the `participant` column of
hype.exports, so a report row can be found in an export.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import io
import math
import warnings
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
from jinja2 import Environment, FileSystemLoader, StrictUndefined
from sqlalchemy import select
from sqlalchemy.orm import Session

import hype
from hype import report_plots as plots
from hype.config import Config
from hype.coverage import coverage_note
from hype.images import store_path
from hype.models import Assignment, Exclusion, GeneratorModel, Image, Judgment, Participant, StaircaseRecord, Study, Trial
from hype.protocol import StudySettings
from hype.scoring import MIN_EVALUATORS_FOR_CI, ScoringError, block_mode, evaluator_scores
from hype.staircase import StaircaseState
from hype.studies import study_settings
from hype.study_metrics import latest_metrics_by_encoder
from hype.study_scoring import StudyScore, score_study

__all__ = ["build_report", "write_report", "report_context", "pseudonym", "spearman", "METRIC_COLUMNS",
           "MIN_MODELS_FOR_CORRELATION"]

TEMPLATE = "report/report.html"
TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "templates"
MIN_MODELS_FOR_CORRELATION = 4
THUMB_PX = 96
DASH = "—"

# (values key, label, orientation: +1 higher = better, -1 lower = better, format)
METRIC_COLUMNS: tuple[tuple[str, str, int, str], ...] = (
    ("fid", "FID", -1, ".2f"),
    ("kid_mean", "KID", -1, ".4f"),
    ("f_8", "F_8 (recall)", +1, ".3f"),
    ("f_1_8", "F_1/8 (precision)", +1, ".3f"),
    ("precision", "precision", +1, ".3f"),
    ("recall", "recall", +1, ".3f"),
    ("density", "density", +1, ".3f"),
    ("coverage", "coverage", +1, ".3f"),
    ("cmmd", "CMMD", -1, ".4f"),
)
#: keys of MetricResult.values["ci"] by METRIC_COLUMNS key (PRD's F-scores live under "prd")
_CI_KEYS = {"fid": "fid", "kid_mean": "kid_mean", "f_8": "f_8", "f_1_8": "f_1_8", "precision": "precision",
            "recall": "recall", "density": "density", "coverage": "coverage", "cmmd": "cmmd"}


# --------------------------------------------------------------------------------------------------
# Public API


def build_report(
    session: Session,
    config: Config,
    study: Study,
    *,
    score: StudyScore | None = None,
    n_resamples: int | None = None,
    samples_per_group: int = 6,
    traces_per_model: int = 4,
    generated_at: dt.datetime | None = None,
) -> str:
    """The report as one HTML string. `score`: a `score_study` result to report (computed here, with
    `n_resamples` when given, if omitted). A study with nothing to score still renders, saying so."""
    context = report_context(session, config, study, score=score, n_resamples=n_resamples,
                             samples_per_group=samples_per_group, traces_per_model=traces_per_model,
                             generated_at=generated_at)
    return _environment().get_template(TEMPLATE).render(**context)


def write_report(session: Session, config: Config, study: Study, path: str | Path, **options: Any) -> Path:
    """Build the report and write it to `path` (UTF-8); returns the path."""
    html = build_report(session, config, study, **options)
    out = Path(path)
    if out.parent and not out.parent.exists():
        out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(html, encoding="utf-8")
    return out


def pseudonym(study: Study, platform: str, worker_id: str) -> str:
    digest = hmac.new(study.export_salt.encode(), f"{platform}:{worker_id}".encode(), hashlib.sha256).hexdigest()
    return digest[:16]


def _environment() -> Environment:
    # Not Flask's environment: the CLI renders the report without an app. Autoescape everything.
    return Environment(loader=FileSystemLoader(str(TEMPLATES_DIR)), autoescape=True, undefined=StrictUndefined,
                       lstrip_blocks=True)  # no trim_blocks: a line break after a tag is the space between words


# --------------------------------------------------------------------------------------------------
# Formatting


def _finite(v: Any) -> bool:
    return v is not None and not isinstance(v, bool) and isinstance(v, (int, float, np.floating, np.integer)) and math.isfinite(v)


def num(v: Any, spec: str = ".3f", scale: float = 1.0) -> str:
    return format(scale * float(v), spec) if _finite(v) else DASH


def pct(v: Any, spec: str = ".1f") -> str:
    return num(v, spec, 100.0)


def pvalue(p: Any) -> str:
    if not _finite(p):
        return DASH
    return "< 0.0001" if p < 1e-4 else format(float(p), ".4g")


def _timestamp(t: dt.datetime | None) -> str:
    if t is None:
        return DASH
    if t.tzinfo is None:
        t = t.replace(tzinfo=dt.timezone.utc)
    return t.astimezone(dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


@dataclass(frozen=True)
class _Units:
    """How a mode's human score reads."""

    mode: str

    @property
    def infinity(self) -> bool:
        return self.mode == "hype-infinity"

    @property
    def score_name(self) -> str:
        return "HYPE-∞" if self.infinity else "HYPE-time"

    @property
    def unit(self) -> str:
        return "% error" if self.infinity else "ms"

    @property
    def scale(self) -> float:
        return 100.0 if self.infinity else 1.0

    def fmt(self, v: Any) -> str:
        return num(v, ".1f", self.scale)

    @property
    def axis_label(self) -> str:
        return f"{self.score_name} ({self.unit})"

    @property
    def difference_unit(self) -> str:
        return "points" if self.infinity else "ms"


# --------------------------------------------------------------------------------------------------
# Sections


def report_context(
    session: Session,
    config: Config,
    study: Study,
    *,
    score: StudyScore | None = None,
    n_resamples: int | None = None,
    samples_per_group: int = 6,
    traces_per_model: int = 4,
    generated_at: dt.datetime | None = None,
) -> dict[str, Any]:
    """Everything the template renders, as plain values (strings already formatted, plots as data URIs)."""
    settings = study_settings(study)
    units = _Units(settings.mode)
    score_error = None
    if score is None:
        try:
            score = score_study(session, study, n_resamples=n_resamples)
        except ScoringError as exc:
            score_error = str(exc)
    include_incomplete = score.settings.include_incomplete if score else False
    measured = bool(score.settings.exposure == "measured") if score else (
        settings.mode == "hype-time" and settings.statistics.score_on_measured_exposure)
    exclude_flagged = score.settings.exclude_flagged_trials if score else settings.statistics.exclude_flagged_trials

    models = _model_names(session, study)
    order = _model_order(score, models)
    statuses = _statuses(session, study, include_incomplete, score.settings.min_catch_accuracy if score else None)
    per_evaluator = _per_evaluator_scores(session, study, statuses, measured, exclude_flagged) if score else {}
    colors = plots.model_colors(order)
    metrics = _metrics_section(session, study, order, colors)
    return {
        "study": _study_section(study, settings, score, units, generated_at),
        "settings_rows": _settings_rows(settings),
        "units": units,
        "score_error": score_error,
        "leaderboard": _leaderboard_section(score, units, colors) if score else None,
        "separability": _separability_section(score, units) if score else None,
        "ranking": _ranking_section(score) if score else None,
        "evaluators": _evaluator_section(per_evaluator, order, units, colors),
        "staircases": _staircase_section(session, settings, per_evaluator, order, units, traces_per_model, measured)
        if settings.mode == "hype-time" else None,
        "metrics": metrics,
        "correlation": _correlation_section(score, metrics) if score else None,
        "exclusions": _exclusion_section(session, study, score, order),
        "stopping": _stopping_section(session, study, settings, units),
        "samples": _sample_section(session, config, study, statuses, exclude_flagged, order, samples_per_group),
        "min_models_for_correlation": MIN_MODELS_FOR_CORRELATION,
    }


def _stopping_section(session: Session, study: Study, settings: StudySettings, units: _Units) -> dict[str, Any] | None:
    """When and by which rule each model's collection stopped (hype.stopping), as stored when it did;
    None for a study without a target certainty."""
    from hype import stopping
    from hype.stopping_state import rule_for, states

    rule = rule_for(settings)
    if not rule.active:
        return None
    stop = settings.stopping
    unit = "points" if units.infinity else "ms"
    goal = [f"a {100 * rule.level:g}% interval of ±{stop.target_halfwidth:g} {unit}"] if stop.target_halfwidth else []
    goal += [f"a {100 * rule.separation_level:g}% interval clear of every other model's"] if stop.until_models_separate else []
    stored = states(session, study)
    rows = []
    for model in study.models:
        row = stored.get(model.id)
        if row is not None and row.stopped:
            rows.append({"model": model.name, "stopped": True, "n": row.stopped_n, "when": _timestamp(row.stopped_at),
                         "why": stopping.REASONS.get(row.reason or "", row.reason or "")})
        else:
            rows.append({"model": model.name, "stopped": False, "n": row.n_evaluators if row else 0})
    return {"goal": " or ".join(goal), "min_evaluators": stop.min_evaluators, "cap": settings.evaluators_per_model,
            "rows": rows}


def _model_names(session: Session, study: Study) -> dict[int, str]:
    rows = session.execute(select(GeneratorModel.id, GeneratorModel.name).where(GeneratorModel.study_id == study.id)
                           .order_by(GeneratorModel.position, GeneratorModel.id))
    return {r.id: r.name for r in rows}


def _model_order(score: StudyScore | None, models: dict[int, str]) -> list[str]:
    """Leaderboard order first, then the models nobody has scored yet in study order."""
    ranked = [r.model for r in score.leaderboard.rows] if score else []
    return ranked + [m for m in models.values() if m not in ranked]


def _study_section(study: Study, settings: StudySettings, score: StudyScore | None, units: _Units,
                   generated_at: dt.datetime | None) -> dict[str, Any]:
    if settings.mode == "hype-time":
        measured = score.settings.exposure == "measured" if score else settings.statistics.score_on_measured_exposure
        exposure = ("measured: the on-screen exposure the browser recorded, binned to each evaluator's display frame"
                    if measured else "requested: the staircase's exposure in ms, as the paper scored it")
    else:
        exposure = None
    scoring = None
    if score:
        s = score.settings
        scoring = {
            "method": s.method,
            "n_resamples": s.n_resamples,
            "confidence": f"{100 * s.confidence_level:g}%",
            "seed": s.seed,
            "exclude_flagged": s.exclude_flagged_trials,
            "include_incomplete": s.include_incomplete,
        }
    return {
        "name": study.name,
        "mode": settings.mode,
        "score_name": units.score_name,
        "seed": study.seed,
        "status": study.status,
        "slug": study.slug,
        "created": _timestamp(study.created_at),
        "published": _timestamp(study.published_at),
        "closed": _timestamp(study.closed_at),
        "generated": _timestamp(generated_at or dt.datetime.now(dt.timezone.utc)),
        "version": hype.__version__,
        "exposure": exposure,
        "time_score": _time_score_name(score, settings),
        "scoring": scoring,
    }


def _time_score_name(score: StudyScore | None, settings: StudySettings) -> str | None:
    """Which HYPE-time score the numbers are: the QUEST+ posterior threshold or the paper's block mode."""
    from hype.study_scoring import TIME_SCORE_NAMES

    if settings.mode != "hype-time":
        return None
    kind = score.settings.time_score if score and score.settings.time_score else (
        "posterior" if settings.time.adaptive else "mode")
    return TIME_SCORE_NAMES[kind]


def _settings_rows(settings: StudySettings) -> list[tuple[str, str]]:
    data = settings.to_dict()
    skip = {"mode", "seed", "infinity" if settings.mode == "hype-time" else "time"}
    rows: list[tuple[str, str]] = []

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                walk(f"{prefix}.{k}" if prefix else k, v)
        else:
            rows.append((prefix, "yes" if value is True else "no" if value is False else f"{value:g}" if isinstance(value, float) else str(value)))

    for key, value in data.items():
        if key not in skip:
            walk(key, value)
    return rows


def _sdt_cell(sdt: Any, name: str) -> str:
    """'1.23 (0.98 – 1.45)' for d' or c, '–' when the model has no evaluator."""
    if sdt is None:
        return "–"
    value, ci = getattr(sdt, name), getattr(sdt, f"{name}_ci")
    spec = "+.2f" if name == "criterion" else ".2f"
    return f"{value:{spec}} ({ci.low:{spec}} – {ci.high:{spec}})"


def _typical_n(board: Any) -> int | None:
    n = sorted(r.n_evaluators for r in board.rows if r.n_evaluators)
    return n[len(n) // 2] if n else None


def _leaderboard_section(score: StudyScore, units: _Units, colors: dict[str, str]) -> dict[str, Any]:
    board = score.leaderboard
    rows = []
    for r in board.rows:
        c = score.counts.get(r.model)
        rows.append({
            "rank": r.rank,
            "model": r.model,
            "estimate": units.fmt(r.estimate),
            "ci_low": units.fmt(r.ci_low),
            "ci_high": units.fmt(r.ci_high),
            "ci_shown": r.n_evaluators >= MIN_EVALUATORS_FOR_CI,
            "interval_method": r.interval_method,
            "se": units.fmt(r.standard_error),
            "fakes_error": units.fmt(r.fakes_error) if units.infinity else None,
            "reals_error": units.fmt(r.reals_error) if units.infinity else None,
            "n_evaluators": r.n_evaluators,
            "n_trials": r.n_trials,
            "left_out_evaluators": c.left_out_evaluators if c else 0,
            "letters": r.letters,
            "d_prime": _sdt_cell(r.sdt, "d_prime") if units.infinity else None,
            "criterion": _sdt_cell(r.sdt, "criterion") if units.infinity else None,
        })
    scored = [r for r in board.rows if r.n_evaluators]

    def bar(r: Any, end: float) -> float:  # no interval drawn below the minimum, as in the table
        return units.scale * (end if r.n_evaluators >= MIN_EVALUATORS_FOR_CI else r.estimate)

    plot = plots.forest_plot(
        [r.model for r in scored],
        [units.scale * r.estimate for r in scored],
        [bar(r, r.ci_low) for r in scored],
        [bar(r, r.ci_high) for r in scored],
        xlabel=f"{units.axis_label}, {100 * board.confidence_level:g}% CI",
        reference=50.0 if units.infinity else None,
        reference_label="chance (50%)" if units.infinity else None,
        colors=colors,
    ) if scored else None
    t = score.totals
    return {
        "rows": rows,
        "min_ci": MIN_EVALUATORS_FOR_CI,
        "some_without_ci": any(not row["ci_shown"] for row in rows),
        "plot": plot,
        "confidence": f"{100 * board.confidence_level:g}%",
        "method": board.method,
        "method_note": coverage_note(board.method, board.mode, _typical_n(board), board.confidence_level),
        "n_resamples": board.n_resamples,
        "unscored": list(score.unscored_models),
        "totals": {"scored_evaluators": t.scored_evaluators, "left_out_evaluators": t.left_out_evaluators,
                   "scored_trials": t.scored_trials, "left_out_trials": t.left_out_trials},
    }


_TEST_NAMES = {"student-t": "unpaired Student t-test", "welch-t": "Welch t-test", "anova+tukey": "one-way ANOVA with Tukey HSD"}


def _separability_section(score: StudyScore, units: _Units) -> dict[str, Any] | None:
    sep = score.leaderboard.separability
    if sep is None:
        return None
    anova = sep.test == "anova+tukey"
    return {
        "test": _TEST_NAMES.get(sep.test, sep.test),
        "statistic_name": "F" if anova else "t",
        "statistic": num(sep.statistic, ".3f"),
        "p_value": pvalue(sep.p_value),
        "alpha": f"{sep.alpha:g}",
        "significant": bool(_finite(sep.p_value) and sep.p_value < sep.alpha),
        "anova": anova,
        "level": f"{100 * (1 - sep.alpha):g}%",
        "pairwise": [
            {"a": p.model_a, "b": p.model_b, "difference": units.fmt(p.difference), "ci_low": units.fmt(p.ci_low),
             "ci_high": units.fmt(p.ci_high), "p_value": pvalue(p.p_value), "significant": p.significant}
            for p in sep.pairwise
        ],
        "letters": [(r.model, sep.letters.get(r.model, "")) for r in score.leaderboard.rows if r.model in sep.letters],
        "unit": units.difference_unit,
    }


def _ranking_section(score: StudyScore) -> dict[str, Any] | None:
    rs = score.leaderboard.ranking
    if rs is None:
        return None
    n = len(rs.ranking)
    return {
        "p_same": pct(rs.p_same_ranking),
        "n_resamples": score.leaderboard.n_resamples,
        "ranks": list(range(1, n + 1)),
        "rows": [{"model": m, "rank": i + 1, "p_at_rank": pct(rs.p_at_rank[m]),
                  "probabilities": [pct(p) for p in rs.rank_probabilities[m]]} for i, m in enumerate(rs.ranking)],
    }


# -- per-evaluator scores ---------------------------------------------------------------------------


def _statuses(session: Session, study: Study, include_incomplete: bool,
              min_catch_accuracy: float | None = None) -> dict[int, Any]:
    from hype.study_scoring import _evaluators  # the one definition of who counts

    return _evaluators(session, study, include_incomplete, min_catch_accuracy)


def _per_evaluator_scores(session: Session, study: Study, statuses: dict[int, Any], measured: bool,
                          exclude_flagged: bool) -> dict[str, list[tuple[int, float]]]:
    """model -> [(assignment id, score)] for every evaluator who counts, built exactly as
    `score_study` builds its inputs, so these are the values its t-test / ANOVA compared."""
    from hype.study_scoring import INCLUDED, _answers, _infinity_input, _time_input

    answers = _answers(session, study, measured)
    left_out = {str(ev.id) for ev in statuses.values() if ev.status != INCLUDED}
    answers = [a for a in answers if a.evaluator in statuses]
    if not answers:
        return {}
    time_mode = study_settings(study).mode == "hype-time"
    data = (_time_input(answers, statuses, left_out, exclude_flagged, measured) if time_mode
            else _infinity_input(answers, statuses, left_out, exclude_flagged))
    out: dict[str, list[tuple[int, float]]] = {}
    for model in data.models():
        part = data.select(model).included()
        values = evaluator_scores(part)
        out[model] = [(int(e), float(v)) for e, v in zip(part.evaluator.tolist(), values.tolist())]
    return out


def _evaluator_section(per_evaluator: dict[str, list[tuple[int, float]]], order: list[str], units: _Units,
                       colors: dict[str, str]) -> dict[str, Any] | None:
    models = [m for m in order if per_evaluator.get(m)]
    if not models:
        return None
    scaled = {m: [units.scale * v for _, v in per_evaluator[m]] for m in models}
    rows = []
    for m in models:
        v = np.asarray(scaled[m], dtype=float)
        v = v[np.isfinite(v)]
        rows.append({
            "model": m, "n": int(v.size),
            "mean": num(v.mean(), ".1f") if v.size else DASH,
            "sd": num(v.std(ddof=1), ".1f") if v.size > 1 else DASH,
            "median": num(np.median(v), ".1f") if v.size else DASH,
            "min": num(v.min(), ".1f") if v.size else DASH,
            "max": num(v.max(), ".1f") if v.size else DASH,
        })
    plot = plots.evaluator_distribution_plot(scaled, ylabel=f"per-evaluator {units.axis_label}",
                                             reference=50.0 if units.infinity else None, colors=colors)
    return {"rows": rows, "plot": plot}


# -- staircases --------------------------------------------------------------------------------------


def _spread(items: Sequence[tuple[int, float]], k: int) -> list[tuple[int, float]]:
    """Up to k evaluators spread over the range of their scores (lowest, ..., highest)."""
    ranked = sorted(items, key=lambda t: (t[1] if math.isfinite(t[1]) else math.inf, t[0]))
    if len(ranked) <= k:
        return ranked
    idx = sorted({int(round(i)) for i in np.linspace(0, len(ranked) - 1, k)})
    return [ranked[i] for i in idx]


def _staircase_section(session: Session, settings: StudySettings, per_evaluator: dict[str, list[tuple[int, float]]],
                       order: list[str], units: _Units, traces_per_model: int, measured: bool) -> dict[str, Any]:
    chosen = {m: _spread(per_evaluator.get(m, []), traces_per_model) for m in order}
    ids = [a for picks in chosen.values() for a, _ in picks]
    records: dict[int, dict[int, StaircaseRecord]] = defaultdict(dict)
    if ids:
        for rec in session.scalars(select(StaircaseRecord).where(StaircaseRecord.assignment_id.in_(ids))):
            records[rec.assignment_id][rec.block] = rec
    t = settings.time
    models, problems = [], []
    for m in order:
        traces = []
        for assignment_id, value in chosen[m]:
            blocks = []
            for block in sorted(records.get(assignment_id, {})):
                rec = records[assignment_id][block]
                try:
                    if rec.config.get("procedure") == "quest+":  # QUEST+: the history is the trace
                        levels = rec.config["levels_ms"]
                        history = rec.state["history"]
                        state = StaircaseState(float(rec.state["intensity"]),
                                               intensities=tuple(float(levels[k]) for k, _ in history),
                                               responses=tuple(bool(c) for _, c in history))
                    else:
                        state = StaircaseState.from_dict(rec.state)
                except (ValueError, KeyError, IndexError, TypeError) as exc:
                    problems.append(f"evaluator {assignment_id}, block {block + 1}: {exc}")
                    continue
                mode = block_mode(state.intensities) if state.intensities else None
                blocks.append({"intensities": list(state.intensities), "responses": list(state.responses), "mode": mode})
            if blocks:
                label = f"evaluator {assignment_id}: scored {units.fmt(value)} ms" + (" (measured)" if measured else "")
                traces.append({"label": label, "blocks": blocks})
        if traces:
            models.append({"model": m, "n_shown": len(traces), "n_evaluators": len(per_evaluator.get(m, [])),
                           "plot": plots.staircase_plot(traces, min_ms=t.min_ms, max_ms=t.max_ms)})
    return {
        "models": models,
        "problems": problems,
        "rule": f"−{t.step_down_ms:g} ms after a correct answer, +{t.step_up_ms:g} ms after a wrong one, "
                f"start {t.start_ms:g} ms, range [{t.min_ms:g}, {t.max_ms:g}] ms",
        "n_blocks": t.n_blocks,
        "trials_per_block": t.trials_per_block,
    }


# -- automated metrics -------------------------------------------------------------------------------


def _metrics_section(session: Session, study: Study, order: list[str], colors: dict[str, str]) -> dict[str, Any]:
    names = _model_names(session, study)
    encoders = []
    for encoder, by_id in latest_metrics_by_encoder(session, study).items():
        latest = {names[mid]: r for mid, r in by_id.items() if mid in names}
        if latest:
            encoders.append(_encoder_metrics(encoder, latest, order, colors))
    return {
        "encoders": encoders,
        # the rows of every encoder, for the correlation section
        "rows": [row for e in encoders for row in e["rows"]],
    }


def _cell(value: Any, ci: dict[str, Any] | None, spec: str) -> dict[str, str]:
    low, high = (ci or {}).get("low"), (ci or {}).get("high")
    return {"value": num(value, spec), "ci": f"[{num(low, spec)}, {num(high, spec)}]" if _finite(low) and _finite(high) else ""}


def _encoder_metrics(encoder: str, latest: dict[str, Any], order: list[str], colors: dict[str, str]) -> dict[str, Any]:
    rows, curves, weights = [], {}, {}
    notes: dict[str, list[str]] = {}  # message -> models, so a warning every model shares is said once
    fd_name = "FID"
    for m in [m for m in order if m in latest]:
        r = latest[m]
        v = r.values or {}
        fd_name = v.get("fd_name") or fd_name
        prd = v.get("prd") or {}
        ci = v.get("ci") or {}
        flat = {**{k: v.get(k) for k in ("fid", "kid_mean", "kid_std", "precision", "recall", "density", "coverage", "cmmd")},
                "f_8": prd.get("f_8"), "f_1_8": prd.get("f_1_8")}
        key = (r.weights_sha256, r.weights_source, r.device)
        if key not in weights:
            weights[key] = {"sha256": r.weights_sha256, "source": r.weights_source, "device": r.device,
                            "preprocessing": (v.get("features") or {}).get("preprocessing"), "models": []}
        weights[key]["models"].append(m)
        cells = {k: _cell(flat[k], ci.get(_CI_KEYS[k]), spec) for k, _, _, spec in METRIC_COLUMNS}
        if _finite(flat["kid_mean"]) and _finite(flat["kid_std"]):
            cells["kid_mean"]["value"] += f" ± {num(flat['kid_std'], '.4f')}"
        rows.append({
            "model": m,
            "encoder": encoder,
            "values": flat,
            "cells": cells,
            "fid": num(flat["fid"], ".2f"),
            "kid": f"{num(flat['kid_mean'], '.4f')} ± {num(flat['kid_std'], '.4f')}" if _finite(flat["kid_mean"]) else DASH,
            "n_real": v.get("n_real", DASH), "n_fake": v.get("n_fake", DASH),
            "weights": r.weights_sha256[:12],
            "computed": _timestamp(r.created_at),
        })
        for name, message in (v.get("errors") or {}).items():
            notes.setdefault(f"{name} not computed: {message}", []).append(m)
        for message in v.get("warnings") or []:
            notes.setdefault(str(message), []).append(m)
        p, q = prd.get("precision"), prd.get("recall")
        if isinstance(p, list) and isinstance(q, list) and p and len(p) == len(q):
            curves[m] = (p, q)
    params: dict[str, Any] = {}
    first = latest[rows[0]["model"]].values or {} if rows else {}
    params = {k: v for k, v in (first.get("params") or {}).items() if k != "torch"}
    has_cmmd = any(_finite(r["values"]["cmmd"]) for r in rows)
    columns = [(k, fd_name if k == "fid" else label) for k, label, _, _ in METRIC_COLUMNS if k != "cmmd" or has_cmmd]
    return {
        "encoder": encoder,
        "fd_name": fd_name,
        "columns": columns,
        "rows": rows,
        "weights": list(weights.values()),
        "prd_plot": plots.prd_plot(curves, colors=colors) if curves else None,
        "notes": [{"message": message, "models": models} for message, models in notes.items()],
        "params": sorted(params.items()),
        "missing": [m for m in order if m not in latest],
    }


EXACT_SPEARMAN_MAX_N = 8


def spearman(x: Sequence[float], y: Sequence[float]) -> tuple[float, float]:
    """Spearman's ρ (scipy) and a two-sided p-value: exact, over every permutation, up to
    EXACT_SPEARMAN_MAX_N models (scipy's t approximation says p ≈ 0 for a perfect ρ over 4 models,
    where the exact p is 1/12); scipy's approximation above that."""
    from itertools import permutations

    from scipy import stats

    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = stats.spearmanr(x, y)
    rho, p = float(res.statistic), float(res.pvalue)
    if not math.isfinite(rho) or x.size > EXACT_SPEARMAN_MAX_N:
        return rho, p
    rx, ry = stats.rankdata(x), stats.rankdata(y)
    rx, ry = rx - rx.mean(), ry - ry.mean()
    denominator = math.sqrt(float((rx**2).sum() * (ry**2).sum()))
    perms = np.asarray(list(permutations(range(x.size))))
    null = (ry[perms] * rx[None, :]).sum(axis=1) / denominator
    return rho, float(np.mean(np.abs(null) >= abs(rho) - 1e-12))


def _correlation_section(score: StudyScore, metrics: dict[str, Any]) -> dict[str, Any]:
    human = {r.model: r.estimate for r in score.leaderboard.rows if r.n_evaluators and _finite(r.estimate)}
    results = []
    rank_tables = []
    for enc in metrics["encoders"]:
        by_model = {row["model"]: row["values"] for row in enc["rows"]}
        for key, label, sign, _ in METRIC_COLUMNS:
            pairs = [(human[m], by_model[m][key]) for m in human if m in by_model and _finite(by_model[m].get(key))]
            n = len(pairs)
            if key == "cmmd" and not n:
                continue  # CMMD exists on CLIP features only
            rho = p = math.nan
            if n >= 2:
                h = np.asarray([a for a, _ in pairs], dtype=float)
                x = sign * np.asarray([b for _, b in pairs], dtype=float)
                if np.ptp(h) > 0 and np.ptp(x) > 0:
                    rho, p = spearman(h, x)
            results.append({"encoder": enc["encoder"], "metric": enc["fd_name"] if key == "fid" else label,
                            "direction": "lower is better (negated)" if sign < 0 else "higher is better",
                            "n": n, "rho": num(rho, ".3f"), "p_value": pvalue(p) if n >= 3 else DASH,
                            "rho_value": rho})
        ranks = []
        for r in score.leaderboard.rows:
            v = by_model.get(r.model)
            if v is not None:
                ranks.append({"model": r.model, "human_rank": r.rank, "values": {k: v.get(k) for k, *_ in METRIC_COLUMNS}})
        metric_ranks = {}
        for key, _, sign, _ in METRIC_COLUMNS:
            vals = [(row["model"], row["values"][key]) for row in ranks if _finite(row["values"][key])]
            ordered = sorted(vals, key=lambda t: -sign * t[1])
            metric_ranks[key] = {m: i + 1 for i, (m, _) in enumerate(ordered)}
        for row in ranks:
            row["fid_rank"] = metric_ranks["fid"].get(row["model"], DASH)
            row["f_8_rank"] = metric_ranks["f_8"].get(row["model"], DASH)
            row["f_1_8_rank"] = metric_ranks["f_1_8"].get(row["model"], DASH)
        rank_tables.append({"encoder": enc["encoder"], "fd_name": enc["fd_name"], "ranks": ranks})
    n_models = max((r["n"] for r in results), default=0)
    return {
        "results": results,
        "n_models": n_models,
        "too_few": n_models < MIN_MODELS_FOR_CORRELATION,
        "exact_max_n": EXACT_SPEARMAN_MAX_N,
        "rank_tables": rank_tables,
        "ranks": rank_tables[0]["ranks"] if rank_tables else [],
    }


# -- exclusions ---------------------------------------------------------------------------------------


_LEFT_OUT_COLUMNS = (
    ("scored_evaluators", "scored evaluators"),
    ("excluded_evaluators", "excluded"),
    ("failed_qualification", "failed qualification"),
    ("failed_catch", "failed catch trials"),
    ("incomplete_evaluators", "incomplete"),
    ("no_trials_left", "no trial left"),
    ("scored_trials", "scored trials"),
    ("flagged_trials", "flagged trials left out"),
    ("missing_exposure_trials", "trials without the scored exposure"),
    ("trials_of_left_out_evaluators", "trials of left-out evaluators"),
)


def _exclusion_section(session: Session, study: Study, score: StudyScore | None, order: list[str]) -> dict[str, Any]:
    rows = session.execute(
        select(Exclusion.id, Exclusion.assignment_id, Exclusion.reason, Exclusion.rule, Exclusion.created_at,
               Exclusion.revoked_at, Participant.platform, Participant.worker_id, GeneratorModel.name)
        .join(Assignment, Exclusion.assignment_id == Assignment.id)
        .join(Participant, Assignment.participant_id == Participant.id)
        .join(GeneratorModel, Assignment.model_id == GeneratorModel.id)
        .where(Assignment.study_id == study.id)
        .order_by(Exclusion.created_at, Exclusion.id)
    ).all()
    exclusions = [{
        "evaluator": r.assignment_id,
        "pseudonym": pseudonym(study, r.platform, r.worker_id),
        "model": r.name,
        "reason": r.reason,
        "rule": r.rule or "by hand",
        "created": _timestamp(r.created_at),
        "active": r.revoked_at is None,
        "revoked": _timestamp(r.revoked_at) if r.revoked_at else None,
    } for r in rows]
    counts = []
    if score:
        for m in order:
            c = score.counts.get(m)
            if c is not None:
                counts.append({"model": m, "values": [getattr(c, k) for k, _ in _LEFT_OUT_COLUMNS]})
    return {
        "rows": exclusions,
        "n_active": sum(e["active"] for e in exclusions),
        "columns": [label for _, label in _LEFT_OUT_COLUMNS],
        "counts": counts,
        "exclude_flagged": score.settings.exclude_flagged_trials if score else None,
    }


# -- sample grid -----------------------------------------------------------------------------------


@dataclass
class _ImageTally:
    image_id: int
    file_sha256: str
    model: str | None
    shown: int = 0
    judged_fake: int = 0

    @property
    def judged_real(self) -> int:
        return self.shown - self.judged_fake


def _thumbnail(config: Config, file_sha256: str) -> str | None:
    from PIL import Image as PILImage

    path = store_path(config.image_store, file_sha256)
    try:
        with PILImage.open(path) as img:
            img = img.convert("RGB")
            img.thumbnail((THUMB_PX, THUMB_PX))
            buf = io.BytesIO()
            img.save(buf, format="PNG", optimize=True)
    except (OSError, ValueError):
        return None
    return plots.png_bytes_uri(buf.getvalue())


def _tiles(config: Config, tallies: Iterable[_ImageTally], cache: dict[int, str | None]) -> list[dict[str, Any]]:
    out = []
    for t in tallies:
        if t.image_id not in cache:
            cache[t.image_id] = _thumbnail(config, t.file_sha256)
        out.append({"src": cache[t.image_id], "image_id": t.image_id, "shown": t.shown, "judged_real": t.judged_real,
                    "judged_fake": t.judged_fake})
    return out


def _sample_section(session: Session, config: Config, study: Study, statuses: dict[int, Any], exclude_flagged: bool,
                    order: list[str], k: int) -> dict[str, Any]:
    from hype.study_scoring import INCLUDED

    counted = {ev_id for ev_id, ev in statuses.items() if ev.status == INCLUDED}
    rows = session.execute(
        select(Trial.image_id, Trial.is_fake, Judgment.judged_fake, Judgment.flagged, Judgment.assignment_id,
               Image.file_sha256, GeneratorModel.name.label("model"))
        .join(Judgment, Judgment.trial_id == Trial.id)
        .join(Image, Trial.image_id == Image.id)
        .outerjoin(GeneratorModel, Image.model_id == GeneratorModel.id)
        .join(Assignment, Judgment.assignment_id == Assignment.id)
        .where(Assignment.study_id == study.id, Trial.phase == "task", Trial.is_catch.is_(False))
    ).all()
    tallies: dict[int, _ImageTally] = {}
    for r in rows:
        if r.assignment_id not in counted or (exclude_flagged and r.flagged):
            continue
        t = tallies.setdefault(r.image_id, _ImageTally(r.image_id, r.file_sha256, r.model if r.is_fake else None))
        t.shown += 1
        t.judged_fake += bool(r.judged_fake)
    fakes: dict[str, list[_ImageTally]] = defaultdict(list)
    reals: list[_ImageTally] = []
    for t in tallies.values():
        (fakes[t.model] if t.model is not None else reals).append(t)
    cache: dict[int, str | None] = {}
    models = []
    for m in order:
        pool = fakes.get(m, [])
        if not pool:
            continue
        most_real = sorted(pool, key=lambda t: (-t.judged_real, -t.judged_real / t.shown, t.image_id))[:k]
        most_fake = sorted(pool, key=lambda t: (-t.judged_fake, -t.judged_fake / t.shown, t.image_id))[:k]
        models.append({
            "model": m,
            "n_images": len(pool),
            "most_real": _tiles(config, [t for t in most_real if t.judged_real > 0], cache),
            "most_fake": _tiles(config, [t for t in most_fake if t.judged_fake > 0], cache),
        })
    real_fake = sorted(reals, key=lambda t: (-t.judged_fake, -t.judged_fake / t.shown, t.image_id))[: max(k, 8)]
    return {
        "models": models,
        "reals": _tiles(config, [t for t in real_fake if t.judged_fake > 0], cache),
        "n_reals": len(reals),
        "k": k,
        "thumb_px": THUMB_PX,
        "any": bool(tallies),
    }
