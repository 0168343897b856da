"""Shared fixtures. Database tests run on SQLite always and on PostgreSQL too when a server is given:

    HYPE_TEST_POSTGRES_URL=postgresql+psycopg://user@127.0.0.1:5432/postgres pytest

Every DB test gets a fresh, empty database (a temporary SQLite file, or a new PostgreSQL database
created from that server URL and dropped afterwards). HYPE_TEST_REQUIRE_POSTGRES=1 (set by CI) turns
a missing PostgreSQL into a failure rather than a skip, so CI cannot go green on SQLite alone.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator

import pytest

from hype.config import Config, load_config
from hype.db import scratch_postgres_database

POSTGRES_URL = os.environ.get("HYPE_TEST_POSTGRES_URL")
REQUIRE_POSTGRES = os.environ.get("HYPE_TEST_REQUIRE_POSTGRES") == "1"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--db",
        choices=["sqlite", "postgresql", "both"],
        default=None,
        help="Which databases DB tests run on (default: both when HYPE_TEST_POSTGRES_URL is set, else sqlite).",
    )


def _backends(config: pytest.Config) -> list[str]:
    choice = config.getoption("--db") or ("both" if POSTGRES_URL or REQUIRE_POSTGRES else "sqlite")
    return ["sqlite", "postgresql"] if choice == "both" else [choice]


@pytest.hookimpl(trylast=True)  # after tests/browser/conftest.py has marked its tests
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under pytest-xdist (tests/run_all.sh), the long tests (slow, browser) are handed out first, so the
    run does not end with one process alone on a minute-long test while the other has nothing left.
    The sort is stable and the same in every process (xdist requires that); a plain run keeps file order."""
    if hasattr(config, "workerinput"):
        items.sort(key=lambda item: not (item.get_closest_marker("slow") or item.get_closest_marker("browser")))


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "db_backend" in metafunc.fixturenames:
        metafunc.parametrize("db_backend", _backends(metafunc.config), scope="function")


@pytest.fixture
def db_url(db_backend: str, tmp_path: Path) -> Iterator[str]:
    """A URL to a fresh, empty database of the selected backend."""
    if db_backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'test.db'}"
        return
    if not POSTGRES_URL:
        if REQUIRE_POSTGRES:
            pytest.fail("HYPE_TEST_REQUIRE_POSTGRES=1 but HYPE_TEST_POSTGRES_URL is not set")
        pytest.skip("no PostgreSQL server (set HYPE_TEST_POSTGRES_URL)")
    with scratch_postgres_database(POSTGRES_URL, prefix="hype_test") as url:
        yield url


@pytest.fixture
def config(tmp_path: Path, db_url: str) -> Config:
    return load_config(data_dir=tmp_path / "data", database_url=db_url, secret_key="test-secret", testing=True)


@pytest.fixture
def engine(config: Config):
    """An engine on a database migrated to head."""
    from hype.db import make_engine
    from hype.migrate import upgrade

    eng = make_engine(config.database_url)
    upgrade(eng)
    yield eng
    eng.dispose()


@pytest.fixture
def session(engine):
    from hype.db import make_session_factory

    with make_session_factory(engine)() as s:
        yield s


@pytest.fixture
def app(config: Config, engine):
    from hype.app import create_app

    return create_app(config)


@pytest.fixture
def client(app):
    return app.test_client()


# -- small published studies for worker / API / browser tests ------------------------------------------

SMALL_INFINITY = {
    "qualification": {"n_real": 4, "n_fake": 4},
    "infinity": {"n_real": 5, "n_fake": 5},
}
SMALL_TIME = {
    "qualification": {"n_real": 4, "n_fake": 4},
    "time": {"n_blocks": 2, "trials_per_block": 6},
}


@pytest.fixture
def make_study(session, config):
    """make_study(mode, settings=None, models=("alpha", "beta"), n_real=40, n_fake=30, size=32) -> Study,
    published, committed."""
    import numpy as np

    from hype.studies import create_study, import_images, publish_study
    from pool_factory import make_pool_images

    def factory(mode: str = "hype-infinity", settings: dict | None = None, models=("alpha", "beta"), n_real: int = 40,
                n_fake: int = 30, size: int = 32, seed: int = 7, publish: bool = True, **study_kwargs):
        default = SMALL_TIME if mode == "hype-time" else SMALL_INFINITY
        study = create_study(session, name=f"test {mode}", mode=mode, seed=seed, settings=settings or default, **study_kwargs)
        rng = np.random.default_rng(seed)
        import_images(session, config, study, make_pool_images(n_real, rng, size, smooth=False), pool="real")
        for name in models:
            import_images(session, config, study, make_pool_images(n_fake, rng, size, smooth=True), pool="fake", model_name=name)
        if publish:
            publish_study(session, config, study)
        session.commit()
        return study

    return factory
