"""Alembic owns the schema: upgrade gives exactly the models' schema, downgrade removes it."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text

from hype.db import make_engine
from hype.migrate import downgrade, upgrade
from hype.models import Base


def _diff(engine):
    with engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        return compare_metadata(ctx, Base.metadata)


def test_upgrade_head_matches_models_exactly(db_url):
    engine = make_engine(db_url)
    upgrade(engine)
    assert _diff(engine) == []
    tables = set(inspect(engine).get_table_names())
    assert set(Base.metadata.tables) <= tables
    engine.dispose()


def test_downgrade_base_removes_every_table_and_upgrade_again_works(db_url):
    engine = make_engine(db_url)
    upgrade(engine)
    downgrade(engine, "base")
    left = set(inspect(engine).get_table_names()) - {"alembic_version"}
    assert left == set()
    upgrade(engine)
    assert _diff(engine) == []
    engine.dispose()


def test_sqlite_runs_with_wal_and_foreign_keys(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'x.db'}")
    with engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
        assert conn.execute(text("PRAGMA busy_timeout")).scalar() >= 5000
    engine.dispose()


def test_foreign_keys_are_enforced(session):
    import pytest
    from sqlalchemy.exc import IntegrityError

    from hype.models import GeneratorModel

    session.add(GeneratorModel(study_id=999_999, name="orphan", position=0))
    with pytest.raises(IntegrityError):
        session.flush()
