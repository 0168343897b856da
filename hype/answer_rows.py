"""The usual answer on Core rows: one read and (on PostgreSQL) one write, instead of the ORM's many.

Nearly every answer a worker sends is a fresh answer to the current trial of a session that goes on
after it. That one case is recorded here with Core statements compiled once and run on a DB-API
connection this path keeps (hype.direct_sql): plain tuples, no ORM session or objects, no pool checkout,
and as few round trips as the database allows (a read and a write on PostgreSQL, with BEGIN and
COMMIT), since on PostgreSQL each costs the app more CPU than the work it carries. Everything else (a
replay, any refusal, a session to mark abandoned, the last answer of a stage, which finishes it)
returns None with nothing written, and the caller runs hype.sessions.record_answer, which answers
exactly as it always has.

The study's settings come as their stored text, which is also the key of the parsed-settings cache:
a change made by any process is a new text, so no process can use stale settings, and the usual answer
neither decodes the JSON nor parses the settings.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import Any, NamedTuple

from sqlalchemy import Engine, Text, and_, bindparam, cast, or_, select, update
from sqlalchemy.engine import Dialect

from hype import adaptive, recruitment
from hype.models import Assignment, Judgment, StaircaseRecord, Study, Trial, utcnow
from hype.protocol import StudySettings
from hype.direct_sql import KeptConnections, direct
from hype.sessions import (
    IDEMPOTENCY_KEY_RE,
    INSERT_JUDGMENT,
    MIN_IDLE,
    PHASE_SPAN,
    SESSION_TOKEN_RE,
    SET_REQUESTED_MS,
    SET_STAIRCASE_STATE,
    TRIAL_STAGES,
    Answer,
    SessionError,
    is_timed,
    cached_phase_span,
    judgment_params,
    judgment_values,
)
from hype.studies import settings_from_text

log = logging.getLogger(__name__)

_A = Assignment.__table__.c
_T = Trial.__table__.c
_J = Judgment.__table__.c
_S = StaircaseRecord.__table__.c
_TRIAL_COLUMNS = (_T.id, _T.assignment_id, _T.phase, _T.block, _T.position, _T.is_fake, _T.is_catch, _T.image_token,
                  _T.requested_ms, _T.presentations)
_named = Trial.__table__.alias("named")  # the trial the answer names
_previous = Trial.__table__.alias("previous")  # the one before it in the plan
_previous_judgment = Judgment.__table__.alias("previous_judgment")
_key_judgment = Judgment.__table__.alias("key_judgment")  # the one the answer's idempotency key recorded

# The reads in one statement, every table reached through a unique index: the session row with its
# study's settings as stored text; whether the answer's idempotency key was used already; the plan's trial before the named one
# and whether it was answered; and one row for each of the named trial and the (up to) two after it in
# the session's stage (a plan numbers its trials 0, 1, 2, ...), each with its judgment, and the named
# trial's and the next trial's block's staircase rows (each once: a staircase's state is a JSON document
# of up to a few kilobytes, decoded for every copy).
# Whether the named trial is the current one follows without scanning the phase: answers fill a phase
# in plan order (each must name the first unanswered trial), so a trial is the current one exactly when
# it is unanswered and the trial before it was answered, or it starts its phase.
# Nothing is locked, and on SQLite (pysqlite begins a transaction only before a write) the read is not
# even in the write's transaction: what keeps two answers of one session from both taking effect is
# the judgment's unique trial_id and idempotency_key. A concurrent answer to the same
# trial makes this one's INSERT fail (on PostgreSQL it waits for the other's commit first; SQLite has
# one writer at a time), and the statement that fails carries the staircase and exposure updates too,
# so nothing of it stays; the ORM path then answers as a replay or a refusal. An answer to any other
# trial is refused by the order check. The session row FOR UPDATE, as the ORM path takes it, cost
# PostgreSQL a WAL-logged row lock and the app 0.1-0.2 ms an answer (experiments/serving.md).
ANSWER_READS = (
    select(_A.id, _A.stage, _A.study_id, _A.model_id, _A.token, _A.refresh_interval_ms, _A.last_active_at,
           cast(Study.__table__.c.settings, Text).label("settings_text"),
           select(_key_judgment.c.trial_id)
           .where(_key_judgment.c.idempotency_key == cast(_A.id, Text) + ":" + bindparam("key"))
           .scalar_subquery().label("key_trial_id"),
           _previous.c.phase.label("previous_phase"), _previous_judgment.c.id.label("previous_judgment_id"),
           *(c.label(f"t_{c.name}") for c in _TRIAL_COLUMNS), _J.id.label("t_judgment_id"),
           _S.id.label("s_id"), cast(_S.config, Text).label("s_config"), _S.state.label("s_state"))
    .select_from(
        Assignment.__table__.join(Study.__table__, Study.__table__.c.id == _A.study_id)
        .join(_named, and_(_named.c.image_token == bindparam("trial_token"), _named.c.assignment_id == _A.id))
        .outerjoin(_previous, and_(_previous.c.assignment_id == _A.id, _previous.c.position == _named.c.position - 1))
        .outerjoin(_previous_judgment, _previous_judgment.c.trial_id == _previous.c.id)
        .join(Trial.__table__, and_(_T.assignment_id == _A.id, _T.phase == _A.stage,
                                    _T.position.between(_named.c.position, _named.c.position + 2)))
        .outerjoin(Judgment.__table__, _J.trial_id == _T.id)
        .outerjoin(StaircaseRecord.__table__, and_(_S.assignment_id == _A.id, _S.block == _T.block, or_(
            _T.position == _named.c.position,
            and_(_T.position == _named.c.position + 1, _T.block != _named.c.block)))))
    .where(_A.token == bindparam("token"))
    .order_by(_T.position)
)
# Where each part of an ANSWER_READS row is.
_SETTINGS, _KEY_TRIAL, _PREVIOUS_PHASE, _PREVIOUS_JUDGMENT = 7, 8, 9, 10
_TRIAL_AT = 11
_TRIAL_END = _TRIAL_AT + len(_TRIAL_COLUMNS)
_TRIAL_JUDGMENT, _STAIRCASE_ID, _STAIRCASE_CONFIG, _STAIRCASE_STATE = _TRIAL_END, _TRIAL_END + 1, _TRIAL_END + 2, _TRIAL_END + 3
_BLOCK = _TRIAL_AT + 3

# The answer's writes are hype.sessions' INSERT_JUDGMENT, SET_STAIRCASE_STATE and SET_REQUESTED_MS (the
# ORM path's too), and this one: the session's last activity, unless another transaction holds its row
# (PostgreSQL; SQLite has no row locks): the ORM path locks the session row first and may then wait for this answer's judgment (a
# duplicate racing it), so waiting here for that row would deadlock. A skipped note is written at the
# next answer (it is at most a minute, or a tenth of the idle timeout, behind).
_locked_session = Assignment.__table__.alias("locked_session")
SET_LAST_ACTIVE = (update(Assignment.__table__)
                   .where(_A.id == select(_locked_session.c.id).where(_locked_session.c.id == bindparam("a_id"))
                          .with_for_update(skip_locked=True, key_share=True).scalar_subquery())
                   .values(last_active_at=bindparam("a_now")))


class AssignmentRow(NamedTuple):
    """The session as the answer path reads it (the attribute names of Assignment)."""

    id: int
    stage: str
    study_id: int
    model_id: int
    token: str
    refresh_interval_ms: float | None
    last_active_at: dt.datetime | None


class TrialRow(NamedTuple):
    """A trial as the answer path reads it (the attribute names of Trial)."""

    id: int
    assignment_id: int
    phase: str
    block: int
    position: int
    is_fake: bool
    is_catch: bool
    image_token: str
    requested_ms: float | None
    presentations: int


class StaircaseRow(NamedTuple):
    id: int
    config: adaptive.BlockConfig  # parsed once per process from its stored text (adaptive.block_config_from_text)
    state: dict[str, Any]


@dataclass(frozen=True)
class RowAnswer:
    """An answer recorded by record_answer_rows: the session and the next trials as rows (with the
    attribute names of Assignment and Trial), the next trial's exposure as served."""

    assignment: AssignmentRow
    settings: StudySettings
    feedback_correct: bool | None
    next_trial: TrialRow
    exposure: float | None
    after_next: TrialRow | None


def record_answer_rows(connections: KeptConnections, token: str, answer: Answer) -> RowAnswer | None:
    """hype.sessions.record_answer for the usual answer, committed; or None, with nothing written,
    for anything else (the caller then runs the ORM path, which answers as it always has). The same
    guarantees: recorded once and in order (the judgment's unique trial and key, see ANSWER_READS),
    every read before the first write, and the judgment, the staircase update and the next trial's
    exposure in one transaction (one statement on PostgreSQL).

    On a connection of ``connections`` (no ORM session, no pool checkout): a database error (a
    concurrent answer of the same session taking the trial or the key first, a lost connection)
    rolls back and returns None, and the ORM path, with its retries, finds what happened."""
    if not isinstance(token, str) or not SESSION_TOKEN_RE.fullmatch(token):
        return None
    if not IDEMPOTENCY_KEY_RE.fullmatch(answer.idempotency_key or ""):
        return None
    engine = connections.engine
    try:
        connection = connections.take()
    except Exception:  # noqa: BLE001 - no connection now: the ORM path retries and reports
        return None
    try:
        cursor = connection.cursor()
        try:
            recorded = _record(engine, cursor, token, answer)
        finally:
            cursor.close()
        if recorded is None:
            connection.rollback()  # nothing written: ends the read's transaction (PostgreSQL)
        else:
            connection.commit()
    except engine.dialect.loaded_dbapi.Error as exc:
        if not isinstance(exc, engine.dialect.loaded_dbapi.IntegrityError):  # a race is expected; this is not
            log.warning("the usual answer fell back to the ORM path: %s: %s", type(exc).__name__, exc)
        _roll_back(connections, connection)
        return None
    except BaseException:
        _roll_back(connections, connection)
        raise
    connections.give(connection)
    return recorded


def _roll_back(connections: KeptConnections, connection: Any) -> None:
    """Undo and keep the connection (a refused INSERT leaves it usable), or drop it if that fails too
    (a lost connection)."""
    try:
        connection.rollback()
    except Exception:  # noqa: BLE001
        connections.discard(connection)
    else:
        connections.give(connection)


def _record(engine: Engine, cursor: Any, token: str, answer: Answer) -> RowAnswer | None:
    dialect = engine.dialect
    rows = direct(dialect, ANSWER_READS).rows(
        cursor, token=token, key=answer.idempotency_key, trial_token=answer.trial_token)
    if len(rows) < 2:
        return None  # not this session's trial in its stage, or the stage ends with it: the ORM path says which
    first = rows[0]
    a = AssignmentRow._make(first[:7])
    trial = TrialRow._make(first[_TRIAL_AT:_TRIAL_END])
    if (a.stage not in TRIAL_STAGES or first[_KEY_TRIAL] is not None or trial.image_token != answer.trial_token
            or first[_TRIAL_JUDGMENT] is not None):
        return None  # not answering now, a replay or a reused key, a trial of another stage, or answered
    if first[_PREVIOUS_PHASE] == trial.phase:
        if first[_PREVIOUS_JUDGMENT] is None:
            return None  # out of order
    else:  # the first of its phase, if the phase is one run of positions (plan_session lays them out so)
        start, last, total = cached_phase_span(engine, a.id, trial.phase, lambda: direct(dialect, PHASE_SPAN).rows(
            cursor, assignment_id=a.id, phase=trial.phase)[0])
        if trial.position != start or last - start + 1 != total:
            return None
    settings = settings_from_text(first[_SETTINGS])
    now = utcnow()
    if now - recruitment.as_utc(a.last_active_at) > MIN_IDLE and recruitment.is_idle(a, settings, now):
        return None  # check_resumable marks it abandoned
    timed = is_timed(settings, trial)
    if timed and trial.requested_ms is None:
        return None
    trials = [trial] + [TrialRow._make(row[_TRIAL_AT:_TRIAL_END]) for row in rows[1:]]
    next_trial = trials[1]
    records = {row[_BLOCK]: StaircaseRow(row[_STAIRCASE_ID], adaptive.block_config_from_text(row[_STAIRCASE_CONFIG]),
                                         row[_STAIRCASE_STATE])
               for row in rows[:2] if row[_STAIRCASE_ID] is not None}

    def record_of(block: int) -> StaircaseRow:
        if block not in records:  # pragma: no cover - created with the plan; missing means a corrupted session
            raise SessionError("This session's staircase is missing.", status=500, code="internal")
        return records[block]

    values = judgment_values(a, f"{a.id}:{answer.idempotency_key}", trial, answer, settings, timed)
    touched = (a.id, now) if recruitment.touch_due(a.last_active_at, settings, now) else None
    advanced = None
    if timed and not trial.is_catch:  # a catch trial never moves the staircase
        record = record_of(trial.block)
        advanced = (record.id, adaptive.block_advance(record.config, record.state, values["correct"]))
    exposure = next_trial.requested_ms
    served = None
    if is_timed(settings, next_trial) and next_trial.requested_ms is None:
        if next_trial.is_catch:
            exposure = settings.time.max_ms
        elif advanced is not None and next_trial.block == trial.block:
            # the state block_advance just made: its intensity is the next exposure, no need to check it again
            exposure = float(advanced[1]["intensity"])
        else:
            record = record_of(next_trial.block)
            exposure = adaptive.block_exposure(record.config, record.state)
        served = (next_trial.id, exposure)
    write_answer(dialect, cursor, values, touched=touched, advanced=advanced, served=served)
    return RowAnswer(a, settings, values["correct"] if timed else None, next_trial, exposure,
                     trials[2] if len(trials) > 2 else None)


def write_answer(dialect: Dialect, cursor: Any, judgment: dict[str, Any], *, touched: tuple[int, dt.datetime] | None,
                 advanced: tuple[int, dict[str, Any]] | None, served: tuple[int, float] | None) -> None:
    """The answer's writes: the judgment; the session's last activity (assignment id, time), the
    staircase's new state (record id, state) and the next trial's exposure (trial id, ms) when given.
    On PostgreSQL one statement (the others as data-modifying WITH clauses of the INSERT), one round
    trip; SQLite has no such clauses, and a statement there is a function call, not a round trip."""
    params = judgment_params(judgment, utcnow())
    if touched:
        params.update(a_id=touched[0], a_now=touched[1])
    if advanced:
        params.update(s_id=advanced[0], s_state=advanced[1], s_updated_at=params["j_received_at"])
    if served:
        params.update(r_id=served[0], r_ms=served[1])
    if dialect.name == "postgresql":
        direct(dialect, _combined_write(bool(touched), bool(advanced), bool(served))).execute(cursor, **params)
        return
    for statement, wanted in ((INSERT_JUDGMENT, True), (SET_LAST_ACTIVE, touched), (SET_STAIRCASE_STATE, advanced),
                              (SET_REQUESTED_MS, served)):
        if wanted:
            direct(dialect, statement).execute(cursor, **params)


_combined_writes: dict[tuple[bool, bool, bool], Any] = {}


def _combined_write(touched: bool, advanced: bool, served: bool) -> Any:
    """INSERT_JUDGMENT with the wanted updates as WITH clauses, built once per combination."""
    key = (touched, advanced, served)
    statement = _combined_writes.get(key)
    if statement is None:
        clauses = [write.returning(table.c.id).cte(name) for write, table, name, wanted in (
            (SET_LAST_ACTIVE, Assignment.__table__, "touched", touched),
            (SET_STAIRCASE_STATE, StaircaseRecord.__table__, "advanced", advanced),
            (SET_REQUESTED_MS, Trial.__table__, "served", served)) if wanted]
        statement = _combined_writes[key] = INSERT_JUDGMENT.add_cte(*clauses) if clauses else INSERT_JUDGMENT
    return statement
