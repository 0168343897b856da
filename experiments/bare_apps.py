"""The baselines experiments/bench_serving.py measures hype against: the least a Flask handler can do
for the same database work, served by gunicorn exactly as `hype serve --production` is.

- ``sqlite3``: POST /answer parses the JSON body, INSERTs one judgment row with the DB-API (one
  connection per thread, the same pragmas as hype.db) and commits; GET /img/<name> reads a PNG from
  disk and returns it with the same headers as hype's images.
- ``orm``: the same answer through a SQLAlchemy 2 mapped class, session.add() and commit; on a SQLite
  file, or on a database URL (PostgreSQL: the baseline hype on PostgreSQL is measured against; give it a
  database of its own, as the table is created there).
- both also answer a HYPE-time trial: POST /timed-answer/<procedure>/<token> reads the token's block
  state (a JSON document, as hype stores a staircase's), moves it with hype.adaptive's own procedure
  (the weighted staircase or QUEST+, the bench's settings, parsed once per process) and writes it
  back with the judgment. That is the block read, step and write of hype's timed answer, so the timed
  rows compare serving with serving; the plain /answer has neither. Not the same to the last
  statement: hype also writes the next trial's exposure (and reads the session, its trials and the
  idempotency key), so the bare handler does less, not more; the sqlite3 app reads before its write
  transaction, as hype does on SQLite; and a token's block is made at its first answer, in the
  measured requests (one answer in 100, as the bench's sessions last 100 trials).
- ``wsgi``: no Flask and no database: GET /img/<name> answers at once with the headers hype's image
  gate sends behind nginx (an X-Accel-Redirect). What gunicorn itself costs a request: the floor
  under any image gate.

    python experiments/bare_apps.py sqlite3 --db /tmp/bare.db --images DIR --port 8001 --workers 3 --threads 2
    python experiments/bare_apps.py orm --db postgresql+psycopg://hype@127.0.0.1:5432/bare --images DIR --port 8002

Nothing here checks a token, an order or a staircase: it is the floor, not a rival implementation.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import threading
from pathlib import Path

from typing import Optional

from flask import Flask, Response, abort, jsonify, request
from sqlalchemy import JSON, Boolean, Engine, Float, String, create_engine, event
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from hype import adaptive
from hype.protocol import TimeSettings

PRAGMAS = ("PRAGMA journal_mode=WAL", "PRAGMA foreign_keys=ON", "PRAGMA busy_timeout=10000", "PRAGMA synchronous=NORMAL")
SCHEMA = """
CREATE TABLE IF NOT EXISTS judgments (
    id INTEGER PRIMARY KEY,
    session_token TEXT NOT NULL,
    trial TEXT NOT NULL,
    idempotency_key TEXT NOT NULL UNIQUE,
    judged_fake BOOLEAN NOT NULL,
    measured_ms REAL,
    reaction_ms REAL,
    refresh_interval_ms REAL
)
"""
BLOCKS_SCHEMA = "CREATE TABLE IF NOT EXISTS blocks (token TEXT PRIMARY KEY, state TEXT NOT NULL)"
# bench_serving.py's HYPE-time studies: one block of 100 trials, the staircase or QUEST+.
TRIALS_PER_BLOCK = 100


def procedures() -> dict[str, adaptive.BlockConfig]:
    """The bench's two exposure procedures, parsed once (as hype parses a block's stored config once)."""
    return {name: adaptive.block_config_from_text(json.dumps(adaptive.block_config(
        TimeSettings(n_blocks=1, trials_per_block=TRIALS_PER_BLOCK, adaptive=name == "quest+"))))
        for name in ("staircase", "quest+")}


def _judgment_values(token: str, body: dict) -> tuple:
    return (token, body["trial"], body["idempotency_key"], body["response"] == "fake", body.get("measured_ms"),
            body.get("reaction_ms"), body.get("refresh_interval_ms"))


INSERT_JUDGMENT = ("INSERT INTO judgments (session_token, trial, idempotency_key, judged_fake, measured_ms, reaction_ms, "
                   "refresh_interval_ms) VALUES (?, ?, ?, ?, ?, ?, ?)")


def is_url(db: str) -> bool:
    """--db names a database URL (for the ORM app) rather than a SQLite file."""
    return "://" in db


def create_schema(db: str) -> None:
    if is_url(db):  # the mapped class's own table: the same columns as SCHEMA
        engine = create_engine(db)
        try:
            _Base.metadata.create_all(engine)
        finally:
            engine.dispose()
        return
    with sqlite3.connect(db) as conn:
        for pragma in PRAGMAS:
            conn.execute(pragma)
        conn.execute(SCHEMA)
        conn.execute(BLOCKS_SCHEMA)


def _image_route(app: Flask, images: Path) -> None:
    @app.get("/img/<name>")
    def image(name: str):
        path = images / name
        if "/" in name or not path.is_file():
            abort(404)
        response = Response(path.read_bytes(), mimetype="image/png")
        response.headers["Cache-Control"] = "private, no-store"
        return response

    @app.get("/health")
    def health():
        return "ok"


def sqlite3_app(db_path: str, images: Path) -> Flask:
    app = Flask("bare_sqlite3")
    local = threading.local()

    def connection() -> sqlite3.Connection:
        conn = getattr(local, "conn", None)
        if conn is None:
            conn = local.conn = sqlite3.connect(db_path, timeout=10, check_same_thread=False)
            for pragma in PRAGMAS:
                conn.execute(pragma)
        return conn

    @app.post("/answer/<token>")
    def answer(token: str):
        body = request.get_json()
        conn = connection()
        with conn:  # commits
            cursor = conn.execute(INSERT_JUDGMENT, _judgment_values(token, body))
        return jsonify(recorded=True, id=cursor.lastrowid), 201

    configs = procedures()

    @app.post("/timed-answer/<procedure>/<token>")
    def timed_answer(procedure: str, token: str):
        config = configs.get(procedure) or abort(404)
        body = request.get_json()
        conn = connection()
        with conn:  # commits
            row = conn.execute("SELECT state FROM blocks WHERE token = ?", (token,)).fetchone()
            state = adaptive.block_advance(config, json.loads(row[0]) if row else adaptive.block_start(config),
                                           body["response"] == "fake")
            conn.execute("INSERT INTO blocks (token, state) VALUES (?, ?) ON CONFLICT (token) DO UPDATE SET state = "
                         "excluded.state", (token, json.dumps(state)))
            cursor = conn.execute(INSERT_JUDGMENT, _judgment_values(token, body))
        return jsonify(recorded=True, id=cursor.lastrowid, exposure_ms=adaptive.block_exposure(config, state)), 201

    _image_route(app, images)
    return app


class _Base(DeclarativeBase):
    pass


class BareJudgment(_Base):
    __tablename__ = "judgments"
    id: Mapped[int] = mapped_column(primary_key=True)
    session_token: Mapped[str] = mapped_column(String)
    trial: Mapped[str] = mapped_column(String)
    idempotency_key: Mapped[str] = mapped_column(String, unique=True)
    judged_fake: Mapped[bool] = mapped_column(Boolean)
    measured_ms: Mapped[Optional[float]] = mapped_column(Float)
    reaction_ms: Mapped[Optional[float]] = mapped_column(Float)
    refresh_interval_ms: Mapped[Optional[float]] = mapped_column(Float)


class BareBlock(_Base):
    __tablename__ = "blocks"
    token: Mapped[str] = mapped_column(String, primary_key=True)
    state: Mapped[dict] = mapped_column(JSON)


def _orm_engine(db: str) -> Engine:
    """A SQLite file with hype.db's pragmas, or a URL with hype.db's server settings (no pre-ping)."""
    if is_url(db):
        return create_engine(db, pool_pre_ping=False)
    engine = create_engine(f"sqlite:///{db}", connect_args={"timeout": 10})

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_conn, _record) -> None:
        cursor = dbapi_conn.cursor()
        for pragma in PRAGMAS:
            cursor.execute(pragma)
        cursor.close()

    return engine


def _bare_judgment(token: str, body: dict) -> BareJudgment:
    return BareJudgment(session_token=token, trial=body["trial"], idempotency_key=body["idempotency_key"],
                        judged_fake=body["response"] == "fake", measured_ms=body.get("measured_ms"),
                        reaction_ms=body.get("reaction_ms"), refresh_interval_ms=body.get("refresh_interval_ms"))


def orm_app(db: str, images: Path) -> Flask:
    engine = _orm_engine(db)

    app = Flask("bare_orm")

    @app.post("/answer/<token>")
    def answer(token: str):
        body = request.get_json()
        with Session(engine, expire_on_commit=False) as session:
            row = _bare_judgment(token, body)
            session.add(row)
            session.commit()
            return jsonify(recorded=True, id=row.id), 201

    configs = procedures()

    @app.post("/timed-answer/<procedure>/<token>")
    def timed_answer(procedure: str, token: str):
        config = configs.get(procedure) or abort(404)
        body = request.get_json()
        with Session(engine, expire_on_commit=False) as session:
            block = session.get(BareBlock, token)
            if block is None:
                block = BareBlock(token=token, state=adaptive.block_start(config))
                session.add(block)
            block.state = adaptive.block_advance(config, block.state, body["response"] == "fake")
            row = _bare_judgment(token, body)
            session.add(row)
            session.commit()
            return jsonify(recorded=True, id=row.id, exposure_ms=adaptive.block_exposure(config, block.state)), 201

    _image_route(app, images)
    return app


def wsgi_app(_db_path: str, _images: Path):
    headers = [("Content-Type", "image/png"), ("Content-Length", "0"), ("Cache-Control", "private, no-store"),
               ("X-Accel-Redirect", "/_hype_served/00/00.png")]

    def app(environ, start_response):
        start_response("200 OK", headers)
        return [b""]

    return app


APPS = {"sqlite3": sqlite3_app, "orm": orm_app, "wsgi": wsgi_app}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("kind", choices=sorted(APPS))
    parser.add_argument("--db", required=True, help="a SQLite file, or (orm only) a database URL")
    parser.add_argument("--images", type=Path, required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--worker-class", choices=["sync", "gthread"], default="gthread")
    args = parser.parse_args()
    if is_url(args.db) and args.kind != "orm":
        parser.error("a database URL is for the orm app only")
    create_schema(args.db)

    from gunicorn.app.base import BaseApplication

    class _Gunicorn(BaseApplication):  # the settings hype.serving gives gunicorn
        def load_config(self) -> None:
            self.cfg.set("bind", f"127.0.0.1:{args.port}")
            self.cfg.set("workers", args.workers)
            self.cfg.set("worker_class", args.worker_class)
            self.cfg.set("threads", args.threads if args.worker_class == "gthread" else 1)
            self.cfg.set("timeout", 60)
            self.cfg.set("graceful_timeout", 10)

        def load(self):
            return APPS[args.kind](args.db, args.images)

    _Gunicorn().run()


if __name__ == "__main__":
    main()
