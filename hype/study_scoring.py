"""Scoring a stored study: its task judgments -> a HYPE leaderboard, with what was left out and why.

The thin DB-aware shell over hype.scoring (which holds every statistic): it reads the study's rows,
decides which evaluators and trials count, builds `InfinityCounts` / `TimeBlocks` and calls
`leaderboard`. No Flask; the CLI (`hype score STUDY`) and, later, the dashboard call it.

Who counts, and why
- Only task-phase judgments: qualification answers measure whether a worker may do the task, not
  how realistic a model is, and their fakes come from several models.
- By default only evaluators whose assignment is `completed`: HYPE-time's score is the modal
  exposure of each staircase block, and a block cut short is still near its start value (500 ms), so
  partial blocks bias the estimator; for HYPE-infinity a half-done task is not the balanced 50/50
  task the protocol scores. `include_incomplete=True` scores them anyway (a sensitivity check).
- Evaluators with an active `Exclusion` (a researcher's or a rule's decision, undone by revoking it)
  and evaluators who failed qualification are left out. Left-out evaluators are counted per model and
  per reason, so a report can say how much was dropped.
- Catch trials (docs/protocol.md, Catch trials) are never scored: every query here reads scored trials
  only. An evaluator right on fewer catch trials than the study's `catch.min_accuracy` is left out
  (`failed_catch`), like a failed qualification: the catch rule of hype.quality, applied here so a
  score never depends on whether someone pressed "apply rules" on the dashboard.
- Flagged trials (exposure off by more than a frame, focus lost...) are left out when the study's
  `statistics.exclude_flagged_trials` is set (the default), and counted.
- HYPE-time scores the requested exposure by default (as the paper did); the measured on-screen
  exposure when `statistics.score_on_measured_exposure` or `on_measured=True`. Measured values are
  binned to each evaluator's own display frame before the block mode is taken: they jitter by
  fractions of a millisecond, so unbinned every value is unique and the "mode" degenerates into the
  mean of the block.
- The bootstrap is seeded from the study seed, so `hype score` prints the same intervals every run.
"""

from __future__ import annotations

import datetime as dt
import math
import statistics as pystats
from collections import defaultdict
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Collection

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from hype.models import Assignment, EvaluatorScore, Exclusion, GeneratorModel, Judgment, ScoreRecord, Study, Trial
from hype.quality import catch_accuracy, fails_catch
from hype.scoring import (METHODS, InfinityCounts, default_method, Leaderboard, ScoringError, TimeBlocks,
                          evaluator_scores, leaderboard)
from hype.studies import study_settings
from hype.study_metrics import DEFAULT_ENCODER, latest_metrics_by_encoder

__all__ = [
    "ScoringError",
    "ScoreSettings",
    "ModelCounts",
    "StudyScore",
    "score_study",
    "store_score",
    "metric_summary",
]

# Why an evaluator is left out; an evaluator is counted under the first reason that applies.
FAILED_QUALIFICATION = "failed_qualification"
EXCLUDED = "excluded"
FAILED_CATCH = "failed_catch"
INCOMPLETE = "incomplete"
INCLUDED = "included"

# Summary values shown beside the human scores (the PRD curves themselves stay in MetricResult).
METRIC_KEYS = ("fid", "kid_mean", "kid_std", "precision", "recall", "density", "coverage", "cmmd")
PRD_KEYS = ("f_8", "f_1_8")


# --------------------------------------------------------------------------------------------------
# Result


@dataclass(frozen=True)
class ScoreSettings:
    """What the numbers were computed with, stored beside them so a record explains itself."""

    mode: str
    method: str
    n_resamples: int
    confidence_level: float
    seed: int
    exclude_flagged_trials: bool
    include_incomplete: bool
    exposure: str | None  # "requested" | "measured" for HYPE-time; None for HYPE-infinity
    time_score: str | None = None  # HYPE-time: "posterior" (QUEST+ threshold) | "mode" (the paper's)
    min_catch_accuracy: float | None = None  # evaluators below it left out; None: no catch trials / rule off

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class ModelCounts:
    """Per model: evaluators by what happened to them, and task trials by what happened to them.

    `scored_*` equal the leaderboard row's n_evaluators / n_trials. `no_trials_left` are evaluators
    who would count but have no scorable trial (all flagged, or no task answers at all)."""

    scored_evaluators: int = 0
    excluded_evaluators: int = 0
    failed_qualification: int = 0
    failed_catch: int = 0
    incomplete_evaluators: int = 0
    no_trials_left: int = 0
    scored_trials: int = 0
    flagged_trials: int = 0  # of evaluators who count, left out because flagged
    missing_exposure_trials: int = 0  # HYPE-time trials without the exposure being scored
    trials_of_left_out_evaluators: int = 0

    @property
    def left_out_evaluators(self) -> int:
        return (self.excluded_evaluators + self.failed_qualification + self.failed_catch + self.incomplete_evaluators
                + self.no_trials_left)

    @property
    def left_out_trials(self) -> int:
        return self.flagged_trials + self.missing_exposure_trials + self.trials_of_left_out_evaluators

    def add(self, other: "ModelCounts") -> "ModelCounts":
        return ModelCounts(**{k: getattr(self, k) + getattr(other, k) for k in asdict(self)})

    def to_dict(self) -> dict[str, int]:
        return {**asdict(self), "left_out_evaluators": self.left_out_evaluators, "left_out_trials": self.left_out_trials}


@dataclass(frozen=True, eq=False)
class StudyScore:
    """A study's leaderboard plus everything a report must say about how it was obtained."""

    study_id: int
    study_name: str
    leaderboard: Leaderboard
    settings: ScoreSettings
    counts: dict[str, ModelCounts]  # per model name
    metrics: dict[str, dict[str, Any]] = field(default_factory=dict)  # per model name, newest Inception run
    # per encoder, per model name, newest run (Inception's is ``metrics`` again)
    metrics_by_encoder: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    unscored_models: tuple[str, ...] = ()  # models of the study with no evaluator rows at all

    @property
    def mode(self) -> str:
        return self.settings.mode

    @property
    def totals(self) -> ModelCounts:
        total = ModelCounts()
        for c in self.counts.values():
            total = total.add(c)
        return total

    @property
    def n_included_evaluators(self) -> int:
        return self.totals.scored_evaluators

    @property
    def n_excluded_evaluators(self) -> int:
        return self.totals.left_out_evaluators

    @property
    def n_included_trials(self) -> int:
        return self.totals.scored_trials

    @property
    def n_excluded_trials(self) -> int:
        return self.totals.left_out_trials

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe (non-finite numbers become null, which PostgreSQL's JSON requires)."""
        return {
            "kind": "hype-study-score",
            "study": {"id": self.study_id, "name": self.study_name},
            "settings": self.settings.to_dict(),
            "leaderboard": self.leaderboard.to_dict(),
            "counts": {m: c.to_dict() for m, c in sorted(self.counts.items())},
            "totals": self.totals.to_dict(),
            "unscored_models": list(self.unscored_models),
            "metrics": _json_safe(self.metrics),
            "metrics_by_encoder": _json_safe(self.metrics_by_encoder),
        }


# --------------------------------------------------------------------------------------------------
# Reading the study


@dataclass(frozen=True)
class _Evaluator:
    id: int
    model: str
    status: str  # INCLUDED | EXCLUDED | FAILED_QUALIFICATION | FAILED_CATCH | INCOMPLETE
    refresh_ms: float | None


@dataclass(frozen=True)
class _Answer:
    evaluator: int
    block: int
    is_fake: bool
    judged_fake: bool
    flagged: bool
    exposure_ms: float | None
    refresh_ms: float | None


def _classify(stage: str, qualification_passed: bool | None, excluded: bool, include_incomplete: bool) -> str:
    if qualification_passed is False or stage == "failed":
        return FAILED_QUALIFICATION
    if excluded:
        return EXCLUDED
    if stage != "completed" and not include_incomplete:
        return INCOMPLETE
    return INCLUDED


def _catch_accuracies(session: Session, study: Study) -> dict[int, float | None]:
    """Each evaluator's share right on their answered catch trials (only evaluators who answered some)."""
    answers: dict[int, list[bool]] = defaultdict(list)
    for assignment_id, correct in session.execute(
        select(Judgment.assignment_id, Judgment.correct)
        .join(Trial, Judgment.trial_id == Trial.id)
        .join(Assignment, Judgment.assignment_id == Assignment.id)
        .where(Assignment.study_id == study.id, Trial.is_catch.is_(True))
    ):
        answers[assignment_id].append(bool(correct))
    return {k: catch_accuracy(v) for k, v in answers.items()}


def _evaluators(session: Session, study: Study, include_incomplete: bool,
                min_catch_accuracy: float | None = None) -> dict[int, _Evaluator]:
    catch = _catch_accuracies(session, study) if min_catch_accuracy else {}
    active = set(
        session.scalars(
            select(Exclusion.assignment_id)
            .join(Assignment, Exclusion.assignment_id == Assignment.id)
            .where(Assignment.study_id == study.id, Exclusion.revoked_at.is_(None))
        )
    )
    rows = session.execute(
        select(Assignment.id, GeneratorModel.name, Assignment.stage, Assignment.qualification_passed,
               Assignment.refresh_interval_ms)
        .join(GeneratorModel, Assignment.model_id == GeneratorModel.id)
        .where(Assignment.study_id == study.id)
        .order_by(Assignment.id)
    )
    out = {}
    for r in rows:
        status = _classify(r.stage, r.qualification_passed, r.id in active, include_incomplete)
        if status == INCLUDED and fails_catch(catch.get(r.id), min_catch_accuracy):
            status = FAILED_CATCH
        out[r.id] = _Evaluator(r.id, r.name, status, r.refresh_interval_ms)
    return out


def _answers(session: Session, study: Study, measured: bool, model_id: int | None = None,
             assignment_ids: Collection[int] | None = None) -> list[_Answer]:
    """Task-phase judgments only, in presentation order (of one model's evaluators, or of the given
    sessions, if given)."""
    query = (
        select(Judgment.assignment_id, Trial.block, Trial.is_fake, Judgment.judged_fake, Judgment.flagged,
               Judgment.requested_ms, Trial.requested_ms.label("trial_requested_ms"), Judgment.measured_ms,
               Judgment.refresh_interval_ms)
        .join(Trial, Judgment.trial_id == Trial.id)
        .join(Assignment, Judgment.assignment_id == Assignment.id)
        .where(Assignment.study_id == study.id, Trial.phase == "task", Trial.is_catch.is_(False))
        .order_by(Judgment.assignment_id, Trial.position)
    )
    if model_id is not None:
        query = query.where(Assignment.model_id == model_id)
    if assignment_ids is not None:
        query = query.where(Judgment.assignment_id.in_(list(assignment_ids)))
    rows = session.execute(query)
    out = []
    for r in rows:
        exposure = r.measured_ms if measured else (r.requested_ms if r.requested_ms is not None else r.trial_requested_ms)
        out.append(_Answer(r.assignment_id, r.block, bool(r.is_fake), bool(r.judged_fake), bool(r.flagged),
                           exposure, r.refresh_interval_ms))
    return out


# --------------------------------------------------------------------------------------------------
# Building the scoring inputs


def _usable_exposure(value: float | None) -> bool:
    return value is not None and math.isfinite(value)


def _dropped(answer: _Answer, exclude_flagged: bool, time_mode: bool) -> bool:
    return (exclude_flagged and answer.flagged) or (time_mode and not _usable_exposure(answer.exposure_ms))


def _infinity_input(answers: list[_Answer], evaluators: dict[int, _Evaluator], left_out: set[str],
                    exclude_flagged: bool) -> InfinityCounts:
    return InfinityCounts.from_trials(
        evaluator=[str(a.evaluator) for a in answers],
        model=[evaluators[a.evaluator].model for a in answers],
        is_fake=[a.is_fake for a in answers],
        judged_fake=[a.judged_fake for a in answers],
        excluded=[_dropped(a, exclude_flagged, False) for a in answers],
        excluded_evaluators=left_out,
        exclude_flagged=True,  # `excluded` above already encodes the study's setting
    )


def _frame_ms(evaluator: _Evaluator, answers: list[_Answer]) -> float | None:
    """The evaluator's display frame: as measured at the browser check, else the median reported
    with their answers; None (no binning) when neither was recorded."""
    if evaluator.refresh_ms and evaluator.refresh_ms > 0:
        return float(evaluator.refresh_ms)
    reported = [a.refresh_ms for a in answers if a.refresh_ms and a.refresh_ms > 0]
    return float(pystats.median(reported)) if reported else None


def _time_input(answers: list[_Answer], evaluators: dict[int, _Evaluator], left_out: set[str],
                exclude_flagged: bool, measured: bool) -> TimeBlocks:
    """One `TimeBlocks.from_trials` per display-frame resolution (measured exposures are binned to
    the frame they were shown for; requested ones are already on the staircase's grid), concatenated."""
    by_evaluator: dict[int, list[_Answer]] = defaultdict(list)
    for a in answers:
        by_evaluator[a.evaluator].append(a)
    groups: dict[float | None, list[_Answer]] = defaultdict(list)
    for ev_id, rows in by_evaluator.items():
        resolution = _frame_ms(evaluators[ev_id], rows) if measured else None
        groups[resolution].extend(rows)
    parts = [
        TimeBlocks.from_trials(
            evaluator=[str(a.evaluator) for a in rows],
            model=[evaluators[a.evaluator].model for a in rows],
            block=[a.block for a in rows],
            exposure_ms=[a.exposure_ms if _usable_exposure(a.exposure_ms) else 0.0 for a in rows],
            excluded=[_dropped(a, exclude_flagged, True) for a in rows],
            excluded_evaluators=left_out,
            exclude_flagged=True,
            resolution_ms=resolution,
        )
        for resolution, rows in sorted(groups.items(), key=lambda kv: (kv[0] is None, kv[0] or 0.0))
    ]
    return parts[0] if len(parts) == 1 else TimeBlocks.concat(parts)


def _posterior_input(answers: list[_Answer], evaluators: dict[int, _Evaluator], left_out: set[str],
                     exclude_flagged: bool, time_settings: Any) -> TimeBlocks:
    """One score per evaluator: the posterior 75% threshold from all their kept task trials, as a
    single 'block' so the bootstrap and tests treat it like any evaluator score."""
    from hype.adaptive import QuestConfig, threshold_from_trials

    cfg = QuestConfig.from_time_settings(time_settings)
    by_evaluator: dict[int, list[_Answer]] = defaultdict(list)
    for a in answers:
        if not _dropped(a, exclude_flagged, True):
            by_evaluator[a.evaluator].append(a)
    dropped: dict[int, int] = defaultdict(int)
    for a in answers:
        dropped[a.evaluator] += _dropped(a, exclude_flagged, True)
    ids = sorted(by_evaluator)
    scores = [threshold_from_trials(cfg, [a.exposure_ms for a in by_evaluator[e]],
                                    [a.is_fake == a.judged_fake for a in by_evaluator[e]]) for e in ids]
    blocks = TimeBlocks.from_block_scores([str(e) for e in ids], [evaluators[e].model for e in ids], scores,
                                          n_trials=[len(by_evaluator[e]) for e in ids], excluded_evaluators=left_out)
    return replace(blocks, excluded_trials=np.array([dropped[int(e)] for e in blocks.evaluator], dtype=np.int64))


def _count(evaluators: dict[int, _Evaluator], answers: list[_Answer], board: Leaderboard,
           exclude_flagged: bool, time_mode: bool) -> dict[str, ModelCounts]:
    counts: dict[str, ModelCounts] = defaultdict(ModelCounts)
    for ev in evaluators.values():
        c = counts[ev.model]
        if ev.status == EXCLUDED:
            c.excluded_evaluators += 1
        elif ev.status == FAILED_QUALIFICATION:
            c.failed_qualification += 1
        elif ev.status == FAILED_CATCH:
            c.failed_catch += 1
        elif ev.status == INCOMPLETE:
            c.incomplete_evaluators += 1
    eligible: dict[str, int] = defaultdict(int)
    for ev in evaluators.values():
        if ev.status == INCLUDED:
            eligible[ev.model] += 1
    for a in answers:
        ev = evaluators[a.evaluator]
        c = counts[ev.model]
        if ev.status != INCLUDED:
            c.trials_of_left_out_evaluators += 1
        elif exclude_flagged and a.flagged:
            c.flagged_trials += 1
        elif time_mode and not _usable_exposure(a.exposure_ms):
            c.missing_exposure_trials += 1
    for row in board.rows:
        c = counts[row.model]
        c.scored_evaluators = row.n_evaluators
        c.scored_trials = row.n_trials
    for model, c in counts.items():
        c.no_trials_left = eligible[model] - c.scored_evaluators
    return dict(counts)


# --------------------------------------------------------------------------------------------------
# Public API


def metric_summary(values: dict[str, Any]) -> dict[str, Any]:
    """The headline numbers of one stored MetricResult (FID, KID, F_8, F_1/8, precision, recall,
    density, coverage), without the PRD curves."""
    out = {k: values.get(k) for k in METRIC_KEYS}
    prd = values.get("prd") or {}
    out.update({k: prd.get(k) for k in PRD_KEYS})
    out["encoder"] = values.get("encoder") or DEFAULT_ENCODER
    out["fd_name"] = values.get("fd_name") or "FID"
    intervals = {k: [ci.get("low"), ci.get("high")] for k, ci in (values.get("ci") or {}).items() if isinstance(ci, dict)}
    if intervals:
        out["ci"] = intervals
    if values.get("errors"):
        out["errors"] = dict(values["errors"])
    return out


def _model_names(session: Session, study: Study) -> dict[int, str]:
    """Queried, not `study.models`: that collection may have been loaded before a model was added."""
    rows = session.execute(select(GeneratorModel.id, GeneratorModel.name).where(GeneratorModel.study_id == study.id)
                           .order_by(GeneratorModel.position, GeneratorModel.id))
    return {r.id: r.name for r in rows}


def _metrics_by_name(session: Session, study: Study, names: dict[int, str]) -> dict[str, dict[str, dict[str, Any]]]:
    """Per encoder, per model name: the newest run's summary with the weights that produced it."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for encoder, results in latest_metrics_by_encoder(session, study).items():
        for model_id, result in results.items():
            if model_id in names:
                out.setdefault(encoder, {})[names[model_id]] = {
                    **metric_summary(result.values or {}),
                    "weights_sha256": result.weights_sha256,
                    "weights_source": result.weights_source,
                    "computed_at": result.created_at.isoformat() if result.created_at else None,
                    "metric_result_id": result.id,
                }
    return out


def _resolve_method(method: str | None, mode: str) -> str:
    if method is None:
        return default_method(mode)
    for m in METHODS:
        if m.lower() == str(method).lower():
            return m
    raise ScoringError(f"method must be one of {', '.join(METHODS)}, not {method!r}")


def _bootstrap_seed(seed: int) -> int:
    """numpy seeds must be >= 0; a study seed given as a negative number maps to one that is."""
    return seed if seed >= 0 else seed & (2**64 - 1)


class NothingToScoreError(ScoringError):
    """No evaluator counts yet; ``by_status`` says where the evaluators are, so a page can say it in words."""

    def __init__(self, message: str, by_status: dict[str, int]) -> None:
        super().__init__(message)
        self.by_status = by_status


def _nothing_to_score(study: Study, evaluators: dict[int, _Evaluator], include_incomplete: bool) -> NothingToScoreError:
    by_status: dict[str, int] = defaultdict(int)
    for ev in evaluators.values():
        by_status[ev.status] += 1
    what = "evaluators with task answers" if include_incomplete else "completed evaluators"
    detail = ", ".join(f"{n} {s.replace('_', ' ')}" for s, n in sorted(by_status.items())) or "no evaluators yet"
    hint = "" if include_incomplete else "; wait for tasks to complete, or score partial ones with --include-incomplete"
    return NothingToScoreError(f"study {study.name!r} has no {what} to score ({detail}){hint}", dict(by_status))


TIME_SCORES = ("posterior", "mode")
TIME_SCORE_NAMES = {"posterior": "posterior 75% threshold per evaluator (QUEST+ model, all their trials)",
                    "mode": "modal exposure per block, mean over blocks (the paper's)"}


def _score_settings(study: Study, method: str | None, n_resamples: int | None, seed: int | None,
                    include_incomplete: bool, on_measured: bool | None, time_score: str | None = None,
                    min_catch_accuracy: float | None = None) -> ScoreSettings:
    """The study's statistics settings, with the caller's overrides applied."""
    settings = study_settings(study)
    stats = settings.statistics
    time_mode = settings.mode == "hype-time"
    measured = time_mode and bool(stats.score_on_measured_exposure if on_measured is None else on_measured)
    used = ScoreSettings(
        mode=settings.mode,
        method=_resolve_method(method, settings.mode),
        n_resamples=int(stats.n_resamples if n_resamples is None else n_resamples),
        confidence_level=stats.confidence_level,
        seed=int(study.seed if seed is None else seed),
        exclude_flagged_trials=stats.exclude_flagged_trials,
        include_incomplete=include_incomplete,
        exposure=("measured" if measured else "requested") if time_mode else None,
        time_score=(time_score or ("posterior" if settings.time.adaptive else "mode")) if time_mode else None,
        min_catch_accuracy=((settings.catch.min_accuracy if min_catch_accuracy is None else float(min_catch_accuracy))
                            if settings.catch.enabled else None) or None,
    )
    if used.min_catch_accuracy is not None and not 0.0 <= used.min_catch_accuracy <= 1.0:
        raise ScoringError(f"min_catch_accuracy is a share in [0, 1], not {used.min_catch_accuracy}")
    if used.time_score not in (None, *TIME_SCORES):
        raise ScoringError(f"time_score must be one of {', '.join(TIME_SCORES)}, not {used.time_score!r}")
    if used.n_resamples < 1:
        raise ScoringError("n_resamples must be >= 1")
    return used


def score_study(
    session: Session,
    study: Study,
    *,
    method: str | None = None,
    n_resamples: int | None = None,
    seed: int | None = None,
    include_incomplete: bool = False,
    on_measured: bool | None = None,
    time_score: str | None = None,
    min_catch_accuracy: float | None = None,
) -> StudyScore:
    """Score `study` from its stored task judgments (rules in the module docstring).

    `method`: a bootstrap interval of hype.scoring.METHODS (default hype.scoring.DEFAULT_METHODS, chosen
    by measured coverage; the paper's was percentile);
    `n_resamples`: default the study's statistics.n_resamples; `seed`: default the study seed;
    `on_measured`: None follows statistics.score_on_measured_exposure (HYPE-time only);
    `min_catch_accuracy`: None follows catch.min_accuracy (0 keeps every evaluator whatever their catch trials).
    Raises ScoringError when there is nothing to score."""
    used = _score_settings(study, method, n_resamples, seed, include_incomplete, on_measured, time_score,
                           min_catch_accuracy)
    time_mode, measured = used.mode == "hype-time", used.exposure == "measured"
    exclude_flagged = used.exclude_flagged_trials
    model_names = _model_names(session, study)
    if not model_names:
        raise ScoringError(f"study {study.name!r} has no models to score")

    evaluators = _evaluators(session, study, include_incomplete, used.min_catch_accuracy)
    answers = _answers(session, study, measured)
    left_out = {str(ev.id) for ev in evaluators.values() if ev.status != INCLUDED}
    if not answers or all(str(a.evaluator) in left_out for a in answers):
        raise _nothing_to_score(study, evaluators, include_incomplete)
    data: InfinityCounts | TimeBlocks = (
        _posterior_input(answers, evaluators, left_out, exclude_flagged, study_settings(study).time)
        if time_mode and used.time_score == "posterior"
        else _time_input(answers, evaluators, left_out, exclude_flagged, measured)
        if time_mode
        else _infinity_input(answers, evaluators, left_out, exclude_flagged)
    )
    board = leaderboard(data, n_resamples=used.n_resamples, confidence_level=used.confidence_level,
                        method=used.method, seed=_bootstrap_seed(used.seed))
    if not any(r.n_evaluators for r in board.rows):
        raise ScoringError(f"study {study.name!r}: every evaluator who would count has all trials left out "
                           "(flagged, or without the exposure being scored)")
    from hype.stopping_state import with_stopped_intervals

    board = with_stopped_intervals(session, study, board)
    counts = _count(evaluators, answers, board, exclude_flagged, time_mode)
    for name in model_names.values():
        counts.setdefault(name, ModelCounts())
    scored = {r.model for r in board.rows}
    by_encoder = _metrics_by_name(session, study, model_names)
    return StudyScore(
        study_id=study.id,
        study_name=study.name,
        leaderboard=board,
        settings=used,
        counts=counts,
        metrics=by_encoder.get(DEFAULT_ENCODER, {}),
        metrics_by_encoder=by_encoder,
        unscored_models=tuple(name for name in model_names.values() if name not in scored),
    )


def evaluator_scores_by_model(session: Session, study: Study, model_ids: set[int] | None = None) -> dict[int, np.ndarray]:
    """Per model id, the scores of the evaluators who count (as `score_study` decides, with the
    study's own settings), in the order they completed: what hype.stopping looks at. No bootstrap.

    Each completed session's score is cached in `evaluator_scores` (hype.models.EvaluatorScore) the
    first time it is needed, normally by the look its own completion makes; so a look reads one row
    per session of the study and the answers only of sessions not yet cached (on completion, its own:
    HYPE-time at 30 evaluators, 450 answers instead of 13,500). Exclusions are applied on reading."""
    used = _score_settings(study, None, None, None, False, None)
    basis = _score_basis(used)
    evaluators = _evaluators(session, study, False, used.min_catch_accuracy)
    ids = {m.id for m in study.models if model_ids is None or m.id in model_ids}
    sessions = session.execute(select(Assignment.id, Assignment.model_id, Assignment.completed_at)
                               .where(Assignment.study_id == study.id, Assignment.stage == "completed",
                                      Assignment.model_id.in_(ids))).all()
    counted = [r for r in sessions if evaluators[r.id].status == INCLUDED]
    cached = {r.assignment_id: r for r in session.scalars(
        select(EvaluatorScore).where(EvaluatorScore.study_id == study.id, EvaluatorScore.model_id.in_(ids)))}
    stale = [r for r in counted if r.id not in cached or cached[r.id].basis != basis]
    if stale:
        fresh = _session_scores(session, study, used, evaluators, [r.id for r in stale])
        for r in stale:
            row = cached.get(r.id)
            if row is None:
                row = cached[r.id] = EvaluatorScore(assignment_id=r.id, study_id=study.id, model_id=r.model_id)
                session.add(row)
            row.basis, row.score = basis, fresh.get(r.id)
        session.flush()
    out: dict[int, np.ndarray] = {m: np.empty(0) for m in ids}
    by_model: dict[int, list[tuple[float, int, float]]] = {m: [] for m in ids}
    for r in counted:
        score = cached[r.id].score
        if score is not None and math.isfinite(score):
            by_model[r.model_id].append((_when(r.completed_at), r.id, score))
    for model_id, rows in by_model.items():
        if rows:
            out[model_id] = np.asarray([score for _, _, score in sorted(rows)], dtype=float)
    return out


def _score_basis(used: ScoreSettings) -> str:
    """What a cached per-session score depends on besides the session's own answers."""
    return f"{used.mode}|{used.exposure}|{used.time_score}|{int(used.exclude_flagged_trials)}"


def _session_scores(session: Session, study: Study, used: ScoreSettings, evaluators: dict[int, _Evaluator],
                    assignment_ids: list[int]) -> dict[int, float]:
    """Each given session's own score from its own answers (a score depends on no other evaluator)."""
    time_mode, measured = used.mode == "hype-time", used.exposure == "measured"
    answers = _answers(session, study, measured, assignment_ids=assignment_ids)
    if not answers:
        return {}
    wanted = set(assignment_ids)
    left_out = {str(ev.id) for ev in evaluators.values() if ev.id not in wanted}
    data: InfinityCounts | TimeBlocks = (
        _posterior_input(answers, evaluators, left_out, used.exclude_flagged_trials, study_settings(study).time)
        if time_mode and used.time_score == "posterior"
        else _time_input(answers, evaluators, left_out, used.exclude_flagged_trials, measured)
        if time_mode
        else _infinity_input(answers, evaluators, left_out, used.exclude_flagged_trials)
    )
    kept = data.included()
    scores = evaluator_scores(kept)
    return {int(kept.evaluator[i]): float(scores[i]) for i in range(len(scores))}


def _when(moment: Any) -> float:
    return moment.timestamp() if moment is not None and moment.tzinfo else (
        moment.replace(tzinfo=dt.timezone.utc).timestamp() if moment is not None else math.inf)


def store_score(session: Session, study: Study, score: StudyScore) -> ScoreRecord:
    """Persist the score exactly as computed (caller commits), so a published number can be traced."""
    if score.study_id != study.id:
        raise ScoringError(f"this score belongs to study {score.study_id}, not {study.id}")
    record = ScoreRecord(study_id=study.id, payload=score.to_dict())
    session.add(record)
    session.flush()
    return record


def _json_safe(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj
