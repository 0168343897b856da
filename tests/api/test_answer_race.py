"""Two answers of one session at once: the usual answer reads the session, its trials and its staircase
in one statement (hype.answer_rows), and on PostgreSQL the rows beside the locked session row come from
the snapshot taken before the lock was granted. Held back by a lock the test takes, two answers to the
current trial start together; whichever runs second has read the trial as unanswered. Its INSERT must
collide, and the request must end as the ORM path says: a replay for the same key, a refusal for
another, and the trial recorded once with the staircase moved once."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import select

from apihelpers import Worker, count_judgments, faithful_timing, new_key
from hype.models import Assignment, StaircaseRecord, Trial

pytestmark = pytest.mark.db


def _hold_the_session(engine, token: str):
    """A transaction that keeps both answers waiting: the session row locked (PostgreSQL), or SQLite's
    write lock. Returns the connection; its rollback lets them go."""
    connection = engine.raw_connection()
    cursor = connection.cursor()
    if engine.dialect.name == "postgresql":
        cursor.execute("SELECT id FROM assignments WHERE token = %s FOR UPDATE", (token,))
    else:
        connection.driver_connection.isolation_level = None
        cursor.execute("BEGIN IMMEDIATE")
    return connection


@pytest.mark.parametrize("same_key", [True, False], ids=["retried", "two-keys"])
def test_two_answers_at_once_record_the_trial_once(make_study, app, engine, session, oracle, same_key):
    study = make_study("hype-time", settings={"qualification": {"enabled": False},
                                              "time": {"n_blocks": 1, "trials_per_block": 10}})
    w = Worker(app, study.slug, {"PROLIFIC_PID": f"race-{same_key}", "STUDY_ID": "s", "SESSION_ID": "x"})
    w.start()
    state = w.trial()
    for _ in range(3):  # into the block, so the answer moves a staircase with history
        reply = w.answer(state["trial"]["id"], oracle(state["trial"]["id"]), timing=faithful_timing(state["trial"]))
        assert reply.status_code == 201
        state = reply.get_json()["next"]
    trial = state["trial"]
    assert trial["phase"] == "task" and trial["timed"]
    session.rollback()
    assignment = session.scalar(select(Assignment).where(Assignment.token == w.token))
    before = session.scalar(select(StaircaseRecord.state).where(StaircaseRecord.assignment_id == assignment.id))
    truth = oracle(trial["id"])
    keys = [new_key()] * 2 if same_key else [new_key(), new_key()]
    replies: list = [None, None]
    held = _hold_the_session(engine, w.token)
    try:
        def post(i: int) -> None:
            client = app.test_client()
            body = {"trial": trial["id"], "response": truth, "idempotency_key": keys[i], **faithful_timing(trial)}
            replies[i] = client.post(f"/api/w/{w.token}/answers", json=body)

        threads = [threading.Thread(target=post, args=(i,)) for i in range(2)]
        for thread in threads:
            thread.start()
        threads[0].join(0.5)
        threads[1].join(0.5)
        assert all(thread.is_alive() for thread in threads), "the answers did not wait for the held session"
    finally:
        held.rollback()
        held.close()
    for thread in threads:
        thread.join(30)
    statuses = sorted(reply.status_code for reply in replies)
    assert statuses == ([200, 201] if same_key else [201, 409]), [r.get_data(as_text=True) for r in replies]
    session.rollback()
    trial_id = session.scalar(select(Trial.id).where(Trial.image_token == trial["id"]))
    assert count_judgments(session, trial_id=trial_id) == 1
    after = session.scalar(select(StaircaseRecord.state).where(StaircaseRecord.assignment_id == assignment.id))
    assert len(after["responses"]) == len(before["responses"]) + 1
    # and both replies that took the answer send the worker on to the next trial
    followed = [r.get_json()["next"]["trial"]["id"] for r in replies if r.status_code in (200, 201)]
    assert all(t != trial["id"] for t in followed)
