"""The production topology (issue #18): Debian's nginx in front, configured by `hype nginx-config`,
two app servers behind it (as if on two machines), one PostgreSQL. A short simulated crowd does whole
sessions through nginx, pages included; the database check must pass, every image must arrive as a PNG sent by nginx
(X-Accel-Redirect), and both app servers must have served.

Only outcomes are asserted; the figures are experiments/load_crowd.py --nginx's to print.
"""

from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path

import pytest

from sqlalchemy import select

from hype.db import make_engine
from hype.models import Judgment, Trial
from load_crowd import print_result, run_load

pytestmark = [pytest.mark.slow, pytest.mark.db]

N_WORKERS = 40


def test_crowd_through_nginx_to_two_app_servers_on_postgres(db_backend, db_url, tmp_path):
    if db_backend != "postgresql":
        pytest.skip("the scale-out topology shares one PostgreSQL between app servers")
    if shutil.which("nginx") is None and not Path("/usr/sbin/nginx").exists():
        pytest.fail("nginx is not installed (tests/run_all.sh installs Debian's)")
    result = run_load(db_url, tmp_path / "data", N_WORKERS, server_workers=1, server_threads=2, think_scale=0.05,
                      ramp_s=2.0, deadline_s=240.0, image_size=32, nginx=True, app_servers=2, pages=True)
    print_result(result)
    log = result.log
    assert not log.unfinished, log.unfinished[:5]
    assert not log.unsettled and not log.refused
    assert len(log.final_stage) == N_WORKERS
    assert result.check.ok, result.check.summary()
    assert result.check.stored == len(log.acknowledged) >= N_WORKERS * 10
    assert log.latencies_ms["image"] and not log.errors.get(("image", "not a PNG")), dict(log.errors)
    # the pages as a browser loads them (start page, each stage's page, its stylesheet and script, a
    # trial page's progress), through nginx, every one answered
    assert len(log.latencies_ms["page"]) >= N_WORKERS * 4 and log.latencies_ms["static"] and log.latencies_ms["state"]
    assert not [key for key in log.errors if key[0] in ("page", "static", "state")], dict(log.errors)
    # every answered trial's image was delivered exactly once (the crowd fetches each image once, as
    # the runner does): the app counted each presentation although nginx sent the bytes
    if not any(endpoint == "image" for endpoint, _ in log.errors):
        engine = make_engine(db_url)
        try:
            with engine.connect() as conn:
                counts = Counter(conn.execute(select(Trial.presentations).join(Judgment, Judgment.trial_id == Trial.id)).scalars())
        finally:
            engine.dispose()
        assert counts == Counter({1: len(log.acknowledged)}), counts
    # nginx spread the crowd over both app servers (each did at least a fifth of their joint work)
    apps = [result.cpu_s["app server 1"], result.cpu_s["app server 2"]]
    assert min(apps) > 0.2 * sum(apps), result.cpu_s
    # where the CPU went, by part: the requests ran in the workers' request threads, this run's
    # PostgreSQL backends did its database work, and the crowd's event loop (a thread that has ended
    # by now) is in the client's figure
    parts = result.by_part
    for app in ("app server 1", "app server 2"):
        assert parts[(app, "workers' request threads")] > parts[(app, "arbiter")], parts
    assert parts[("PostgreSQL", "backends of this run")] > 0, parts
    assert parts[("crowd client", "other threads")] > parts[("crowd client", "main thread")], parts
