"""The load benchmark's short run (issue #6): 200 simulated workers do whole sessions through the HTTP
API of `hype serve --production`, and the database check must pass: every acknowledged answer stored
exactly once with what was sent, nothing refused or never sent stored, every plan answered in order.

Only the outcome is asserted here; the latency and throughput figures are the benchmark's to print
(python experiments/load_crowd.py), not a unit test's to time.
"""

from __future__ import annotations

import pytest

from load_crowd import print_result, run_load

pytestmark = [pytest.mark.slow, pytest.mark.db]


def test_200_workers_whole_sessions_nothing_lost_or_duplicated(db_url, tmp_path):
    result = run_load(db_url, tmp_path / "data", 200, server_workers=2, server_threads=2, think_scale=0.25,
                      ramp_s=5.0, deadline_s=420.0, image_size=32)
    print_result(result)
    log = result.log
    assert not log.unfinished, log.unfinished[:5]
    assert not log.unsettled and not log.refused
    assert len(log.final_stage) == 200  # every session reached completed or failed
    assert result.check.ok, result.check.summary()
    # every session's every trial was answered and stored: a full plan is 40 (HYPE-infinity) or 50 trials
    # unless its qualification failed, so the stored count is the acknowledged one and no less than 200 x 10
    assert result.check.stored == len(log.acknowledged) >= 200 * 10
    assert sum(result.check.stages.values()) == 200
    assert set(result.check.stages) <= {"completed", "failed"} and result.check.stages["completed"] > 100
