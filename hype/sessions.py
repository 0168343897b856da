"""A worker's session, server side: entry, stages, trials, answers, staircases, completion.

Everything a worker's browser can change goes through here, so the rules the protocol sets (one
task per worker, the server's trial order, exposures chosen by the server, answers recorded once)
are enforced in one place; the web views only translate HTTP to these calls and back. State lives in
the database, so a reload, a second tab or a restarted server resumes exactly where the worker was.
"""

from __future__ import annotations

import datetime as dt
import re
import secrets
import weakref
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Sequence

from sqlalchemy import ARRAY, Integer, bindparam, cast, func, insert, literal, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, aliased, joinedload
from sqlalchemy.orm.attributes import set_committed_value

from hype import adaptive, recruitment
from hype.design import plan_session
from hype.models import (
    ACTIVE_STAGES,
    FINISHED_STAGES,
    Assignment,
    GeneratorModel,
    Image,
    Judgment,
    Participant,
    StaircaseRecord,
    Study,
    Trial,
    utcnow,
)
from hype.platforms.codes import new_session_code
from hype.protocol import StudySettings
from hype.studies import catch_pool_ids, pool_ids, study_settings
from hype.timing import MAX_REFRESH_MS, MIN_REFRESH_MS, Presentation, presentation_flags

PLATFORMS = ("plain", "mturk", "prolific")
TRIAL_STAGES = ("qualification", "task")

# Room around the image the trial page needs (buttons, progress bar), in CSS pixels.
WINDOW_MARGIN_W = 40
WINDOW_MARGIN_H = 160

_SLUG_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,64}")
MTURK_PREVIEW = "ASSIGNMENT_ID_NOT_AVAILABLE"
_ID_PATTERN = re.compile(r"[A-Za-z0-9_.:@-]{1,200}")
IDEMPOTENCY_KEY_RE = re.compile(r"[A-Za-z0-9_-]{8,64}")
SESSION_TOKEN_RE = re.compile(r"[A-Za-z0-9_-]{20,128}")


# -- statements every worker request runs, built once (building one costs about as much as running it) --

_earlier = aliased(Trial)


def _first_open_position(assignment_id, stage):
    """Position of the first unanswered trial of ``stage`` in the assignment: the current trial."""
    return (
        select(func.min(_earlier.position))
        .outerjoin(Judgment, Judgment.trial_id == _earlier.id)
        .where(_earlier.assignment_id == assignment_id, _earlier.phase == stage, Judgment.id.is_(None))
        .scalar_subquery()
    )


_ASSIGNMENT_BY_TOKEN = (
    select(Assignment).options(joinedload(Assignment.study, innerjoin=True)).where(Assignment.token == bindparam("token"))
)
# Built once: with_for_update() makes a new statement, whose cache key is computed again on each use.
# FOR NO KEY UPDATE on PostgreSQL: it serialises the session's own requests as FOR UPDATE did, but lets
# through the key-share lock that the foreign key of a judgment being inserted takes on the session
# row, so the usual answer (hype.answer_rows, which locks nothing) never waits for these.
_ASSIGNMENT_BY_TOKEN_FOR_UPDATE = _ASSIGNMENT_BY_TOKEN.with_for_update(of=Assignment, key_share=True)
_CURRENT_TRIAL = (
    select(Trial)
    .outerjoin(Judgment, Judgment.trial_id == Trial.id)
    .where(Trial.assignment_id == bindparam("assignment_id"), Trial.phase == bindparam("phase"), Judgment.id.is_(None))
    .order_by(Trial.position)
    .limit(1)
)
_UPCOMING_TRIALS = (
    select(Trial)
    .where(Trial.assignment_id == bindparam("assignment_id"), Trial.phase == bindparam("phase"),
           Trial.position > bindparam("position"))
    .order_by(Trial.position)
    .limit(bindparam("n"))
)
_STAIRCASE = select(StaircaseRecord).where(
    StaircaseRecord.assignment_id == bindparam("assignment_id"), StaircaseRecord.block == bindparam("block")
)
_PROGRESS = (
    select(func.count(Trial.id), func.count(Judgment.id))
    .outerjoin(Judgment, Judgment.trial_id == Trial.id)
    .where(Trial.assignment_id == bindparam("assignment_id"), Trial.phase == bindparam("phase"))
)
# The trial an answer names, whose trial its key already recorded (if any) and the current position.
_ANSWER_TARGET = select(
    Trial,
    select(Judgment.trial_id).where(Judgment.idempotency_key == bindparam("key")).scalar_subquery(),
    _first_open_position(bindparam("assignment_id"), bindparam("stage")),
).options(joinedload(Trial.judgment)).where(Trial.image_token == bindparam("trial_token"))
# An image request: the trial (of this session only), its study's mode, its session's stage and
# current position, whether it was answered, and the file. One statement, so the check costs one
# round trip (hype.web.image_gate runs it without the ORM).
IMAGE_DELIVERY = (
    select(Trial.id, Study.mode, Trial.phase, Trial.position, Assignment.stage,
           _first_open_position(Trial.assignment_id, Assignment.stage).label("open_position"),
           Judgment.id.label("judgment_id"), Image.file_sha256)
    .join(Assignment, Assignment.id == Trial.assignment_id)
    .join(Study, Study.id == Assignment.study_id)
    .join(Image, Image.id == Trial.image_id)
    .outerjoin(Judgment, Judgment.trial_id == Trial.id)
    .where(Trial.image_token == bindparam("image_token"), Assignment.token == bindparam("token"))
)
COUNT_PRESENTATION = (
    update(Trial).where(Trial.id == bindparam("trial_id")).values(presentations=Trial.presentations + 1)
)
# The answer's writes as Core statements on the tables, every value a bound parameter (no column
# defaults to fill in at run time), for both the ORM path (on the session's connection: the ORM's
# bulk-insert and unit-of-work paths cost more than the statements) and hype.answer_rows (on a DB-API
# cursor, and on PostgreSQL as one statement: hence the prefixed names, which must not meet there).
_JUDGMENT_COLUMNS = tuple(c.name for c in Judgment.__table__.c if c.name != "id")
INSERT_JUDGMENT = insert(Judgment.__table__).values({name: bindparam(f"j_{name}", type_=Judgment.__table__.c[name].type)
                                                     for name in _JUDGMENT_COLUMNS})
SET_STAIRCASE_STATE = (update(StaircaseRecord.__table__).where(StaircaseRecord.__table__.c.id == bindparam("s_id"))
                       .values(state=bindparam("s_state", type_=StaircaseRecord.__table__.c.state.type),
                               updated_at=bindparam("s_updated_at")))
SET_REQUESTED_MS = (update(Trial.__table__).where(Trial.__table__.c.id == bindparam("r_id"))
                    .values(requested_ms=bindparam("r_ms")))


# A session's planned trials in one statement on PostgreSQL: an INSERT from unnest() of one array per
# column, whose text never changes (psycopg prepares it once). The ORM's add_all of the trials, or a
# multi-row VALUES whose text grows with the plan, cost 40-50% of a new session's CPU (experiments/
# serving.md, sixth pass). SQLite gets a plain executemany, a loop in C.
_PLAN_COLUMNS = ("phase", "block", "position", "image_id", "is_fake", "is_catch", "image_token")
_planned = func.unnest(*(cast(bindparam(name), ARRAY(Trial.__table__.c[name].type)) for name in _PLAN_COLUMNS)
                       ).table_valued(*_PLAN_COLUMNS).render_derived()
_PLAN_TRIALS_POSTGRES = insert(Trial.__table__).from_select(
    ["assignment_id", *_PLAN_COLUMNS, "presentations"],
    select(bindparam("assignment_id", type_=Integer), *(_planned.c[name] for name in _PLAN_COLUMNS), literal(0)))


def judgment_params(values: dict[str, Any], received_at: dt.datetime) -> dict[str, Any]:
    """INSERT_JUDGMENT's parameters for judgment_values' row."""
    params = {f"j_{name}": value for name, value in values.items()}
    params["j_received_at"] = received_at
    return params


_MASK_COUNT = select(func.count()).where(Image.study_id == bindparam("study_id"), Image.pool == "mask")

class SessionError(Exception):
    """A request the session cannot honour. ``status`` is the HTTP status the web layer answers with.
    ``keep_changes``: what the request changed before the refusal is committed, not rolled back."""

    status = 400
    keep_changes = False

    def __init__(self, message: str, *, status: int | None = None, code: str = "bad-request"):
        super().__init__(message)
        self.message = message
        self.code = code
        if status is not None:
            self.status = status


class SessionAbandoned(SessionError):
    """The worker came back to a session the idle timeout has ended. Marking it abandoned is kept."""

    status = 410
    keep_changes = True

    def __init__(self, settings: StudySettings):
        minutes = settings.recruitment.idle_timeout_minutes
        super().__init__(
            f"This session was closed because nothing happened in it for more than {minutes:g} minutes, so it "
            "cannot be resumed, and your place has gone to another participant. If a crowd platform sent you "
            "here, please return the task there.",
            code="session-abandoned",
        )


# -- identity ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Identity:
    """Who is entering, as the crowd platform named them."""

    platform: str
    worker_id: str
    platform_ids: dict[str, str] = field(default_factory=dict)


def _clean_id(value: Any, name: str) -> str:
    if not isinstance(value, str) or not _ID_PATTERN.fullmatch(value):
        raise SessionError(f"{name} must be 1-200 letters, digits or _ . : @ - (got {str(value)[:40]!r})", code="bad-identity")
    return value


def published_study(session: Session, slug: str) -> Study:
    """The study a worker link names, if it takes workers (published or closed; never a draft).
    The slug is checked before the DB is asked: PostgreSQL refuses NUL bytes with an error."""
    study = session.scalar(select(Study).where(Study.slug == slug)) if _SLUG_PATTERN.fullmatch(slug) else None
    if study is None or study.status == "draft":
        raise SessionError("This study link is not valid.", status=404, code="unknown-study")
    return study


def is_mturk_preview(params: dict[str, Any]) -> bool:
    return params.get("assignmentId") == MTURK_PREVIEW


def is_plain_link(params: dict[str, Any]) -> bool:
    """No crowd platform's parameters: the caller identifies the browser by an anonymous id."""
    return not any(k in params for k in ("workerId", "assignmentId", "PROLIFIC_PID"))


def identity_from_params(params: dict[str, Any], anonymous_id: str | None) -> Identity:
    """Reads the query parameters MTurk's ExternalQuestion and Prolific append to a study link.

    MTurk: assignmentId, hitId, workerId, turkSubmitTo. Prolific: PROLIFIC_PID, STUDY_ID, SESSION_ID.
    Anything else is a plain link, identified by the anonymous id the caller keeps for the browser.
    """
    if "workerId" in params or "assignmentId" in params:
        submit_to = params.get("turkSubmitTo", "")
        if not _valid_turk_submit(submit_to):
            raise SessionError("turkSubmitTo must be https://www.mturk.com or https://workersandbox.mturk.com", code="bad-identity")
        ids = {
            "assignmentId": _clean_id(params.get("assignmentId"), "assignmentId"),
            "hitId": _clean_id(params.get("hitId"), "hitId"),
            "turkSubmitTo": submit_to.rstrip("/"),
        }
        return Identity("mturk", _clean_id(params.get("workerId"), "workerId"), ids)
    if "PROLIFIC_PID" in params:
        ids = {k: _clean_id(params.get(k), k) for k in ("STUDY_ID", "SESSION_ID")}
        return Identity("prolific", _clean_id(params.get("PROLIFIC_PID"), "PROLIFIC_PID"), ids)
    if anonymous_id is None:
        raise SessionError("a plain link needs an anonymous id", code="bad-identity")
    return Identity("plain", _clean_id(anonymous_id, "anonymous id"))


def _valid_turk_submit(url: Any) -> bool:
    """Only Amazon's two endpoints: anything else would turn the completion form into an open redirect."""
    return isinstance(url, str) and url.rstrip("/") in ("https://www.mturk.com", "https://workersandbox.mturk.com")


def new_anonymous_id() -> str:
    return f"anon-{secrets.token_hex(8)}"


# -- entry ------------------------------------------------------------------------------------------


def find_assignment(session: Session, study: Study, identity: Identity) -> Assignment | None:
    return session.scalar(
        select(Assignment)
        .join(Participant)
        .where(
            Participant.study_id == study.id,
            Participant.platform == identity.platform,
            Participant.worker_id == identity.worker_id,
        )
    )


@dataclass(frozen=True)
class Entry:
    assignment: Assignment
    created: bool


def enter(session: Session, study: Study, identity: Identity, user_agent: str | None = None) -> Entry:
    """Start (after consent) or resume this worker's one task in the study.

    A finished worker is refused (between-subjects: one task per worker id); an unfinished one gets
    their existing session back, which is what makes reloads and lost tabs harmless.
    """
    existing = find_assignment(session, study, identity)
    settings = study_settings(study)
    if existing is not None:
        check_resumable(existing, settings)
        if existing.stage in FINISHED_STAGES:
            raise SessionError("You have already taken part in this study; each person can take part once.", status=409, code="already-participated")
        if identity.platform_ids and existing.participant.platform_ids != identity.platform_ids:
            # Back under a new MTurk assignment (HIT returned and accepted again): the completion
            # form must submit to the assignment that is live now.
            existing.participant.platform_ids = dict(identity.platform_ids)
        recruitment.touch(existing, settings)
        return Entry(existing, created=False)
    if study.status != "published":
        raise SessionError("This study is not taking new participants.", status=409, code="study-closed")
    model = _pick_model(session, study)
    participant = Participant(
        study_id=study.id,
        platform=identity.platform,
        worker_id=identity.worker_id,
        platform_ids=dict(identity.platform_ids),
        user_agent=(user_agent or "")[:500] or None,
    )
    assignment = Assignment(
        participant=participant,
        study_id=study.id,
        model_id=model.id,
        token=secrets.token_urlsafe(32),
        stage="instructions",
        draw_key=secrets.randbelow(2**31),
    )
    try:
        with session.begin_nested():
            session.add(participant)
            session.add(assignment)
            session.flush()
    except IntegrityError:
        # The same worker entered twice at once (double click, two tabs): the other request won.
        existing = find_assignment(session, study, identity)
        if existing is None:
            raise
        return Entry(existing, created=False)
    _plan(session, study, settings, assignment)
    return Entry(assignment, created=True)


STUDY_FULL_MESSAGE = "This study has all the participants it needs. Thank you for your interest."


def study_is_full(session: Session, study: Study, settings: StudySettings | None = None) -> bool:
    """Whether a new worker would be turned away: the consent page says so before anyone agrees."""
    return bool(study.models) and not recruitment.open_models(recruitment.model_slots(session, study))


def _pick_model(session: Session, study: Study) -> GeneratorModel:
    """The open model with the fewest evaluators that count (hype.recruitment.choose_model).

    A study whose every model already has its valid evaluators takes nobody more: extra evaluators
    cost the researcher money and change nothing the protocol reports. Sessions the idle timeout has
    abandoned hold no slot; they are marked so here, where a write happens anyway.
    """
    if not study.models:
        raise SessionError("This study has no images to judge yet.", status=409, code="study-empty")
    slots = recruitment.model_slots(session, study)
    if any(s.idle_unmarked for s in slots):
        recruitment.mark_idle_abandoned(session, study)
    chosen = recruitment.choose_model(slots)
    if chosen is None:
        raise SessionError(STUDY_FULL_MESSAGE, status=409, code="study-full")
    return next(m for m in study.models if m.id == chosen.model_id)


def _plan(session: Session, study: Study, settings: StudySettings, assignment: Assignment) -> None:
    real, fakes = pool_ids(session, study)
    catch = catch_pool_ids(session, study) if settings.catch.enabled else None
    plan = plan_session(settings, real, fakes, assignment.model_id, assignment.draw_key, catch)
    values = {"phase": [p.phase for p in plan], "block": [p.block for p in plan], "position": list(range(len(plan))),
              "image_id": [p.image_id for p in plan], "is_fake": [p.is_fake for p in plan],
              "is_catch": [p.is_catch for p in plan], "image_token": [secrets.token_urlsafe(16) for _ in plan]}
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        connection.execute(_PLAN_TRIALS_POSTGRES, {"assignment_id": assignment.id, **values})
    else:
        connection.execute(insert(Trial.__table__), [
            {"assignment_id": assignment.id, "presentations": 0, **{name: column[k] for name, column in values.items()}}
            for k in range(len(plan))])
    if settings.mode == "hype-time":
        cfg = adaptive.block_config(settings.time)
        start = adaptive.block_start(cfg)
        for block in range(settings.time.n_blocks):
            session.add(StaircaseRecord(assignment_id=assignment.id, block=block, config=cfg, state=start))
    session.flush()


# -- session lookup and stages ------------------------------------------------------------------------


def assignment_by_token(session: Session, token: str, *, for_update: bool = False) -> Assignment:
    """The session a token names; locked (FOR NO KEY UPDATE on PostgreSQL) for the requests that change
    it, so they run one after another. What keeps one worker's answers once and in order is the
    judgment's unique trial and key (hype.answer_rows takes no lock at all)."""
    if not isinstance(token, str) or not SESSION_TOKEN_RE.fullmatch(token):
        raise SessionError("This session link is not valid.", status=404, code="unknown-session")
    # The study comes in the same query: every request needs its settings.
    query = _ASSIGNMENT_BY_TOKEN_FOR_UPDATE if for_update else _ASSIGNMENT_BY_TOKEN
    assignment = session.scalar(query, {"token": token})
    if assignment is None:
        raise SessionError("This session link is not valid.", status=404, code="unknown-session")
    check_resumable(assignment)
    return assignment


# The shortest idle timeout a study may set: a session active more recently is never idle, which
# spares most requests parsing the study's settings for this check.
MIN_IDLE = dt.timedelta(minutes=1)


def check_resumable(assignment: Assignment, settings: StudySettings | None = None) -> None:
    """Refuse a session the idle timeout has ended (410 session-abandoned), marking it abandoned
    first if this is the first time anyone noticed; the mark is kept although the request fails."""
    if assignment.stage == "abandoned":
        raise SessionAbandoned(settings or study_settings(assignment.study))
    if assignment.stage not in ACTIVE_STAGES:
        return
    now = utcnow()
    if now - recruitment.as_utc(assignment.last_active_at) <= MIN_IDLE:
        return
    settings = settings or study_settings(assignment.study)
    if recruitment.is_idle(assignment, settings, now):
        assignment.stage = "abandoned"
        raise SessionAbandoned(settings)


def finish_instructions(assignment: Assignment) -> None:
    if assignment.stage == "instructions":
        assignment.stage = "check"
        recruitment.touch(assignment, study_settings(assignment.study))


@dataclass(frozen=True)
class BrowserCheck:
    refresh_interval_ms: float
    window_width: int
    window_height: int


def record_browser_check(session: Session, assignment: Assignment, check: BrowserCheck) -> None:
    """Store the display measurements and move on, or say exactly what to fix."""
    if assignment.stage != "check":
        if assignment.stage in ("instructions",):
            raise SessionError("Read the instructions first.", status=409, code="wrong-stage")
        return  # already past the check: a retried POST changes nothing
    if not MIN_REFRESH_MS <= check.refresh_interval_ms <= MAX_REFRESH_MS:
        raise SessionError(
            f"Your display refreshes every {check.refresh_interval_ms:.1f} ms; this task needs a display between "
            f"{1000 / MAX_REFRESH_MS:.0f} and {1000 / MIN_REFRESH_MS:.0f} Hz.",
            status=422,
            code="display-unsupported",
        )
    width, height = image_size(session, assignment.study_id)
    need_w, need_h = width + WINDOW_MARGIN_W, height + WINDOW_MARGIN_H
    if check.window_width < need_w or check.window_height < need_h:
        raise SessionError(
            f"Your browser window is {check.window_width}x{check.window_height} pixels; the images need at least "
            f"{need_w}x{need_h}. Please enlarge the window (or zoom out) and try again.",
            status=422,
            code="window-too-small",
        )
    assignment.refresh_interval_ms = check.refresh_interval_ms
    assignment.window_width = check.window_width
    assignment.window_height = check.window_height
    recruitment.touch(assignment, study_settings(assignment.study))
    has_qualification = session.scalar(
        select(func.count()).where(Trial.assignment_id == assignment.id, Trial.phase == "qualification")
    )
    assignment.stage = "qualification" if has_qualification else "task"


def image_size(session: Session, study_id: int) -> tuple[int, int]:
    """(width, height) shared by every pool image (import enforces one size per study)."""
    row = session.execute(select(Image.width, Image.height).where(Image.study_id == study_id).limit(1)).first()
    return (row.width, row.height) if row else (0, 0)


# -- trials ------------------------------------------------------------------------------------------


def current_trial(session: Session, assignment: Assignment) -> Trial | None:
    """The first unanswered trial of the current stage: the only one the worker may answer."""
    if assignment.stage not in TRIAL_STAGES:
        return None
    return session.scalar(_CURRENT_TRIAL, {"assignment_id": assignment.id, "phase": assignment.stage})


def upcoming_trial(session: Session, trial: Trial) -> Trial | None:
    """The trial after ``trial`` in the same phase, so its image can be preloaded while this one runs."""
    ahead = upcoming_trials(session, trial, 1)
    return ahead[0] if ahead else None


def upcoming_trials(session: Session, trial: Trial, n: int) -> list[Trial]:
    """The next ``n`` trials after ``trial`` in the same phase, in order."""
    params = {"assignment_id": trial.assignment_id, "phase": trial.phase, "position": trial.position, "n": n}
    return list(session.scalars(_UPCOMING_TRIALS, params))


def is_timed(settings: StudySettings, trial: Trial) -> bool:
    """Only HYPE-time's task is timed; its qualification, like HYPE-∞, has no time limit."""
    return settings.mode == "hype-time" and trial.phase == "task"


def serve_trial(session: Session, assignment: Assignment, settings: StudySettings, trial: Trial) -> float | None:
    """Fix the trial's exposure (from its block's staircase) the first time it is served; later
    requests for the same trial get the same exposure, so a reload cannot fish for a longer one.
    A catch trial is shown at the longest exposure and reads no staircase (docs/protocol.md)."""
    if not is_timed(settings, trial):
        return None
    if trial.requested_ms is None:
        if trial.is_catch:
            exposure = settings.time.max_ms
        else:
            record = _staircase_record(session, assignment, trial.block)
            exposure = adaptive.block_exposure(record.config, record.state)
        session.connection().execute(SET_REQUESTED_MS, {"r_id": trial.id, "r_ms": exposure})
        set_committed_value(trial, "requested_ms", exposure)  # stored: nothing left for a flush
    return trial.requested_ms


def _staircase_record(session: Session, assignment: Assignment, block: int) -> StaircaseRecord:
    # An answer moves the block's staircase and then serves the block's next trial, which needs the
    # same record: take it from the session instead of a second round trip (a query would return this
    # very object). Worker requests have small sessions, so the scan is short.
    for obj in session.identity_map.values():
        if isinstance(obj, StaircaseRecord) and obj.assignment_id == assignment.id and obj.block == block:
            return obj
    record = session.scalar(_STAIRCASE, {"assignment_id": assignment.id, "block": block})
    if record is None:  # pragma: no cover - created with the plan; missing means a corrupted session
        raise SessionError("This session's staircase is missing.", status=500, code="internal")
    return record


def progress(session: Session, assignment: Assignment, current: Trial | None = None) -> dict[str, int]:
    """Answered / total trials in the current stage's phase (for the progress bar).

    Given the current trial (the first unanswered one of the stage), no count is needed: answers fill
    a phase in order, so those before it are the answered ones, and a plan never changes once made,
    so each process keeps every phase's span after reading it once."""
    phase = assignment.stage if assignment.stage in TRIAL_STAGES else "task"
    if current is not None and current.phase == phase:
        first, last, total = phase_span(session, assignment.id, phase)
        if last - first + 1 == total:  # contiguous positions (plan_session lays phases out so)
            return {"done": current.position - first, "total": total}
    total, done = session.execute(_PROGRESS, {"assignment_id": assignment.id, "phase": phase}).one()
    return {"done": int(done or 0), "total": int(total or 0)}


PHASE_SPAN = select(func.min(Trial.position), func.max(Trial.position), func.count(Trial.id)).where(
    Trial.assignment_id == bindparam("assignment_id"), Trial.phase == bindparam("phase")
)
# Per engine (one database), since ids are only unique within one: {(assignment id, phase): span}.
_phase_spans: "weakref.WeakKeyDictionary[Any, dict[tuple[int, str], tuple[int, int, int]]]" = weakref.WeakKeyDictionary()
_PHASE_SPANS_KEPT = 100_000  # about 10 MB at most; forgotten all at once beyond that (reread on demand)


def phase_span(session: Session, assignment_id: int, phase: str) -> tuple[int, int, int]:
    """(first position, last position, number of trials) of a phase of an assignment's plan."""
    return cached_phase_span(session.get_bind(), assignment_id, phase, lambda: session.execute(
        PHASE_SPAN, {"assignment_id": assignment_id, "phase": phase}).one())


def cached_phase_span(engine: Any, assignment_id: int, phase: str,
                      read: Callable[[], Sequence[Any]]) -> tuple[int, int, int]:
    """phase_span, read with ``read`` (PHASE_SPAN's row) when this process has not seen it yet."""
    spans = _phase_spans.setdefault(engine, {})
    key = (assignment_id, phase)
    span = spans.get(key)
    if span is None:
        first, last, total = read()
        span = (int(first), int(last), int(total))
        if len(spans) >= _PHASE_SPANS_KEPT:
            spans.clear()
        spans[key] = span
    return span


# -- answers -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    trial_token: str
    judged_fake: bool
    idempotency_key: str
    measured_ms: float | None = None
    mask_measured_ms: tuple[float, ...] = ()
    refresh_interval_ms: float | None = None
    reaction_ms: float | None = None
    focus_lost: bool = False
    client_timestamps: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class AnswerOutcome:
    replayed: bool
    feedback_correct: bool | None  # only where the protocol gives feedback (HYPE-time task)
    stage: str
    # The trial to show next and the one after it, when the stage goes on (found with the query that
    # decides whether it does); None on a replay or when the stage changed.
    next_trial: Trial | None = None
    after_next: Trial | None = None


def record_answer(session: Session, assignment: Assignment, answer: Answer) -> AnswerOutcome:
    """Record one answer exactly once, in the server's order, then advance the staircase and stage.

    The idempotency key is scoped to the session, so a retried POST (lost response, flaky network,
    restarted server) returns the first outcome instead of recording twice, and no worker can block
    another's key.
    """
    if not IDEMPOTENCY_KEY_RE.fullmatch(answer.idempotency_key or ""):
        raise SessionError("idempotency_key must be 8-64 letters, digits, _ or -", code="bad-request")
    key = f"{assignment.id}:{answer.idempotency_key}"
    settings = study_settings(assignment.study)
    # One statement: the trial, whose trial this key already recorded (if any), and the position of the
    # first unanswered trial of the current stage (the only one that may be answered).
    params = {"key": key, "assignment_id": assignment.id, "stage": assignment.stage, "trial_token": answer.trial_token}
    row = session.execute(_ANSWER_TARGET, params).first()
    if row is None:
        raise SessionError("Unknown trial.", status=404, code="unknown-trial")
    trial, key_trial_id, open_position = row
    if key_trial_id is not None:
        if key_trial_id != trial.id:
            raise SessionError("This idempotency key was already used for another trial.", status=409, code="key-reused")
        return _outcome(trial, trial.judgment.correct, settings, assignment, replayed=True)
    if trial.assignment_id != assignment.id:
        raise SessionError("This trial belongs to another session.", status=403, code="foreign-trial")
    if trial.judgment is not None:
        raise SessionError("This trial has already been answered.", status=409, code="already-answered")
    if assignment.stage not in TRIAL_STAGES or open_position is None:
        raise SessionError(f"No answers are expected now (stage: {assignment.stage}).", status=409, code="wrong-stage")
    if trial.phase != assignment.stage or trial.position != open_position:
        raise SessionError("Answers must follow the trial order: answer the current trial first.", status=409, code="out-of-order")
    timed = is_timed(settings, trial)
    if timed and trial.requested_ms is None:
        raise SessionError("This trial has not been shown yet.", status=409, code="not-served")

    correct = answer.judged_fake == trial.is_fake
    # Every read before the first write: on SQLite the write lock is taken by the INSERT and held to the
    # commit, so nothing but the writes themselves (and the next trial's payload) runs while it is held.
    # Answers are taken in order, so the trial after this one (if any) is the phase's next current one.
    ahead = upcoming_trials(session, trial, 2)
    # a catch trial never moves the staircase (docs/protocol.md, Catch trials)
    record = _staircase_record(session, assignment, trial.block) if timed and not trial.is_catch else None
    # A prebuilt INSERT, not an ORM object through the unit of work (half the cost of the insert).
    values = judgment_values(assignment, key, trial, answer, settings, timed)
    session.connection().execute(INSERT_JUDGMENT, judgment_params(values, utcnow()))
    recruitment.touch(assignment, settings)
    if record is not None:
        _advance_staircase(session, record, correct)
    if not ahead:
        _finish_stage(session, assignment, settings)
    outcome = _outcome(trial, correct, settings, assignment, replayed=False)
    return replace(outcome, next_trial=ahead[0] if ahead else None, after_next=ahead[1] if len(ahead) > 1 else None)


def judgment_values(assignment: Any, key: str, trial: Any, answer: Answer, settings: StudySettings,
                     timed: bool) -> dict[str, Any]:
    """The judgment row an answer stores, with its presentation flags; ``assignment`` and ``trial`` are
    ORM objects or Core rows (the same attribute names)."""
    refresh = answer.refresh_interval_ms or assignment.refresh_interval_ms
    flags = presentation_flags(
        Presentation(
            timed=timed,
            requested_ms=trial.requested_ms,
            measured_ms=answer.measured_ms,
            mask_measured_ms=answer.mask_measured_ms,
            refresh_interval_ms=refresh,
            focus_lost=answer.focus_lost,
            n_masks=settings.time.n_masks if timed else 0,
            mask_ms=settings.time.mask_ms,
            presentations=trial.presentations,
        )
    )
    return dict(
        trial_id=trial.id,
        assignment_id=assignment.id,
        idempotency_key=key,
        judged_fake=answer.judged_fake,
        correct=answer.judged_fake == trial.is_fake,
        requested_ms=trial.requested_ms,
        measured_ms=answer.measured_ms,
        mask_measured_ms=list(answer.mask_measured_ms) or None,
        refresh_interval_ms=refresh,
        reaction_ms=answer.reaction_ms,
        client_timestamps=dict(answer.client_timestamps) or None,
        focus_lost=answer.focus_lost,
        flagged=bool(flags),
        flag_reasons=",".join(flags) or None,
    )



def _outcome(trial: Trial, correct: bool, settings: StudySettings, assignment: Assignment, *, replayed: bool) -> AnswerOutcome:
    feedback = correct if is_timed(settings, trial) else None
    return AnswerOutcome(replayed=replayed, feedback_correct=feedback, stage=assignment.stage)


def _advance_staircase(session: Session, record: StaircaseRecord, correct: bool) -> None:
    """Every answer moves its block's staircase, flagged or not, so the exposure sequence stays the
    staircase's own (PsychoPy-replayable); flags decide scoring, not presentation."""
    state = adaptive.block_advance(record.config, record.state, correct)
    session.connection().execute(SET_STAIRCASE_STATE, {"s_id": record.id, "s_state": state, "s_updated_at": utcnow()})
    set_committed_value(record, "state", state)


def _finish_stage(session: Session, assignment: Assignment, settings: StudySettings) -> None:
    """The stage's last trial was answered: qualification passes or fails, the task completes.
    Either end issues the session its own completion code (hype.platforms.codes)."""
    if assignment.stage == "qualification":
        real_ok, fake_ok, n_real, n_fake = _qualification_counts(session, assignment)
        assignment.qualification_real_correct = real_ok
        assignment.qualification_fake_correct = fake_ok
        q = settings.qualification
        passed = real_ok >= q.pass_real * n_real - 1e-9 and fake_ok >= q.pass_fake * n_fake - 1e-9
        assignment.qualification_passed = passed
        if passed:
            assignment.stage = "task"
        else:
            assignment.stage = "failed"
            assignment.completion_code = new_session_code()
            assignment.completed_at = utcnow()
    elif assignment.stage == "task":
        assignment.stage = "completed"
        assignment.completion_code = new_session_code()
        assignment.completed_at = utcnow()
        if settings.stopping.target_halfwidth or settings.stopping.until_models_separate:
            from hype import stopping_state  # the model may have reached its target: look once, here

            stopping_state.look(session, assignment.study, [assignment.model_id])
        if settings.recruitment.close_when_complete:
            recruitment.close_if_complete(session, assignment.study)


def _qualification_counts(session: Session, assignment: Assignment) -> tuple[int, int, int, int]:
    rows = session.execute(
        select(Trial.is_fake, Judgment.correct)
        .join(Judgment, Judgment.trial_id == Trial.id)
        .where(Trial.assignment_id == assignment.id, Trial.phase == "qualification")
    ).all()
    real_ok = sum(1 for fake, ok in rows if not fake and ok)
    fake_ok = sum(1 for fake, ok in rows if fake and ok)
    n_real = sum(1 for fake, _ in rows if not fake)
    return real_ok, fake_ok, n_real, len(rows) - n_real


# -- images the worker may load ------------------------------------------------------------------------


def image_file_for_token(session: Session, token: str, image_token: str) -> str | None:
    """The stored file an image URL names, if this session's worker may load it now (may_deliver),
    counting the delivery as one presentation of its trial.

    Every delivery is counted (Trial.presentations): the runner fetches and decodes each image once,
    so a second delivery (a reload, or a fetch of the next image ahead of the runner) means the
    worker could see it outside its timed exposure, and its answer is flagged.
    """
    row = session.execute(IMAGE_DELIVERY, {"image_token": image_token, "token": token}).first()
    if row is None or not may_deliver(row.mode, row.phase, row.position, row.stage, row.open_position, row.judgment_id):
        return None
    session.execute(COUNT_PRESENTATION, {"trial_id": row.id})
    return row.file_sha256


def may_deliver(mode: str, phase: str, position: int, stage: str, open_position: int | None,
                judgment_id: int | None) -> bool:
    """Whether a trial's image may be delivered now: the session is in that trial's stage, and the
    trial is the current one or the next (preloaded while the current one runs). A timed trial's
    image is served for its presentation only: never again once answered."""
    if stage not in TRIAL_STAGES or open_position is None or phase != stage:
        return False
    timed = mode == "hype-time" and phase == "task"
    if position > open_position + 1 or (timed and (judgment_id is not None or position < open_position)):
        return False
    return True


# Per engine: {study id: number of masks}. A study's masks are made once, before any worker enters
# (hype.studies.ensure_masks at publish; studies are never deleted), so a count once read stays true.
_mask_counts: "weakref.WeakKeyDictionary[Any, dict[int, int]]" = weakref.WeakKeyDictionary()


def mask_count(session: Session, study_id: int) -> int:
    """How many masks the study has: read once per process (every timed trial's payload needs it)."""
    counts = _mask_counts.setdefault(session.get_bind(), {})
    n = counts.get(study_id)
    if n is None:
        n = int(session.scalar(_MASK_COUNT, {"study_id": study_id}) or 0)
        if n:  # none yet: a draft being built, asked again next time
            counts[study_id] = n
    return n


# A study's masks in their one order: a trial's mask URLs name masks by their index in it.
_MASK_ORDER = Image.id


def mask_images(session: Session, study_id: int) -> list[Image]:
    return list(session.scalars(select(Image).where(Image.study_id == study_id, Image.pool == "mask").order_by(_MASK_ORDER)))


# A mask request: the session's stage and the index-th mask of its study (hype.web.image_gate runs it
# without the ORM). Masks are shared by every session of the study and counted nowhere.
MASK_DELIVERY = (
    select(Assignment.stage, Image.file_sha256)
    .join(Image, (Image.study_id == Assignment.study_id) & (Image.pool == "mask"))
    .where(Assignment.token == bindparam("token"))
    .order_by(_MASK_ORDER)
    .limit(1)
    .offset(bindparam("index"))
)


def example_images(session: Session, assignment: Assignment) -> dict[str, Image]:
    """One real and one fake image for the instructions, never from this worker's own plan (an
    example's label would otherwise be known before the trial). Pools without spare images give none."""
    planned = select(Trial.image_id).where(Trial.assignment_id == assignment.id)
    out: dict[str, Image] = {}
    for kind, where in (
        ("real", [Image.pool == "real"]),
        ("fake", [Image.pool == "fake", Image.model_id == assignment.model_id]),
    ):
        image = session.scalar(
            select(Image)
            .where(Image.study_id == assignment.study_id, *where, Image.id.not_in(planned))
            .order_by(Image.pixel_sha256)
            .limit(1)
        )
        if image is not None:
            out[kind] = image
    return out
