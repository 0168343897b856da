"""The answer path's shortcuts give what the plain queries give: progress taken from the current
trial's position (no COUNT) equals the count of stored answers, at every step of both phases; the usual
answer goes through the Core-row path, and settings it caches per process follow every change."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from apihelpers import Worker, faithful_timing
from hype.models import Assignment, Judgment, Study, Trial

pytestmark = pytest.mark.db


def _counted(session, token: str, phase: str) -> dict[str, int]:
    session.rollback()
    rows = select(func.count(Trial.id), func.count(Judgment.id)).outerjoin(Judgment, Judgment.trial_id == Trial.id).join(
        Assignment, Assignment.id == Trial.assignment_id).where(Assignment.token == token, Trial.phase == phase)
    total, done = session.execute(rows).one()
    return {"done": done, "total": total}


@pytest.mark.parametrize("mode", ["hype-infinity", "hype-time"])
def test_progress_from_positions_equals_the_count(make_study, app, session, oracle, mode):
    study = make_study(mode)
    w = Worker(app, study.slug, {"PROLIFIC_PID": f"p-{mode}", "STUDY_ID": "s", "SESSION_ID": "x"})
    w.start()
    state = w.trial()
    seen = 0
    while state["trial"] is not None:
        phase = state["trial"]["phase"]
        assert state["progress"] == _counted(session, w.token, phase)
        assert w.state()["progress"] == state["progress"]
        reply = w.answer(state["trial"]["id"], oracle(state["trial"]["id"]), timing=faithful_timing(state["trial"]))
        assert reply.status_code == 201, reply.get_data(as_text=True)
        state = reply.get_json()["next"]
        seen += 1
    assert seen >= 10 and state["stage"] in ("completed", "failed")


@pytest.mark.parametrize("mode", ["hype-infinity", "hype-time"])
def test_only_a_stages_last_answer_leaves_the_row_path(make_study, app, oracle, monkeypatch, mode):
    """Every answer but the one that ends a stage (qualification's verdict, the task's completion) is
    recorded by record_answer_rows; the ORM path would be correct too, but 2-3 times the CPU."""
    import hype.web.worker_api as worker_api

    orm_answers = []
    original = worker_api.record_answer
    monkeypatch.setattr(worker_api, "record_answer",
                        lambda session, assignment, answer: orm_answers.append(assignment.stage) or original(session, assignment, answer))
    study = make_study(mode)
    w = Worker(app, study.slug, {"PROLIFIC_PID": f"rows-{mode}", "STUDY_ID": "s", "SESSION_ID": "x"})
    w.start()
    state, answers = w.trial(), 0
    while state["trial"] is not None:
        reply = w.answer(state["trial"]["id"], oracle(state["trial"]["id"]), timing=faithful_timing(state["trial"]))
        assert reply.status_code == 201, reply.get_data(as_text=True)
        state, answers = reply.get_json()["next"], answers + 1
    assert state["stage"] == "completed" and answers >= 10
    assert orm_answers == ["qualification", "task"]


def test_a_settings_change_by_another_process_reaches_the_next_answer(make_study, app, session, oracle):
    """The answer path keeps parsed settings per process, keyed by the stored text it reads with the
    session: a shorter idle timeout set elsewhere (another server process, the researcher's page)
    abandons an idle session at its next answer, as it would have without any cache."""
    import datetime as dt

    from hype.studies import update_settings

    study = make_study("hype-infinity")
    w = Worker(app, study.slug, {"PROLIFIC_PID": "settings-change", "STUDY_ID": "s", "SESSION_ID": "x"})
    w.start()
    state = w.trial()
    reply = w.answer(state["trial"]["id"], oracle(state["trial"]["id"]))  # settings now parsed and kept
    assert reply.status_code == 201
    state = reply.get_json()["next"]
    session.rollback()
    fresh = session.get(Study, study.id)
    assert update_settings(session, fresh, {"recruitment": {"idle_timeout_minutes": 2}})
    assignment = session.scalar(select(Assignment).where(Assignment.token == w.token))
    assignment.last_active_at = assignment.last_active_at - dt.timedelta(minutes=5)
    session.commit()
    reply = w.answer(state["trial"]["id"], oracle(state["trial"]["id"]))
    assert reply.status_code == 410 and reply.get_json()["error"] == "session-abandoned"


def test_the_sign_in_limiter_runs_for_sign_in_only(make_study, app, oracle, monkeypatch):
    """Flask-Limiter's hooks ran app-wide: every worker request resolved the view, the limits and a
    context only for the filter to skip them (55-65 us a request). They run for sign-in alone,
    and sign-in is still limited (tests/web/test_researcher_integrity.py)."""
    limiter = app.extensions["hype.limiter"]
    consulted = []
    original = limiter.identify_request
    monkeypatch.setattr(limiter, "identify_request", lambda: consulted.append(1) or original())
    study = make_study("hype-infinity")
    w = Worker(app, study.slug, {"PROLIFIC_PID": "limiter", "STUDY_ID": "s", "SESSION_ID": "x"})
    w.start()
    state = w.trial()
    for _ in range(3):
        reply = w.answer(state["trial"]["id"], oracle(state["trial"]["id"]), timing=faithful_timing(state["trial"]))
        assert reply.status_code == 201, reply.get_data(as_text=True)
        state = reply.get_json()["next"]
    assert consulted == []
    client = app.test_client()
    client.get("/login")
    client.post("/login", data={"email": "nobody@example.org", "password": "wrong"})
    assert consulted, "the sign-in view no longer consults the limiter"


def _statements_per_answer(app, make_study, oracle, monkeypatch, mode: str) -> list[list[str]]:
    """The statements each of a session's usual answers sends the database (first word of each, as the
    driver receives it), with BEGIN and COMMIT: SQLite's own trace; on PostgreSQL every
    psycopg cursor execute (SQLAlchemy's and direct ones alike) and the connection's commits."""
    from sqlalchemy import event

    engine = app.extensions["hype.engine"]
    sent: list[str] = []
    if engine.dialect.name == "sqlite":
        engine.pool.dispose()  # fresh connections, so the trace is set on every one
        event.listen(engine, "connect", lambda dbapi, _rec: dbapi.set_trace_callback(lambda sql: sent.append(sql)))
    else:
        import psycopg

        original_execute, original_commit = psycopg.Cursor.execute, psycopg.Connection.commit
        monkeypatch.setattr(psycopg.Cursor, "execute",
                            lambda self, query, *a, **k: sent.append(str(query)) or original_execute(self, query, *a, **k))
        monkeypatch.setattr(psycopg.Connection, "commit", lambda self: sent.append("COMMIT") or original_commit(self))
    study = make_study(mode)
    w = Worker(app, study.slug, {"PROLIFIC_PID": f"trips-{mode}", "STUDY_ID": "s", "SESSION_ID": "x"})
    w.start()
    state, answers = w.trial(), []
    for _ in range(6):
        truth = oracle(state["trial"]["id"])  # the test's own query, before counting
        sent.clear()
        reply = w.answer(state["trial"]["id"], truth, timing=faithful_timing(state["trial"]))
        assert reply.status_code == 201, reply.get_data(as_text=True)
        answers.append([sql.split()[0].upper() for sql in sent if sql.strip()])
        state = reply.get_json()["next"]
    return answers[1:]  # the first may read the phase's span, cached by the process after


@pytest.mark.parametrize("mode", ["hype-infinity", "hype-time"])
def test_the_usual_answer_reads_once_and_on_postgresql_writes_once(make_study, app, oracle, monkeypatch, mode):
    """The answer's reads are one statement (the session, its trial, the next two, the staircase);
    on PostgreSQL its writes are one more (the staircase and the next exposure as WITH clauses of the
    INSERT), so an answer costs PostgreSQL four round trips with BEGIN and COMMIT, the bare ORM insert's
    three plus the read. It was six (HYPE-infinity) and nine (HYPE-time): each round trip costs the
    app 0.1-0.2 ms of CPU (experiments/serving.md)."""
    for statements in _statements_per_answer(app, make_study, oracle, monkeypatch, mode):
        assert statements.count("SELECT") == 1, statements
        if app.extensions["hype.engine"].dialect.name == "postgresql":
            # psycopg sends BEGIN itself on the first execute: the read, the write, the commit
            assert statements in (["SELECT", "INSERT", "COMMIT"], ["SELECT", "WITH", "COMMIT"]), statements
        else:
            assert statements[0] == "SELECT" and statements[-1] == "COMMIT", statements


def test_an_answer_survives_its_kept_connection_dying(make_study, app, engine, session, oracle):
    """The usual answer runs on a DB-API connection the process keeps between requests
    (hype.answer_rows). When that connection has died in between (PostgreSQL restarted or cut it; here
    the server ends the backend, or the SQLite handle is closed), the answer is still recorded, once,
    through the ORM path, and the dead connection is dropped for a fresh one."""
    from sqlalchemy import text

    study = make_study("hype-infinity")
    w = Worker(app, study.slug, {"PROLIFIC_PID": "dead-connection", "STUDY_ID": "s", "SESSION_ID": "x"})
    w.start()
    state = w.trial()
    kept = app.extensions["hype.answer_connections"]
    reply = w.answer(state["trial"]["id"], oracle(state["trial"]["id"]))
    assert reply.status_code == 201 and len(kept.idle) == 1
    (dead,) = kept.idle
    if engine.dialect.name == "postgresql":
        cursor = dead.cursor()
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
        dead.rollback()
        with engine.connect() as other:
            other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    else:
        dead.driver_connection.close()
    for _ in range(2):  # the first on the dead connection, the second on its replacement
        state = reply.get_json()["next"]
        reply = w.answer(state["trial"]["id"], oracle(state["trial"]["id"]))
        assert reply.status_code == 201, reply.get_data(as_text=True)
        session.rollback()
        trial_id = session.scalar(select(Trial.id).where(Trial.image_token == state["trial"]["id"]))
        assert session.scalar(select(func.count()).select_from(Judgment).where(Judgment.trial_id == trial_id)) == 1
    assert len(kept.idle) == 1 and kept.idle[0] is not dead
