"""Issue 12: a metrics job runs while a simulated crowd answers, and no worker request fails or waits
more than 1 s because of it, on SQLite and on PostgreSQL.

`hype serve --production` and `hype worker` run as they would in production (separate processes on
one 2-core machine); 60 simulated workers do whole sessions at a person's pace (experiments/
crowd_client.py). Once all have entered and are answering, the metrics of the HYPE-infinity study are
queued (the worker process has loaded torch by then, as a running `hype worker` has); every
request that completed between the job's start and a second after its end counts as "during the
job". The longest of them is printed for the issue note. Once the job has ended the crowd is sent
home (the run is ended from beside it), since what it does afterwards is the load test's business."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from crowd_client import CrowdPlan, run_crowd_blocking
from crowd_setup import Server, build_load_studies, load_server_config, truth_by_token

pytestmark = [pytest.mark.slow, pytest.mark.db, pytest.mark.serial]  # asserts answer latency (MAX_WAIT_MS)
pytest.importorskip("torch")

REPO = Path(__file__).resolve().parents[2]
N_WORKERS = 40
MAX_WAIT_MS = 1000.0
JOB_N_BOOT = 3000


class _JobEnded(Exception):
    """Raised beside the crowd once the job has ended: run_crowd then stops every worker."""


def _start_worker(config, weights: Path, log: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO), "HYPE_SECRET_KEY": config.secret_key,
           "HYPE_INCEPTION_WEIGHTS": str(weights)}
    return subprocess.Popen(
        [sys.executable, "-m", "hype.cli", "--data-dir", str(config.data_dir), "--database-url", config.database_url,
         "worker"], stdout=open(log, "wb"), stderr=subprocess.STDOUT, env=env, start_new_session=True)


def test_metrics_job_while_a_crowd_answers(db_url, tmp_path):
    sys.path.insert(0, str(REPO / "tests" / "jobs"))
    from tiny_inception import write_tiny_inception

    from hype.db import make_engine, make_session_factory
    from hype.jobs import job_view, submit
    from hype.models import Job, MetricResult

    config = load_server_config(tmp_path / "data", db_url)
    studies = build_load_studies(config, image_size=32)
    target = next(s for s in studies if s.mode == "hype-infinity")
    weights = write_tiny_inception(tmp_path / "tiny.pt", depth=4)
    engine = make_engine(db_url)
    factory = make_session_factory(engine)
    server = Server(config, workers=2, threads=2)
    server.start()
    worker = _start_worker(config, weights, tmp_path / "worker.log")
    oracle = truth_by_token(db_url)
    seen: dict = {}

    def job_state(job_id: int) -> dict:
        with factory() as s:
            return job_view(s.get(Job, job_id))

    async def run_metrics_job(log) -> None:
        while len(log.latencies_ms.get("entry", ())) < N_WORKERS:  # everyone has arrived and is answering
            await asyncio.sleep(0.2)
        await asyncio.sleep(2.0)
        before = {k: len(v) for k, v in log.latencies_ms.items()}
        errors_before = Counter(log.errors)
        job = await asyncio.to_thread(submit, config, factory, target.study_id, "metrics",
                                      {"device": "cpu", "batch_size": 8, "metrics": ["kid", "prd", "prdc"],
                                       # many bootstrap replicates: a job that lasts a while (as FID on
                                       # 5000 images does), so that hundreds of requests meet it
                                       "n_boot": JOB_N_BOOT})
        started = time.monotonic()
        while (view := await asyncio.to_thread(job_state, job.id))["active"]:
            if time.monotonic() - started > 400:
                raise AssertionError(f"the job did not end: {view}")
            await asyncio.sleep(0.5)
        seen["job_s"] = time.monotonic() - started
        await asyncio.sleep(1.0)  # requests in flight at the job's end finish
        seen["view"] = view
        seen["during"] = {k: v[before.get(k, 0):] for k, v in log.latencies_ms.items()}
        seen["errors"] = Counter(log.errors) - errors_before
        seen["crowd_still_running"] = len(log.final_stage) + len(log.unfinished) < N_WORKERS
        raise _JobEnded

    plan = CrowdPlan(base_url=server.base_url, slugs=tuple(s.slug for s in studies), n_workers=N_WORKERS, ramp_s=3.0,
                     think_scale=1.0, deadline_s=400.0, seed=5)
    try:
        with pytest.raises(_JobEnded):
            run_crowd_blocking(plan, oracle, during=run_metrics_job)
    finally:
        server.stop()
        os.killpg(worker.pid, signal.SIGTERM)
        worker.wait(30)
        oracle.dispose()
    kind = "sqlite" if db_url.startswith("sqlite") else "postgresql"
    during = [(endpoint, ms) for endpoint, values in seen["during"].items() for ms in values]
    longest = max(during, key=lambda item: item[1])
    print(f"\n[{kind}] metrics job {seen['job_s']:.1f} s beside {N_WORKERS} workers: {len(during)} requests during it, "
          f"longest wait {longest[1]:.0f} ms ({longest[0]}); errors during it: {dict(seen['errors']) or 'none'}")
    assert seen["view"]["state"] == "done", (seen["view"], (tmp_path / "worker.log").read_text()[-3000:])
    assert seen["crowd_still_running"], "the crowd finished before the job: the test proved nothing"
    assert len(during) > 200
    assert not seen["errors"], seen["errors"]
    assert longest[1] < MAX_WAIT_MS, longest
    with factory() as s:
        assert s.query(MetricResult).count() == 2
    engine.dispose()
