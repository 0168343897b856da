"""Job rows: starting, claiming, progress, the end, and how a job looks to a person.

Every function here is one short transaction of its own (or writes into the caller's short
transaction, `mark_done`), so a running job never keeps the database busy between its updates.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from hype.db import transaction
from hype.models import JOB_KINDS, Job, Study, utcnow

#: How often a running job renews its heartbeat, and after how long without one it counts as
#: interrupted (its worker was killed): long enough that a busy machine never trips it.
HEARTBEAT_S = 10.0
STALE_AFTER_S = 60.0

LABELS = {"metrics": "Compute metrics", "report": "Render report", "import": "Import images",
          "forecast": "Forecast evaluators still needed"}
INTERRUPTED = "interrupted: the worker stopped before the job finished; nothing of it was stored. Start it again."


class JobError(Exception):
    """A job that cannot be started or run, with a message for a person."""


def _aware(t: dt.datetime | None) -> dt.datetime | None:
    # SQLite hands back naive datetimes for timezone-aware columns; they were stored in UTC.
    return t.replace(tzinfo=dt.timezone.utc) if t is not None and t.tzinfo is None else t


def is_interrupted(job: Job, now: dt.datetime | None = None, stale_after_s: float = STALE_AFTER_S) -> bool:
    if job.state != "running":
        return False
    beat = _aware(job.heartbeat_at or job.started_at)
    return beat is None or ((now or utcnow()) - beat).total_seconds() > stale_after_s


def active_job(session: Session, study_id: int, kind: str, stale_after_s: float = STALE_AFTER_S) -> Job | None:
    """The study's job of this kind that is waiting or running (a killed one does not count)."""
    rows = session.scalars(
        select(Job).where(Job.study_id == study_id, Job.kind == kind, Job.state.in_(("queued", "running"))).order_by(Job.id)
    )
    now = utcnow()
    return next((j for j in rows if not is_interrupted(j, now, stale_after_s)), None)


def start_job(factory: sessionmaker[Session], study_id: int, kind: str, params: dict[str, Any] | None = None,
              *, stale_after_s: float = STALE_AFTER_S) -> Job:
    """A new queued job, unless one of its kind is already waiting or running for the study. Jobs
    of this kind that were interrupted are closed as failed, so the history says what happened."""
    if kind not in JOB_KINDS:
        raise JobError(f"unknown job kind {kind!r}; choose from {', '.join(JOB_KINDS)}")
    with transaction(factory) as session:
        # the study's row lock: two requests starting a job at once see each other's (PostgreSQL; SQLite
        # has one writer at a time and renders FOR UPDATE as nothing)
        if session.scalar(select(Study.id).where(Study.id == study_id).with_for_update()) is None:
            raise JobError("no such study")
        running = active_job(session, study_id, kind, stale_after_s)
        if running is not None:
            raise JobError(f"“{LABELS[kind]}” is already {'running' if running.state == 'running' else 'waiting'} "
                           f"for this study (job {running.id}); wait for it to end.")
        now = utcnow()
        for old in session.scalars(select(Job).where(Job.study_id == study_id, Job.kind == kind, Job.state == "running")):
            if is_interrupted(old, now, stale_after_s):
                old.state, old.error, old.finished_at = "failed", INTERRUPTED, now
        job = Job(study_id=study_id, kind=kind, state="queued", params=dict(params or {}), progress=0.0,
                  message="waiting for a worker")
        session.add(job)
        session.flush()
        return job


def claim(factory: sessionmaker[Session], job_id: int) -> Job | None:
    """queued -> running, atomically (one worker wins); None when the job is gone or not queued."""
    now = utcnow()
    with transaction(factory) as session:
        claimed = session.execute(
            update(Job).where(Job.id == job_id, Job.state == "queued")
            .values(state="running", started_at=now, heartbeat_at=now, message="started")
        ).rowcount
        return session.get(Job, job_id) if claimed == 1 else None


def record_progress(factory: sessionmaker[Session], job_id: int, fraction: float | None = None,
                    message: str | None = None) -> None:
    values: dict[str, Any] = {"heartbeat_at": utcnow()}
    if fraction is not None:
        values["progress"] = max(0.0, min(1.0, float(fraction)))
    if message is not None:
        values["message"] = message[:500]
    with transaction(factory) as session:
        session.execute(update(Job).where(Job.id == job_id, Job.state == "running").values(**values))


def mark_done(session: Session, job_id: int, result: dict[str, Any], message: str) -> None:
    """In the caller's transaction, beside the job's results: both are stored, or neither."""
    session.execute(
        update(Job).where(Job.id == job_id).values(state="done", progress=1.0, message=message[:500], result=result,
                                                  finished_at=utcnow(), heartbeat_at=utcnow())
    )


def mark_failed(factory: sessionmaker[Session], job_id: int, error: str) -> None:
    with transaction(factory) as session:
        session.execute(
            update(Job).where(Job.id == job_id).values(state="failed", error=error, message="failed", finished_at=utcnow())
        )


def jobs_of_study(session: Session, study_id: int, limit: int = 20, exclude_kinds: tuple[str, ...] = ()) -> list[Job]:
    query = select(Job).where(Job.study_id == study_id)
    if exclude_kinds:
        query = query.where(Job.kind.not_in(exclude_kinds))
    return list(session.scalars(query.order_by(Job.id.desc()).limit(limit)))


def job_view(job: Job, now: dt.datetime | None = None, stale_after_s: float = STALE_AFTER_S) -> dict[str, Any]:
    """What the dashboard and `hype jobs` show: state (an interrupted job says so), percent, message, error."""
    interrupted = is_interrupted(job, now, stale_after_s)
    state = "interrupted" if interrupted else job.state
    return {
        "id": job.id,
        "kind": job.kind,
        "label": LABELS.get(job.kind, job.kind),
        "state": state,
        "active": state in ("queued", "running"),
        "percent": round(100 * (job.progress or 0.0)),
        "message": job.message or "",
        "error": INTERRUPTED if interrupted else job.error,
        "params": job.params or {},
        "result": job.result or {},
        "created_at": _iso(job.created_at),
        "finished_at": _iso(job.finished_at),
    }


def _iso(t: dt.datetime | None) -> str | None:
    t = _aware(t)
    return t.isoformat(timespec="seconds") if t else None
