"""Crash safety (issue #6): under load, `kill -9` every server process at a random moment, twice, and
restart. Clients retry with their idempotency keys (as static/worker.js does); some reload the page
instead and come back through the study link. Afterwards the database holds each acknowledged
answer exactly once, and every participant got back into their own session and finished it.
"""

from __future__ import annotations

import asyncio
import random

import pytest

from crowd_client import CrowdPlan, run_crowd_blocking
from crowd_setup import Server, build_load_studies, check_database, load_server_config, truth_by_token

pytestmark = [pytest.mark.slow, pytest.mark.db]

N_WORKERS = 60
KILLS = 2


def test_kill_9_under_load_loses_nothing_and_everyone_resumes(db_url, tmp_path):
    config = load_server_config(tmp_path / "data", db_url)
    studies = build_load_studies(config, image_size=32)
    server = Server(config, workers=2, threads=2)
    server.start()
    oracle = truth_by_token(db_url)
    chance = random.Random()
    killed_at: list[int] = []

    async def kill_and_restart(log) -> None:
        for _ in range(KILLS):
            # a random moment once answers are flowing (at least 100 more since the last restart)
            floor = len(log.acknowledged) + 100
            while len(log.acknowledged) < floor:
                if len(log.final_stage) + len(log.unfinished) == N_WORKERS:
                    return  # the crowd finished first; the kill count assertion will say so
                await asyncio.sleep(0.05)
            await asyncio.sleep(chance.uniform(0.0, 1.5))
            killed_at.append(len(log.acknowledged))
            server.kill()
            await asyncio.sleep(chance.uniform(0.2, 1.0))  # down: clients meet refused connections
            await asyncio.to_thread(server.start)

    plan = CrowdPlan(base_url=server.base_url, slugs=tuple(s.slug for s in studies), n_workers=N_WORKERS, ramp_s=2.0,
                     think_scale=0.1, deadline_s=300.0, seed=chance.randrange(2**31), reload_share=0.5)
    try:
        log = run_crowd_blocking(plan, oracle, during=kill_and_restart)
    finally:
        server.stop()
        oracle.dispose()

    print(f"killed after {killed_at} acknowledged answers; errors {dict(log.errors)}; {len(log.resumed)} reloads; "
          f"{len(log.abandoned)} answers in flight at a reload; {len(log.acknowledged)} acknowledged")
    assert len(killed_at) == KILLS
    connection_errors = sum(n for (_, what), n in log.errors.items() if not what.isdigit())
    assert connection_errors > 0, "the kills hit no request: the test proved nothing"
    assert not log.unfinished, log.unfinished[:5]
    assert not log.unsettled and not log.refused
    # every participant finished their session, and a reload found the same session again
    assert len(log.final_stage) == N_WORKERS
    assert log.resumed and all(before == after for before, after in log.resumed), log.resumed[:5]
    check = check_database(db_url, [s.study_id for s in studies], log.acknowledged, log.refused, log.abandoned)
    assert check.ok, check.summary()
    assert set(check.stages) <= {"completed", "failed"}
