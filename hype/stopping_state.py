"""The stored per-model state of a study's stopping rule (hype.stopping), and its forecast.

Assigning a worker must stay cheap, so it never scores anything: hype.recruitment reads the `stopped`
flag of each model from `model_stopping` (one indexed query, only for studies with a stopping rule).
The flag is refreshed here, from the per-evaluator scores of the models concerned, at the moments it
can change: a session of the model completes (hype.sessions), an exclusion is made or revoked
(hype.monitoring), the study's settings change (the settings form, `hype study recruitment`). A
refresh reads one model's task answers (all models' for "until models separate") and runs the
t-interval rule; no bootstrap.

The forecast of evaluators and cost still needed is a simulation (the `hype plan` machinery): it is
computed when the dashboard or `hype plan` asks and the model has new evaluators (or the study new
settings) since the last one, and cached in the same row, so a dashboard load after the first costs a
query. A QUEST+ study's simulation takes seconds, so the dashboard does not run it: it starts a
background job (hype.jobs, kind "forecast"), once per state, and shows "being computed" until it ends.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from hype import planning, stopping
from hype import simulate as sm
from hype.models import ModelStopping, Study, utcnow
from hype.protocol import StudySettings
from hype.studies import study_settings

__all__ = ["rule_for", "refresh", "look", "states", "forecast", "ensure_forecasts", "Forecast", "FORECAST_SIMULATIONS",
           "FORECAST_JOB", "forecast_in_request", "compute_forecast_job", "certainty"]

FORECAST_SIMULATIONS = 400  # continuations of the study simulated per forecast
FORECAST_POOL = 300  # simulated evaluators they draw from


def rule_for(settings: StudySettings) -> stopping.Rule:
    """The study's stopping settings as hype.stopping's rule, in score units."""
    s = settings.stopping
    return stopping.Rule(
        target_halfwidth=settings.target_halfwidth_score(),
        until_separate=s.until_models_separate,
        min_evaluators=s.min_evaluators,
        max_evaluators=settings.evaluators_per_model,
        confidence_level=settings.statistics.confidence_level,
        bounds=(0.0, 1.0) if settings.mode == "hype-infinity" else None,
        # QUEST+'s posterior thresholds are skewed to the right: hype.stopping.log_interval
        scale="log" if settings.mode == "hype-time" and settings.time.adaptive else "linear",
    )


def states(session: Session, study: Study) -> dict[int, ModelStopping]:
    """Model id -> its stored state (models never looked at are absent)."""
    rows = session.scalars(select(ModelStopping).where(ModelStopping.study_id == study.id))
    return {r.model_id: r for r in rows}


def refresh(session: Session, study: Study, model_ids: Sequence[int] | None = None) -> dict[int, ModelStopping]:
    """Look at the given models (default all; all anyway when models must separate) with the study's
    rule and store what it says. A study without a rule is looked at too (the dashboard shows the
    half-width), but nothing is ever stopped."""
    from hype.study_scoring import evaluator_scores_by_model

    settings = study_settings(study)
    rule = rule_for(settings)
    wanted = None if (model_ids is None or rule.until_separate) else set(model_ids)
    _serialise_looks(session, study)
    scores = evaluator_scores_by_model(session, study, wanted)
    if rule.until_separate and wanted is None:
        decisions = stopping.decide_models({str(m): s for m, s in scores.items()}, rule)
        by_id = {int(m): d for m, d in decisions.items()}
    else:
        by_id = {m: stopping.decide(s, rule) for m, s in scores.items()}
    stored = states(session, study)
    now = utcnow()
    for model_id, decision in by_id.items():
        row = stored.get(model_id) or _new_row(session, study, model_id)
        stored[model_id] = row
        iv = decision.interval
        row.n_evaluators = int(np.isfinite(scores[model_id]).sum())
        row.estimate = iv.estimate if iv else None
        row.halfwidth = iv.halfwidth if iv else None
        row.confidence_level = iv.level if iv else None
        stops_early = decision.stop and decision.reason != stopping.CAP and rule.active
        if stops_early and not row.stopped:
            row.stopped_at, row.stopped_n, row.reason = now, row.n_evaluators, decision.reason
        elif not stops_early:
            row.stopped_at, row.stopped_n, row.reason = None, None, None
        row.stopped = stops_early
        row.refreshed_at = now
        row.forecast_n = None  # the data or the settings changed: the next dashboard view forecasts again
    session.flush()
    return stored


def _serialise_looks(session: Session, study: Study) -> None:
    """Take the study's row lock until this transaction ends, before reading any score.

    Two sessions completing at once would otherwise each read the evaluators committed before their
    own look, miss each other's, and leave the model open until some later completion (forever, if
    neither model gets one). With the lock, the second look waits for the first transaction to commit
    and, under PostgreSQL's READ COMMITTED (each statement a fresh snapshot), then reads its
    evaluator too: the later of two concurrent looks always sees both, so the stored decision lags
    no completion. SQLite has one writer at a time already (its FOR UPDATE renders as nothing). The
    cost is that completions of one study wait for each other's look (a few ms, hype.stopping_state
    reads one row per session)."""
    session.execute(select(Study.id).where(Study.id == study.id).with_for_update())


def look(session: Session, study: Study, model_ids: Sequence[int] | None = None) -> None:
    """`refresh` where the study has a stopping rule (else nothing can stop, and nothing is read)."""
    if rule_for(study_settings(study)).active:
        session.flush()
        refresh(session, study, model_ids)


def _new_row(session: Session, study: Study, model_id: int) -> ModelStopping:
    """The model's first row; when two sessions of a new model complete at once, the second finds the
    first's row instead of failing on the unique model id."""
    try:
        with session.begin_nested():
            row = ModelStopping(study_id=study.id, model_id=model_id)
            session.add(row)
            session.flush()
        return row
    except IntegrityError:
        return session.scalars(select(ModelStopping).where(ModelStopping.model_id == model_id)).one()


def with_stopped_intervals(session: Session, study: Study, board: Any) -> Any:
    """`board` (a hype.scoring.Leaderboard) with each model the rule stopped early showing the rule's
    interval, named (hype.stopping.stopped_interval): the studentized bootstrap's coverage after
    optional stopping fell below 93% in one measured cell. Called by score_study, so the report, the
    live score, `hype score` and exports all show the same interval."""
    from dataclasses import replace

    stored = states(session, study)
    stopped = {m.name: stored[m.id] for m in study.models if m.id in stored and stored[m.id].stopped
               and stored[m.id].reason in (stopping.TARGET, stopping.SEPARATED)}
    if not stopped:
        return board
    rule = rule_for(study_settings(study))
    rows = []
    for r in board.rows:
        row = stopped.get(r.model)
        scores = board.evaluator_scores.get(r.model)
        if row is not None and scores is not None:
            iv, name = stopping.stopped_interval(scores, row.reason, rule, board.mode)
            if iv is not None:
                r = replace(r, ci_low=iv.low, ci_high=iv.high, interval_method=name)
        rows.append(r)
    return replace(board, rows=tuple(rows))


# -- forecast --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Forecast:
    """Evaluators (and pay) a model still needs to reach the target, by simulation."""

    more_median: int
    more_low: int  # 10% of simulated continuations need no more than this
    more_high: int  # ... 90%
    cost_usd: float  # median evaluators x expected pay per evaluator
    reach_target_share: float  # continuations that reach the target before the cap
    population: str  # where the simulated evaluators come from
    n_simulations: int

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def forecast(settings: StudySettings, scores: np.ndarray, *, seed: int = 0,
             n_simulations: int = FORECAST_SIMULATIONS) -> Forecast | None:
    """Simulate the rest of the model's collection: the evaluators it has (`scores`, in order) followed
    by new ones drawn from a population fitted to them (hype.planning; hype's default below 5), each
    continuation stopped by the study's rule. None without a precision target (how long models take to
    separate depends on all of them) or for a model already at its cap."""
    rule = rule_for(settings)
    have = np.asarray(scores, dtype=float)
    have = have[np.isfinite(have)]
    if not rule.target_halfwidth or have.size >= rule.max_evaluators:
        return None
    pop = planning.fit_population(settings.mode, have.tolist())
    source = f"fitted to this model's {have.size} evaluators" if pop is not None else "hype's default population"
    pop = pop or sm.Population()
    rng = np.random.default_rng(seed)
    pool = _simulated_scores(settings, pop, FORECAST_POOL, rng)
    need = rule.max_evaluators - have.size
    draws = pool[rng.integers(0, pool.size, size=(n_simulations, need))]
    seqs = np.concatenate([np.broadcast_to(have, (n_simulations, have.size)), draws], axis=1)
    stops = np.maximum(stopping.stopping_point(seqs, rule), have.size) - have.size
    _, per_evaluator = planning.cost_per_evaluator(settings, pop)
    median = int(math.ceil(float(np.median(stops))))
    reached = float(np.mean((stops + have.size < rule.max_evaluators) | _reached_at_cap(seqs, rule)))
    return Forecast(median, int(np.quantile(stops, 0.1)), int(np.ceil(np.quantile(stops, 0.9))),
                    round(median * per_evaluator, 2), reached, source, n_simulations)


def _reached_at_cap(seqs: np.ndarray, rule: stopping.Rule) -> np.ndarray:
    iv = [rule.interval(s, rule.level) for s in seqs[:, :rule.max_evaluators]]
    return np.array([i is not None and i.halfwidth <= rule.target_halfwidth for i in iv])


def _simulated_scores(settings: StudySettings, pop: sm.Population, n: int, rng: np.random.Generator) -> np.ndarray:
    from hype import scoring

    if settings.mode == "hype-infinity":
        data, _ = sm._simulate_infinity_model("forecast", pop, n, settings.infinity, rng, "f")
    elif settings.time.adaptive:  # the procedure and score the study runs: QUEST+, posterior threshold
        return sm.quest_scores(pop, n, settings.time, rng)
    else:
        data, _, _ = sm._simulate_time_model("forecast", pop, n, settings.time, rng, "f")
    return np.asarray(scoring.evaluator_scores(data), dtype=float)


def forecast_in_request(settings: StudySettings) -> bool:
    """Whether a page may simulate the forecast while it answers. A forecast simulates FORECAST_POOL
    evaluators: HYPE-∞ in 0.03-0.04 s, the staircase in 0.25-0.5 s; QUEST+ chooses every exposure of
    every simulated trial from a posterior, 46-51 s (about 110x the staircase) on a loaded 2-core machine
    (experiments/forecast_cost.py), so its forecast is a background job (FORECAST_JOB) and the card
    says it is being computed meanwhile."""
    return not (settings.mode == "hype-time" and settings.time.adaptive)


FORECAST_JOB = "forecast"  # the job kind (hype.jobs.kinds) that computes a study's stale forecasts


def _stale_forecasts(session: Session, study: Study, settings: StudySettings) -> tuple[dict[int, ModelStopping], set[int]]:
    """Every model's state, and the models whose cached forecast is older than their evaluators or the
    settings. Without a precision target there is nothing to forecast: those are marked fresh here."""
    stored = states(session, study)
    if len(stored) < len(study.models):
        stored = refresh(session, study)
    stale = {m for m, row in stored.items() if row.forecast_n != row.n_evaluators}
    if stale and not rule_for(settings).target_halfwidth:  # nothing to forecast: no simulation, no reads
        for model_id in stale:
            stored[model_id].forecast, stored[model_id].forecast_n = None, stored[model_id].n_evaluators
        session.flush()
        stale = set()
    return stored, stale


def _forecasts(settings: StudySettings, stored: dict[int, ModelStopping], scores: dict[int, np.ndarray],
               model_ids: set[int], seed: int) -> dict[int, dict[str, Any] | None]:
    """The forecast of each model in `model_ids` (None for a stopped model): the simulation, no database."""
    out = {}
    for model_id in sorted(model_ids):
        result = None if stored[model_id].stopped else forecast(settings, scores.get(model_id, np.empty(0)), seed=seed)
        out[model_id] = result.to_dict() if result else None
    return out


def ensure_forecasts(session: Session, study: Study) -> dict[int, ModelStopping]:
    """Every model's state, with a forecast no older than its evaluators, computed here where stale
    (`hype plan`, the forecast job, and pages for studies whose forecast is cheap)."""
    from hype.study_scoring import evaluator_scores_by_model

    settings = study_settings(study)
    stored, stale = _stale_forecasts(session, study, settings)
    if stale:
        scores = evaluator_scores_by_model(session, study, stale)
        for model_id, result in _forecasts(settings, stored, scores, stale, study.seed).items():
            stored[model_id].forecast, stored[model_id].forecast_n = result, stored[model_id].n_evaluators
        session.flush()
    return stored


def forecast_fingerprint(study: Study, settings: StudySettings, stored: dict[int, ModelStopping], stale: set[int]) -> str:
    """Names the state a forecast job is asked to compute: the settings and, per stale model, its
    evaluators and last look (every completion, exclusion or setting change is a new look). A page
    asks for a job only when no job has been asked for this state, so two views never start two."""
    import hashlib
    import json

    looks = [(m, stored[m].n_evaluators, stored[m].refreshed_at.isoformat() if stored[m].refreshed_at else None)
             for m in sorted(stale)]
    text = json.dumps([study.id, settings.to_dict(), looks], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def compute_forecast_job(read: Any, write: Any, study_id: int, finish: Any = None) -> dict[str, Any]:
    """The forecast job's work (hype.jobs.kinds): read the stale models' scores in a short read, simulate
    with no transaction open, then store each forecast in one short write, only where the model was
    not looked at again meanwhile (else its row stays stale and the next view asks for a new job).
    `finish(session, result)` ends the job in that same write: forecasts and the job's end together."""
    from hype.study_scoring import evaluator_scores_by_model

    with read() as session:
        study = session.get(Study, study_id)
        if study is None:
            raise ValueError("the study was deleted")
        settings = study_settings(study)
        stored, stale = _stale_forecasts(session, study, settings)
        seen = {m: (stored[m].n_evaluators, stored[m].refreshed_at) for m in stale}
        scores = evaluator_scores_by_model(session, study, stale) if stale else {}
        results = _forecasts(settings, stored, scores, stale, study.seed)
        session.rollback()  # the read's snapshot ends before the simulation
    stored_n = 0
    with write() as session:
        study = session.get(Study, study_id)
        _serialise_looks(session, study)  # no look changes a row between the check and the store
        rows = states(session, study)
        for model_id, result in results.items():
            row = rows.get(model_id)
            if row is not None and (row.n_evaluators, _same_time(row.refreshed_at)) == (seen[model_id][0], _same_time(seen[model_id][1])):
                row.forecast, row.forecast_n = result, row.n_evaluators
                stored_n += 1
        session.flush()
        result = {"models": len(results), "stored": stored_n}
        if finish is not None:
            finish(session, result)
    return result


def _same_time(t: Any) -> Any:
    """As naive UTC: SQLite hands back naive UTC datetimes, PostgreSQL aware ones."""
    import datetime as dt

    if t is None or t.tzinfo is None:
        return t
    return t.astimezone(dt.timezone.utc).replace(tzinfo=None)


def _job_for_forecast(session: Session, study: Study, fingerprint: str) -> tuple[bool, str | None]:
    """(whether to ask for a new forecast job, an error to show): not while one runs (it will end and a
    later view asks again for what changed meanwhile), not again for a state whose job already ran
    (done, or failed with a message, which the card then shows); again after an interrupted one."""
    from hype.jobs.records import INTERRUPTED, active_job
    from hype.models import Job

    if active_job(session, study.id, FORECAST_JOB) is not None:
        return False, None
    last = session.scalars(select(Job).where(Job.study_id == study.id, Job.kind == FORECAST_JOB)
                           .order_by(Job.id.desc()).limit(1)).first()
    if last is not None and (last.params or {}).get("fingerprint") == fingerprint:
        if last.state == "failed" and last.error != INTERRUPTED:
            return False, last.error
        if last.state == "done":
            return False, None
    return True, None


# -- what the dashboard and `hype plan` show ------------------------------------------------------------


@dataclass(frozen=True)
class ModelCertainty:
    model: str
    n_evaluators: int
    halfwidth: float | None  # in display units: percentage points or ms
    level: float | None
    stopped: bool
    reason: str | None
    stopped_n: int | None
    stopped_at: Any
    forecast: dict[str, Any] | None
    forecast_pending: bool = False  # a background job is computing it (the card says so)
    forecast_error: str | None = None  # the job that computed it failed, with this message

    @property
    def status(self) -> str:
        """In words: whether collection for the model stopped, when and by which rule."""
        if self.stopped:
            when = self.stopped_at.strftime("%Y-%m-%d %H:%M UTC") if self.stopped_at else "?"
            return f"stopped at {self.stopped_n} evaluators ({when}): {stopping.REASONS.get(self.reason or '', self.reason)}"
        return "collecting"


def certainty(session: Session, study: Study, request_job: Any = None) -> list[ModelCertainty]:
    """Per model (in the study's order): evaluators, current half-width of the rule's interval, whether
    and why it stopped, and the cached forecast. Stale forecasts are computed here, unless the study's
    are too slow for a request (forecast_in_request) and `request_job(fingerprint)` is given (a page):
    then it is called to start the forecast job, once per state, and those models show as pending.
    Without a stopping rule the states are not kept up to date by completions, so they are refreshed
    here first."""
    settings = study_settings(study)
    if not rule_for(settings).active:
        refresh(session, study)
    pending: set[int] = set()
    error = None
    if request_job is None or forecast_in_request(settings):
        stored = ensure_forecasts(session, study)
    else:
        stored, pending = _stale_forecasts(session, study, settings)
        if pending:
            fingerprint = forecast_fingerprint(study, settings, stored, pending)
            ask, error = _job_for_forecast(session, study, fingerprint)
            if ask:
                request_job(fingerprint)
    scale = 100.0 if settings.mode == "hype-infinity" else 1.0
    out = []
    for m in study.models:
        row = stored.get(m.id)
        if row is None:
            continue
        waiting = m.id in pending and not row.stopped
        out.append(ModelCertainty(m.name, row.n_evaluators, None if row.halfwidth is None else scale * row.halfwidth,
                                  row.confidence_level, row.stopped, row.reason, row.stopped_n, row.stopped_at,
                                  None if waiting else row.forecast, waiting and error is None,
                                  error if waiting else None))
    return out
