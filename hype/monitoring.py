"""What a researcher watches while a study runs: progress per model, a row per worker, exclusions.
Thin DB queries over the pure rules in hype.quality (bonus sheets: hype.platforms.sheets)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Integer, cast, func, select
from sqlalchemy.orm import Session

from hype.models import Assignment, Exclusion, Judgment, StaircaseRecord, Study, Trial, utcnow
from hype.quality import ExclusionRules, TrialRecord, WorkerStats, fails_catch, violations, worker_stats
from hype import stopping_state
from hype.recruitment import ModelSlots, close_if_complete, is_complete, is_idle, model_slots
from hype.studies import study_settings


class MonitoringError(ValueError):
    pass


@dataclass(frozen=True)
class ModelProgress:
    """A model's recruitment (hype.recruitment.ModelSlots) with the task judgments it has so far."""

    slots: ModelSlots
    judgments: int = 0
    flagged: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {**self.slots.to_dict(), "judgments": self.judgments, "flagged": self.flagged}


def model_progress(session: Session, study: Study) -> list[ModelProgress]:
    judged: dict[int, tuple[int, int]] = {}
    for model_id, n, flagged in session.execute(
        select(Assignment.model_id, func.count(Judgment.id), func.sum(cast(Judgment.flagged, Integer)))
        .join(Judgment, Judgment.assignment_id == Assignment.id)
        .join(Trial, Trial.id == Judgment.trial_id)
        .where(Assignment.study_id == study.id, Trial.phase == "task", Trial.is_catch.is_(False))
        .group_by(Assignment.model_id)
    ):
        judged[model_id] = (int(n), int(flagged or 0))
    return [ModelProgress(slots, *judged.get(slots.model_id, (0, 0))) for slots in model_slots(session, study)]


def is_study_complete(progress: list[ModelProgress]) -> bool:
    return is_complete([p.slots for p in progress])


@dataclass
class WorkerRow:
    assignment_id: int
    platform: str
    worker_id: str
    model: str
    stage: str
    qualification: str  # "7/8 real, 6/8 fake" or ""
    stats: WorkerStats
    exclusions: list[Exclusion] = field(default_factory=list)
    staircases: list[list[float]] = field(default_factory=list)
    started_at: Any = None
    fails_catch: bool = False  # right on fewer catch trials than the study's catch.min_accuracy: not scored

    @property
    def active_exclusions(self) -> list[Exclusion]:
        return [e for e in self.exclusions if e.revoked_at is None]


def worker_rows(session: Session, study: Study) -> list[WorkerRow]:
    """One row per worker who entered, newest first, with the figures the exclusion rules use."""
    assignments = list(
        session.scalars(select(Assignment).where(Assignment.study_id == study.id).order_by(Assignment.created_at.desc(), Assignment.id.desc()))
    )
    if not assignments:
        return []
    ids = [a.id for a in assignments]
    trials: dict[int, list[TrialRecord]] = defaultdict(list)
    for assignment_id, is_fake, correct, reaction, flagged, is_catch in session.execute(
        select(Judgment.assignment_id, Trial.is_fake, Judgment.correct, Judgment.reaction_ms, Judgment.flagged,
               Trial.is_catch)
        .join(Trial, Trial.id == Judgment.trial_id)
        .where(Judgment.assignment_id.in_(ids), Trial.phase == "task")
    ):
        trials[assignment_id].append(TrialRecord(is_fake, correct, reaction, flagged, bool(is_catch)))
    exclusions: dict[int, list[Exclusion]] = defaultdict(list)
    for exclusion in session.scalars(select(Exclusion).where(Exclusion.assignment_id.in_(ids)).order_by(Exclusion.created_at)):
        exclusions[exclusion.assignment_id].append(exclusion)
    stairs: dict[int, list[list[float]]] = defaultdict(list)
    for record in session.scalars(select(StaircaseRecord).where(StaircaseRecord.assignment_id.in_(ids)).order_by(StaircaseRecord.block)):
        stairs[record.assignment_id].append([float(x) for x in record.state.get("intensities", [])])
    settings = study_settings(study)
    now = utcnow()
    names = {m.id: m.name for m in study.models}
    rows = []
    for a in assignments:
        stats = worker_stats(trials[a.id], failed_qualification=a.qualification_passed is False)
        qual = ""
        if a.qualification_real_correct is not None:
            q = settings.qualification
            qual = f"{a.qualification_real_correct}/{q.n_real} real, {a.qualification_fake_correct}/{q.n_fake} fake"
        rows.append(
            WorkerRow(
                assignment_id=a.id,
                platform=a.participant.platform,
                worker_id=a.participant.worker_id,
                model=names.get(a.model_id, "?"),
                stage="abandoned" if is_idle(a, settings, now) else a.stage,  # as counted, marked or not
                qualification=qual,
                stats=stats,
                exclusions=exclusions[a.id],
                staircases=stairs[a.id],
                started_at=a.created_at,
                fails_catch=fails_catch(stats.catch_accuracy, settings.catch.min_accuracy),
            )
        )
    return rows


def _assignment_of(session: Session, study: Study, assignment_id: int) -> Assignment:
    assignment = session.get(Assignment, assignment_id)
    if assignment is None or assignment.study_id != study.id:
        raise MonitoringError("no such worker in this study")
    return assignment


def exclude(session: Session, study: Study, assignment_id: int, reason: str, rule: str | None = None, *,
            look: bool = True) -> Exclusion:
    """Exclude by hand (rule None) or by a rule; a reason is required so the report can show it.
    `look=False` leaves the stopping rule's look to the caller (one look after many exclusions)."""
    reason = (reason or "").strip()
    if not reason:
        raise MonitoringError("say why this worker is excluded (the reason appears in the report)")
    assignment = _assignment_of(session, study, assignment_id)
    exclusion = Exclusion(assignment_id=assignment.id, reason=reason[:500], rule=rule)
    session.add(exclusion)
    session.flush()
    if look:
        stopping_state.look(session, study, [assignment.model_id])  # its model may need evaluators again
    return exclusion


def revoke(session: Session, study: Study, exclusion_id: int) -> Exclusion:
    exclusion = session.get(Exclusion, exclusion_id)
    if exclusion is None or exclusion.assignment.study_id != study.id:
        raise MonitoringError("no such exclusion in this study")
    if exclusion.revoked_at is None:
        exclusion.revoked_at = utcnow()
        session.flush()
        stopping_state.look(session, study, [exclusion.assignment.model_id])
        close_if_complete(session, study)  # the worker counts again: their model may be full now
    return exclusion


def apply_rules(session: Session, study: Study, rules: ExclusionRules) -> list[Exclusion]:
    """Exclude every finished worker who breaks a rule and is not already excluded by that rule.
    Workers still in the task are left alone: their figures are not final."""
    created = []
    for row in worker_rows(session, study):
        if row.stage not in ("completed", "failed"):
            continue
        active_rules = {e.rule for e in row.active_exclusions}
        for rule, reason in violations(row.stats, rules):
            if rule not in active_rules:
                created.append(exclude(session, study, row.assignment_id, reason, rule=rule, look=False))
    if created:
        stopping_state.look(session, study)
    return created


def finished_session_seconds(session: Session, study: Study) -> list[float]:
    """How long each worker who completed the task took, from entry to the last answer, less the
    breaks they took between HYPE-time blocks (hype.effort): a break is the worker's own time, not the
    task's, so it must not lengthen the time a study says it takes (nor lower its hourly pay)."""
    completed = (Assignment.study_id == study.id, Assignment.stage == "completed", Assignment.completed_at.is_not(None))
    break_ms = Judgment.client_timestamps["break_ms"].as_float()
    breaks = dict(session.execute(
        select(Judgment.assignment_id, func.sum(break_ms))
        .join(Assignment, Assignment.id == Judgment.assignment_id)
        .where(*completed, Judgment.client_timestamps.is_not(None))
        .group_by(Judgment.assignment_id)
    ).all())
    out = []
    for assignment_id, start, done in session.execute(
        select(Assignment.id, Assignment.created_at, Assignment.completed_at).where(*completed)
    ):
        total = (_aware(done) - _aware(start)).total_seconds()
        on_break = min(max(float(breaks.get(assignment_id) or 0.0) / 1000.0, 0.0), total)
        out.append(total - on_break)
    return out


def _aware(value):
    import datetime as dt

    return value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)
