"""Two answers of one session at once: the usual answer reads the session, its trials and its staircase
in one statement and locks nothing (hype.answer_rows); the judgment's unique trial and key are what
keep both from taking effect. Held back by the test (SQLite: its write lock; PostgreSQL: an uncommitted
judgment for the same trial, which both INSERTs wait on), two answers to the current trial have both
read it as unanswered. Whichever writes second must collide, and the request must end as the ORM path
says: a replay for the same key, a refusal for another, the trial recorded once, the staircase moved
once."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import select

from apihelpers import Worker, count_judgments, faithful_timing, new_key
from hype.models import Assignment, StaircaseRecord, Trial

pytestmark = pytest.mark.db


def _hold_the_trial(engine, assignment_id: int, trial_id: int):
    """A transaction that keeps both answers' writes waiting, and its connection (rollback lets them go):
    SQLite's write lock, or on PostgreSQL an uncommitted judgment of the trial."""
    connection = engine.raw_connection()
    cursor = connection.cursor()
    if engine.dialect.name == "postgresql":
        cursor.execute(
            "INSERT INTO judgments (trial_id, assignment_id, idempotency_key, judged_fake, correct, focus_lost, flagged,"
            " received_at) VALUES (%s, %s, 'held-by-the-test', false, false, false, false, now())", (trial_id, assignment_id))
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
    trial_id = session.scalar(select(Trial.id).where(Trial.image_token == trial["id"]))
    keys = [new_key()] * 2 if same_key else [new_key(), new_key()]
    replies: list = [None, None]
    held = _hold_the_trial(engine, assignment.id, trial_id)
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
        assert all(thread.is_alive() for thread in threads), "the answers did not wait for the held trial"
    finally:
        held.rollback()
        held.invalidate()  # not back to the pool: the SQLite handle was switched to autocommit
    for thread in threads:
        thread.join(30)
    statuses = sorted(reply.status_code for reply in replies)
    assert statuses == ([200, 201] if same_key else [201, 409]), [r.get_data(as_text=True) for r in replies]
    session.rollback()
    assert count_judgments(session, trial_id=trial_id) == 1
    after = session.scalar(select(StaircaseRecord.state).where(StaircaseRecord.assignment_id == assignment.id))
    assert len(after["responses"]) == len(before["responses"]) + 1
    # and both replies that took the answer send the worker on to the next trial
    followed = [r.get_json()["next"]["trial"]["id"] for r in replies if r.status_code in (200, 201)]
    assert all(t != trial["id"] for t in followed)


def test_an_answer_does_not_wait_for_the_session_row(make_study, app, engine, session, oracle):
    """PostgreSQL: a request of the same session holding the session row (the ORM path's lock: an
    answer that ends a stage, the browser check, a replay) does not hold up the usual answer, even
    one due to note the worker's activity there: the judgment's foreign key only needs a key-share
    lock, and the note is skipped for this answer (made at the next), since waiting for the row while
    the holder waits for this answer's judgment would deadlock."""
    import datetime as dt

    from hype import recruitment

    if engine.dialect.name != "postgresql":
        pytest.skip("row locks are PostgreSQL's; SQLite has one writer at a time")
    study = make_study("hype-infinity", settings={"qualification": {"enabled": False}, "infinity": {"n_real": 10, "n_fake": 10}})
    w = Worker(app, study.slug, {"PROLIFIC_PID": "row-held", "STUDY_ID": "s", "SESSION_ID": "x"})
    w.start()
    state = w.trial()
    reply = w.answer(state["trial"]["id"], oracle(state["trial"]["id"]))
    assert reply.status_code == 201
    trial = reply.get_json()["next"]["trial"]
    session.rollback()
    assignment = session.scalar(select(Assignment).where(Assignment.token == w.token))
    noted = assignment.last_active_at - recruitment.TOUCH_EVERY - dt.timedelta(seconds=1)
    assignment.last_active_at = noted  # so this answer is due to note the activity
    session.commit()
    truth = oracle(trial["id"])
    holder = engine.raw_connection()
    replies: list = []
    try:
        from hype.sessions import _ASSIGNMENT_BY_TOKEN_FOR_UPDATE

        locking = str(_ASSIGNMENT_BY_TOKEN_FOR_UPDATE.compile(dialect=engine.dialect)).split("FOR ", 1)[1]
        holder.cursor().execute(f"SELECT id FROM assignments WHERE token = %s FOR {locking}", (w.token,))
        thread = threading.Thread(target=lambda: replies.append(w.answer(trial["id"], truth)))
        thread.start()
        thread.join(10)
        assert not thread.is_alive(), "the answer waited for the session row"
    finally:
        holder.rollback()
        holder.close()
    assert replies[0].status_code == 201, replies[0].get_data(as_text=True)
    session.rollback()
    assert session.get(Assignment, assignment.id).last_active_at == noted  # the note skipped, not waited for
