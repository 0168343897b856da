"""The metrics job: everything stored in one short transaction at the end, nothing while it computes,
nothing at all when it fails or is killed, and it can always be started again."""

from __future__ import annotations

import inspect
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select, text

from hype.db import make_engine, make_session_factory
from hype.models import MetricResult

try:  # absent before issue 12: the lock test below must run (and fail) on that code too
    from hype.jobs import JobError, job_view, run_job, start_job
    from hype.models import Job
except ImportError:
    pass

pytestmark = pytest.mark.db
REPO = Path(__file__).resolve().parents[2]
#: FID's two 2048-d eigendecompositions cost half a minute each on a busy 2-core machine; the job
#: tests compute the other metrics (FID goes through the very same code path).
FAST = ["kid", "prd", "prdc"]


def _count(session, model=MetricResult) -> int:
    session.expire_all()
    return session.scalar(select(func.count()).select_from(model))


def test_metrics_job_stores_every_model_at_once_and_reports_progress(config, engine, session, metrics_study, tiny_weights):
    factory = make_session_factory(engine)
    job = start_job(factory, metrics_study.id, "metrics", {"weights": str(tiny_weights), "device": "cpu", "batch_size": 8,
                                                          "metrics": FAST})
    with pytest.raises(JobError, match="already waiting"):
        start_job(factory, metrics_study.id, "metrics")
    assert run_job(config, job.id) == "done"
    assert run_job(config, job.id) == "skipped"  # a second delivery of the same message does nothing
    view = job_view(session.get(Job, job.id))
    assert view["state"] == "done" and view["percent"] == 100 and view["error"] is None
    results = session.scalars(select(MetricResult).order_by(MetricResult.id)).all()
    assert sorted(r.model_id for r in results) == sorted(m.id for m in metrics_study.models)
    assert view["result"]["metric_result_ids"] == [r.id for r in results]
    assert all(r.values["kid_mean"] is not None and r.values["precision"] is not None and r.values["n_real"] == 24
               for r in results)


def test_failed_metrics_job_says_why_without_server_paths_and_stores_nothing(config, engine, session, metrics_study, tmp_path):
    bad = tmp_path / "secret" / "dir" / "weights.pt"  # does not exist
    factory = make_session_factory(engine)
    job = start_job(factory, metrics_study.id, "metrics", {"weights": str(bad), "device": "cpu"})
    assert run_job(config, job.id) == "failed"
    view = job_view(session.get(Job, job.id))
    assert view["state"] == "failed" and "Inception weights" in view["error"]
    assert str(tmp_path) not in view["error"] and "weights.pt" in view["error"]
    assert _count(session) == 0
    again = start_job(factory, metrics_study.id, "metrics", {"device": "cpu"})  # a failed job does not block a new one
    assert again.id != job.id


@pytest.mark.serial  # bounds a writer's wait (max < 1 s)
def test_metrics_never_hold_the_write_lock_while_computing(tmp_path, tiny_weights):
    """Issue 12 defect 1: on SQLite, `hype metrics` held the write lock from the first model's result to
    the end, and every worker's answer waited, then failed ("database is locked"). Here a writer with
    a 1 s busy timeout writes without pause while the metrics of three models are computed."""
    import numpy as np

    from hype.config import load_config
    from hype.migrate import upgrade
    from hype.studies import create_study, import_images
    from hype.study_metrics import compute_study_metrics
    from pool_factory import make_pool_images

    config = load_config(data_dir=tmp_path / "data", database_url=f"sqlite:///{tmp_path / 'lock.db'}",
                         secret_key="x", testing=True)
    engine = make_engine(config.database_url)
    upgrade(engine)
    factory = make_session_factory(engine)
    rng = np.random.default_rng(3)
    with factory() as s:
        study = create_study(s, name="lock", mode="hype-infinity", seed=3)
        import_images(s, config, study, make_pool_images(12, rng, 32, smooth=False), pool="real")
        for name in ("a", "b", "c"):
            import_images(s, config, study, make_pool_images(12, rng, 32, smooth=True), pool="fake", model_name=name)
        s.commit()
        study_id = study.id
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE side_writes (id INTEGER PRIMARY KEY, at REAL)"))

    done = threading.Event()
    failure: list[BaseException] = []

    def compute() -> None:
        try:
            with factory() as s:
                from hype.models import Study

                fast = {"metrics": FAST} if "metrics" in inspect.signature(compute_study_metrics).parameters else {}
                compute_study_metrics(s, config, s.get(Study, study_id), device="cpu", batch_size=4, progress=False,
                                      weights=str(tiny_weights), **fast)
                s.commit()
        except BaseException as exc:  # noqa: BLE001
            failure.append(exc)
        finally:
            done.set()

    import sqlite3

    writer = sqlite3.connect(str(tmp_path / "lock.db"), timeout=1.0, isolation_level=None)
    thread = threading.Thread(target=compute, daemon=True)
    thread.start()
    waits, errors = [], []
    while not done.is_set() and not errors:
        t0 = time.perf_counter()
        try:
            writer.execute("INSERT INTO side_writes (at) VALUES (?)", (t0,))
        except sqlite3.OperationalError as exc:
            errors.append(str(exc))
        waits.append(time.perf_counter() - t0)
        time.sleep(0.02)
    writer.close()
    assert not errors, f"{len(errors)} writes failed while metrics ran: {errors[0]}"
    thread.join()
    assert not failure, failure
    assert not errors, f"{len(errors)} writes failed while metrics ran: {errors[0]}"
    assert len(waits) > 20 and max(waits) < 1.0
    with factory() as s:
        assert _count(s) == 3


def _worker(config, env_extra: dict[str, str], log: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO), "HYPE_SECRET_KEY": "test-secret", **env_extra}
    return subprocess.Popen(
        [sys.executable, "-m", "hype.cli", "--data-dir", str(config.data_dir), "--database-url", config.database_url, "worker"],
        stdout=open(log, "wb"), stderr=subprocess.STDOUT, env=env, start_new_session=True,
    )


def _wait(predicate, timeout_s: float, what: str):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.slow
def test_killed_job_leaves_nothing_and_starts_again(config, engine, session, metrics_study, tiny_weights, tmp_path):
    """`hype worker` is killed with SIGKILL halfway through the features: no metric is stored, the job
    shows as interrupted once its heartbeat is stale, and starting it again (a new worker) completes."""
    from hype.jobs import submit

    factory = make_session_factory(engine)
    params = {"weights": str(tiny_weights), "device": "cpu", "batch_size": 2, "metrics": FAST}
    job = submit(config, factory, metrics_study.id, "metrics", params)
    worker = _worker(config, {}, tmp_path / "worker1.log")
    try:
        def halfway():
            session.expire_all()
            j = session.get(Job, job.id)
            return j.state == "running" and 0.2 < j.progress < 0.8
        _wait(halfway, 120, "the job to be halfway")
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait()
    finally:
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGKILL)
    assert _count(session) == 0
    session.expire_all()
    killed = session.get(Job, job.id)
    assert job_view(killed)["state"] == "running"  # its heartbeat is still fresh
    with pytest.raises(JobError, match="already running"):
        start_job(factory, metrics_study.id, "metrics")
    time.sleep(1.5)
    assert job_view(killed, stale_after_s=1.0)["state"] == "interrupted"
    from hype.jobs.queue import enqueue

    again = start_job(factory, metrics_study.id, "metrics", params, stale_after_s=1.0)
    enqueue(config, again.id)
    worker = _worker(config, {}, tmp_path / "worker2.log")
    try:
        _wait(lambda: (session.expire_all(), session.get(Job, again.id).state in ("done", "failed"))[1], 120, "the job to end")
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        worker.wait(20)
    session.expire_all()
    assert session.get(Job, again.id).state == "done", (tmp_path / "worker2.log").read_text()[-2000:]
    assert session.get(Job, job.id).state == "failed" and "interrupted" in session.get(Job, job.id).error
    assert _count(session) == len(metrics_study.models)
