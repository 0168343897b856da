"""Recruitment accounting: how many evaluators each model has, counting only work that will be scored,
and how many it still needs. The one place that decides who holds a slot.

Each of a model's sessions is in exactly one of these groups (checked in this order):

- failed:      failed the qualification (paid the base, never scored);
- abandoned:   marked abandoned, or unfinished and idle for longer than the study's
               ``recruitment.idle_timeout_minutes`` on the server's clock;
- excluded:    completed or still working, with an exclusion not revoked;
- valid:       completed and not excluded: what the target counts;
- in_progress: still working (consent given, not finished, not idle).

A model is full when ``valid >= target``, or when the study's stopping rule stopped it at its target
certainty (hype.stopping; the flag is kept per model by hype.stopping_state and only read here); a
full model takes nobody new, and its slots go to the models still open. Excluding a completed worker
moves them from valid to excluded and so reopens their slot; revoking the exclusion closes it again.
Idleness is computed from ``Assignment.last_active_at`` wherever it is needed, so no background
process is required: a session left idle is abandoned from the moment its timeout passes, for
assignment and for every progress view, and is marked so in the database when next touched.

Other parts call this module, not their own counts: the worker entry (hype.sessions), the dashboard
and CLI progress (hype.monitoring), and crowd-platform top-ups.
"""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import asdict, dataclass
from typing import Any, Iterable, Sequence

from sqlalchemy import and_, case, exists, func, select, update
from sqlalchemy.orm import Session

from hype.models import ACTIVE_STAGES, Assignment, Exclusion, ModelStopping, Study, utcnow
from hype.protocol import StudySettings
from hype.studies import close_study, study_settings, update_settings

# A worker's activity time is written at most this often (and at least ten times per timeout), so
# the answer path adds an UPDATE about once a minute instead of on every answer.
TOUCH_EVERY = dt.timedelta(seconds=60)


@dataclass(frozen=True)
class ModelSlots:
    """One model's evaluators by group (see the module docstring) and its target."""

    model_id: int
    model: str
    target: int
    valid: int = 0
    in_progress: int = 0
    excluded: int = 0
    abandoned: int = 0
    failed: int = 0
    # Of ``abandoned``: sessions idle past the timeout but not yet marked abandoned in the database.
    idle_unmarked: int = 0
    # The stopping rule stopped the model before its target count: its interval is narrow enough.
    stopped: bool = False

    @property
    def full(self) -> bool:
        """Has every valid evaluator it needs: takes nobody new."""
        return self.stopped or self.valid >= self.target

    @property
    def missing(self) -> int:
        """Valid evaluators still needed."""
        return 0 if self.stopped else max(0, self.target - self.valid)

    @property
    def open_slots(self) -> int:
        """Workers still to recruit if everyone now working completes validly (what a platform
        should still have on offer)."""
        return 0 if self.stopped else max(0, self.target - self.valid - self.in_progress)

    @property
    def started(self) -> int:
        return self.valid + self.in_progress + self.excluded + self.abandoned + self.failed

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "full": self.full, "missing": self.missing, "open_slots": self.open_slots}


# -- time ------------------------------------------------------------------------------------------------


def as_utc(moment: dt.datetime) -> dt.datetime:
    """SQLite hands timestamps back without their zone; they are stored in UTC."""
    return moment.replace(tzinfo=dt.timezone.utc) if moment.tzinfo is None else moment


def idle_timeout(settings: StudySettings) -> dt.timedelta:
    return dt.timedelta(minutes=settings.recruitment.idle_timeout_minutes)


def is_idle(assignment: Assignment, settings: StudySettings, now: dt.datetime | None = None) -> bool:
    """An unfinished session whose worker has done nothing for longer than the study allows."""
    if assignment.stage not in ACTIVE_STAGES or assignment.last_active_at is None:
        return False
    return (now or utcnow()) - as_utc(assignment.last_active_at) > idle_timeout(settings)


def touch(assignment: Assignment, settings: StudySettings, now: dt.datetime | None = None) -> None:
    """Note the worker's activity, when touch_due says so."""
    now = now or utcnow()
    if touch_due(assignment.last_active_at, settings, now):
        assignment.last_active_at = now


def touch_due(last_active_at: dt.datetime | None, settings: StudySettings, now: dt.datetime) -> bool:
    """Whether the stored activity time is TOUCH_EVERY (or a tenth of the timeout, if shorter) old:
    only then is it written, so most answers write nothing extra."""
    return last_active_at is None or now - as_utc(last_active_at) >= min(TOUCH_EVERY, idle_timeout(settings) / 10)


# -- slots -----------------------------------------------------------------------------------------------


def model_slots(session: Session, study: Study, *, now: dt.datetime | None = None) -> list[ModelSlots]:
    """Every model of the study, in its order, with its evaluators by group. One query, no writes."""
    settings = study_settings(study)
    cutoff = (now or utcnow()) - idle_timeout(settings)
    excluded = exists().where(Exclusion.assignment_id == Assignment.id, Exclusion.revoked_at.is_(None))
    idle = and_(Assignment.stage.in_(ACTIVE_STAGES), Assignment.last_active_at < cutoff)
    per_session = (
        select(
            Assignment.model_id.label("model_id"),
            Assignment.stage.label("stage"),
            case((idle, 1), else_=0).label("idle"),
            case((excluded, 1), else_=0).label("excluded"),
        )
        .where(Assignment.study_id == study.id)
        .subquery()
    )
    rows = session.execute(
        select(per_session.c.model_id, per_session.c.stage, per_session.c.idle, per_session.c.excluded, func.count())
        .group_by(per_session.c.model_id, per_session.c.stage, per_session.c.idle, per_session.c.excluded)
    ).all()
    counts: dict[int, dict[str, int]] = {m.id: {} for m in study.models}
    for model_id, stage, idle_flag, excluded_flag, n in rows:
        group = classify(stage, bool(idle_flag), bool(excluded_flag))
        into = counts.setdefault(model_id, {})
        into[group] = into.get(group, 0) + int(n)
        if group == "abandoned" and idle_flag:
            into["idle_unmarked"] = into.get("idle_unmarked", 0) + int(n)
    target = settings.evaluators_per_model
    stopped = _stopped_models(session, study, settings)
    return [ModelSlots(m.id, m.name, target, **counts.get(m.id, {}), stopped=m.id in stopped) for m in study.models]


def _stopped_models(session: Session, study: Study, settings: StudySettings) -> set[int]:
    """Models the stopping rule has stopped, as last stored (no query when the study has no rule)."""
    if not (settings.stopping.target_halfwidth or settings.stopping.until_models_separate):
        return set()
    return set(session.scalars(select(ModelStopping.model_id)
                               .where(ModelStopping.study_id == study.id, ModelStopping.stopped.is_(True))))


def classify(stage: str, idle: bool, excluded: bool) -> str:
    """The group (a ModelSlots field) one session falls in; see the module docstring."""
    if stage == "failed":
        return "failed"
    if stage == "abandoned" or (idle and stage in ACTIVE_STAGES):
        return "abandoned"
    if excluded:
        return "excluded"
    if stage == "completed":
        return "valid"
    return "in_progress"


def is_complete(slots: Sequence[ModelSlots]) -> bool:
    """Every model has its valid evaluators (a study without models is not complete)."""
    return bool(slots) and all(s.full for s in slots)


def open_models(slots: Iterable[ModelSlots]) -> list[ModelSlots]:
    """The models that still take new workers."""
    return [s for s in slots if not s.full]


def choose_model(slots: Iterable[ModelSlots]) -> ModelSlots | None:
    """The open model with the fewest evaluators that count or may count (valid + in progress), so
    models fill evenly; ties broken at random. None when every model is full."""
    candidates = open_models(slots)
    if not candidates:
        return None
    fewest = min(s.valid + s.in_progress for s in candidates)
    tied = [s for s in candidates if s.valid + s.in_progress == fewest]
    return tied[secrets.randbelow(len(tied))]


# -- writes ----------------------------------------------------------------------------------------------


def mark_idle_abandoned(session: Session, study: Study, *, now: dt.datetime | None = None) -> int:
    """Store the stage of every session the timeout has abandoned (they already count as abandoned;
    this makes exports and the worker list say so). A session whose worker acted meanwhile is left
    alone: the condition is re-checked by the UPDATE itself."""
    cutoff = (now or utcnow()) - idle_timeout(study_settings(study))
    result = session.execute(
        update(Assignment)
        .where(Assignment.study_id == study.id, Assignment.stage.in_(ACTIVE_STAGES), Assignment.last_active_at < cutoff)
        .values(stage="abandoned")
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount or 0)


def close_if_complete(session: Session, study: Study, *, now: dt.datetime | None = None) -> bool:
    """Close a published study whose settings ask for it once every model is full. Called wherever
    a model can become full: a completed session, a revoked exclusion, a lowered target."""
    if study.status != "published" or not study_settings(study).recruitment.close_when_complete:
        return False
    if not is_complete(model_slots(session, study, now=now)):
        return False
    close_study(study)
    return True


def set_recruitment(
    session: Session,
    study: Study,
    *,
    evaluators_per_model: int | None = None,
    idle_timeout_minutes: float | None = None,
    close_when_complete: bool | None = None,
    target_halfwidth: float | None = None,
) -> list[str]:
    """Change how a study recruits, in any status (hype.studies.update_settings: the protocol stays as
    published), then close it if that made it complete and it asks for that. A target raised above
    what a model has reopens the model, and so does a target certainty (`target_halfwidth`, in points or
    ms) tighter than a stopped model's interval; a closed study stays closed until reopened. Returns the
    settings paths that changed; StudyError for a value the protocol refuses."""
    changes: dict[str, Any] = {}
    if evaluators_per_model is not None:
        changes["evaluators_per_model"] = evaluators_per_model
    recruiting = {k: v for k, v in (("idle_timeout_minutes", idle_timeout_minutes),
                                   ("close_when_complete", close_when_complete)) if v is not None}
    if recruiting:
        changes["recruitment"] = recruiting
    if target_halfwidth is not None:
        changes["stopping"] = {"target_halfwidth": target_halfwidth}
    changed = update_settings(session, study, changes)
    session.flush()
    settings_changed(session, study, changed)
    close_if_complete(session, study)
    return changed


def settings_changed(session: Session, study: Study, changed: Sequence[str]) -> None:
    """Re-run the stopping rule when a setting it reads changed (the target, the cap, the level)."""
    if any(p.startswith("stopping.") or p in ("evaluators_per_model", "statistics.confidence_level") for p in changed):
        from hype import stopping_state

        stopping_state.refresh(session, study)
