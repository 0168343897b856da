"""Running one job: claim it, keep its heartbeat, run its kind, and end it as done or failed.

Whatever a job's kind raises ends the job as failed with a message for a person (never a traceback
or a server path; the worker's log has the details), and nothing of the job is stored: each kind
writes its results in one short transaction at its very end.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Iterator

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from hype.config import Config
from hype.db import make_engine, make_session_factory, transaction
from hype.jobs import records

log = logging.getLogger("hype.jobs")

_ENGINES: dict[str, Engine] = {}
_ENGINES_LOCK = threading.Lock()


def engine_for(config: Config) -> Engine:
    """One engine per database per process, shared by every job this process runs."""
    with _ENGINES_LOCK:
        if config.database_url not in _ENGINES:
            _ENGINES[config.database_url] = make_engine(config.database_url)
        return _ENGINES[config.database_url]


@dataclass
class JobContext:
    """What a job's kind gets: its parameters, short sessions, and a progress reporter."""

    config: Config
    factory: sessionmaker[Session]
    job_id: int
    study_id: int
    kind: str
    params: dict[str, Any]
    min_interval_s: float = 2.0
    _last: float = field(default=0.0, repr=False)
    _stored: float = field(default=0.0, repr=False)

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A short read; closed (and its snapshot released) on leaving the block."""
        with self.factory() as session:
            yield session
            session.rollback()

    def write(self):
        """The one short transaction in which a job stores its results (with `finish`)."""
        return transaction(self.factory)

    def finish(self, session: Session, result: dict[str, Any], message: str) -> None:
        records.mark_done(session, self.job_id, result, message)

    def progress(self, fraction: float, message: str) -> None:
        """Store progress every `min_interval_s`, or sooner when it moved by a tenth: each store is a
        short write, and on SQLite every write briefly takes the one write lock the workers' answers
        need too, so a job writes a few dozen times at most."""
        now = time.monotonic()
        if fraction < 1.0 and now - self._last < self.min_interval_s and fraction - self._stored < 0.1:
            return
        self._last, self._stored = now, fraction
        records.record_progress(self.factory, self.job_id, fraction, message)


class _Heartbeat:
    """Renews the job's heartbeat while a long step (a metric, a render) reports no progress."""

    def __init__(self, factory: sessionmaker[Session], job_id: int, interval_s: float) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(factory, job_id, interval_s), daemon=True,
                                        name=f"hype-job-{job_id}-heartbeat")

    def _run(self, factory: sessionmaker[Session], job_id: int, interval_s: float) -> None:
        while not self._stop.wait(interval_s):
            try:
                records.record_progress(factory, job_id)
            except Exception:  # noqa: BLE001 - a missed beat is retried at the next interval
                log.warning("job %s: heartbeat not stored", job_id, exc_info=True)

    def __enter__(self) -> "_Heartbeat":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def run_job(config: Config, job_id: int, *, heartbeat_s: float = records.HEARTBEAT_S) -> str:
    """Run the job if it is still queued; returns its final state ('done', 'failed', or 'skipped'
    when another worker took it or it no longer exists)."""
    from hype.jobs.kinds import KINDS

    factory = make_session_factory(engine_for(config))
    job = records.claim(factory, job_id)
    if job is None:
        return "skipped"
    ctx = JobContext(config, factory, job.id, job.study_id, job.kind, dict(job.params or {}))
    log.info("job %s (%s, study %s) started", job.id, job.kind, job.study_id)
    try:
        with _Heartbeat(factory, job.id, heartbeat_s):
            KINDS[job.kind](ctx)
    except Exception as exc:  # noqa: BLE001 - every failure ends the job with a message
        log.exception("job %s (%s) failed", job.id, job.kind)
        records.mark_failed(factory, job.id, message_for_person(exc))
        return "failed"
    log.info("job %s (%s) done", job.id, job.kind)
    return "done"


_EXPECTED = ("JobError", "StudyError", "MetricError", "WeightsNotFoundError", "ImageImportError", "ScoringError",
             "ValueError", "FileNotFoundError")
_PATH = re.compile(r"(?<![\w.])/(?:[\w.+-]+/)+([\w.+-]+)")


def message_for_person(exc: BaseException) -> str:
    """The error's own message for the errors hype raises on purpose, with server paths cut to the
    file's name; anything else is an internal error, described in the worker's log only."""
    if type(exc).__name__ in _EXPECTED or any(c.__name__ in _EXPECTED for c in type(exc).__mro__):
        text = _PATH.sub(lambda m: m.group(1), str(exc)).strip()
        return text[:2000] or type(exc).__name__
    return "internal error in the job (the worker's log has the details); you can start it again."
