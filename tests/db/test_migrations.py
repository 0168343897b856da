"""Alembic owns the schema: upgrade gives exactly the models' schema, downgrade removes it."""

from __future__ import annotations

import datetime as dt
import json

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text

from hype.db import make_engine
from hype.migrate import downgrade, upgrade
from hype.models import Base
from hype.protocol import StudySettings


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


def test_studies_published_before_the_threshold_rule_keep_the_joint_rule(db_url):
    """Migration qrule: a study's settings are its own copy of the protocol, so a study published (or
    closed) before `time.adaptive_rule` existed must not read the new default and switch QUEST+ rules
    between one worker and the next; a draft takes the new default like any new study."""
    engine = make_engine(db_url)
    upgrade(engine, "stop2")
    old_time = {k: v for k, v in StudySettings().to_dict()["time"].items() if k != "adaptive_rule"}
    insert = text(
        "INSERT INTO studies (slug, name, mode, status, seed, settings, completion_code, qualification_fail_code,"
        " export_salt, created_at) VALUES (:slug, :slug, 'hype-time', :status, 0, :settings, 'c', 'q', 's', :now)")
    with engine.begin() as conn:
        for slug, status in (("live", "published"), ("done", "closed"), ("draft", "draft")):
            conn.execute(insert, {"slug": slug, "status": status, "now": dt.datetime.now(dt.timezone.utc),
                                  "settings": json.dumps({"mode": "hype-time", "time": dict(old_time, adaptive=True)})})

    def rules() -> dict[str, object]:
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT slug, settings FROM studies")).all()
        return {slug: (json.loads(st) if isinstance(st, str) else st)["time"].get("adaptive_rule") for slug, st in rows}

    upgrade(engine)
    assert rules() == {"live": "parameters", "done": "parameters", "draft": None}
    with engine.connect() as conn:
        stored = conn.execute(text("SELECT settings FROM studies WHERE slug = 'live'")).scalar_one()
    live = StudySettings.from_dict(json.loads(stored) if isinstance(stored, str) else stored)
    assert live.time.adaptive_rule == "parameters" and live.time.adaptive
    downgrade(engine, "stop2")
    assert rules() == {"live": None, "done": None, "draft": None}
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
