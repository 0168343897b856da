"""The benchmarks' throwaway PostgreSQL cluster: two at once (a load run beside a serving bench, or a
cluster a killed run left behind) must not collide on one fixed port, as they did."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "experiments"))

from crowd_setup import throwaway_postgres  # noqa: E402

pytestmark = pytest.mark.slow


def test_two_throwaway_clusters_at_once_each_answer_on_their_own_port():
    if not sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb")):
        pytest.fail("PostgreSQL's binaries are not installed (tests/run_all.sh installs Debian's)")
    with throwaway_postgres() as first, throwaway_postgres() as second:
        assert first != second
        for url in (first, second):
            engine = create_engine(url)
            try:
                with engine.connect() as conn:
                    assert conn.execute(text("select 1")).scalar() == 1
            finally:
                engine.dispose()
