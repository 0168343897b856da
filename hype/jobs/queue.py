"""The queue: Huey, with SQLite storage in the data dir by default and Redis with HYPE_REDIS_URL.

Why Huey: one small library whose SQLite storage needs no server (the embedded default, like the
platform's own SQLite) and whose Redis storage is the same API for production; its consumer runs
tasks on threads or processes. RQ and Dramatiq need Redis or RabbitMQ even for a demo, and Celery
is far larger than three kinds of job need.

A message carries only the job id; the job's row holds everything else, so the queue can be
emptied or switched without losing what a job was or how it ended.
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Any

from huey import Huey, RedisHuey, SqliteHuey
from huey.consumer import Consumer

from hype.config import Config

TASK_NAME = "hype.run_job"
REDIS_ENV = "HYPE_REDIS_URL"

_QUEUES: dict[tuple[str, str, str], Huey] = {}
_LOCK = threading.Lock()


def redis_url(config: Config) -> str | None:
    return config.extra.get("redis_url") or os.environ.get(REDIS_ENV) or None


def queue_description(config: Config) -> str:
    url = redis_url(config)
    return "Redis" if url else f"SQLite ({config.data_dir.name}/jobs-queue.db)"


def get_queue(config: Config) -> Huey:
    """This process's queue for `config` (built once), with the job task registered on it."""
    url = redis_url(config)
    name = config.extra.get("queue_name", "hype")
    key = (name, url or str(config.data_dir), config.database_url)
    with _LOCK:
        if key not in _QUEUES:
            if url:
                huey: Huey = RedisHuey(name, url=url, results=False)
            else:
                config.data_dir.mkdir(parents=True, exist_ok=True)
                huey = SqliteHuey(name, filename=str(config.data_dir / "jobs-queue.db"), results=False)

            @huey.task(name=TASK_NAME)
            def run(job_id: int) -> None:
                from hype.jobs.runner import run_job

                run_job(config, job_id)

            huey.hype_run = run  # type: ignore[attr-defined]
            _QUEUES[key] = huey
        return _QUEUES[key]


def enqueue(config: Config, job_id: int) -> None:
    get_queue(config).hype_run(job_id)  # type: ignore[attr-defined]


def preload() -> None:
    """Import torch and the metrics code now, at the worker's start, rather than inside the first job
    (seconds of CPU a job would otherwise spend beside the server)."""
    try:
        import hype.metrics.features  # noqa: F401
        import hype.metrics.runner  # noqa: F401
    except ImportError:  # no metrics extra: metrics jobs will fail with that message, other jobs run
        pass


def make_consumer(config: Config, workers: int = 1, worker_type: str = "thread") -> Consumer:
    """A consumer for `hype worker` (its run() blocks, and stops on SIGINT / SIGTERM)."""
    _quiet_polling()
    preload()
    return get_queue(config).create_consumer(workers=workers, worker_type=worker_type, periodic=False,
                                             max_delay=2.0)


class _EmbeddedConsumer(Consumer):
    """Huey's consumer without its signal handlers: it runs beside the dev server (`hype demo`,
    `hype serve`), whose own Ctrl-C must keep working; its threads are daemons and end with it."""

    def _set_signal_handlers(self) -> None:
        pass


def start_embedded_worker(config: Config, workers: int = 1) -> Consumer:
    _quiet_polling()
    consumer = _EmbeddedConsumer(get_queue(config), workers=workers, worker_type="thread", periodic=False,
                                 max_delay=2.0)
    consumer.start()
    return consumer


def _quiet_polling() -> None:
    logging.getLogger("huey").setLevel(logging.WARNING)


def pending(config: Config) -> int:
    return get_queue(config).pending_count()


def flush(config: Config) -> Any:
    return get_queue(config).flush()


def submit(config: Config, factory, study_id: int, kind: str, params: dict[str, Any] | None = None):
    """Record a job and put it on the queue; a queue that cannot be reached fails the job at once,
    with a message, rather than leaving it waiting forever."""
    from hype.jobs import records

    job = records.start_job(factory, study_id, kind, params)
    try:
        enqueue(config, job.id)
    except Exception as exc:  # noqa: BLE001 - redis down, disk full: say so on the job
        logging.getLogger("hype.jobs").exception("job %s could not be queued", job.id)
        records.mark_failed(factory, job.id, f"the job queue ({queue_description(config)}) could not be reached: "
                                             f"{type(exc).__name__}")
        raise records.JobError("the job queue could not be reached; is the worker's Redis running?") from exc
    return job
