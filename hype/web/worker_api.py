"""The worker JSON API: what the trial runner in static/worker.js (and the load benchmark) talks to.

Every route is keyed by the session token in the path, the only credential a worker holds; the API
is exempt from CSRF because no ambient credential (cookie) authorises it. Nothing it returns before
an answer says whether an image is real or fake.
"""

from __future__ import annotations

import hashlib
import re
import time
from typing import Any, Callable, TypeVar

from flask import Blueprint, Response, abort, current_app, jsonify, request, session as cookie
from sqlalchemy.exc import IntegrityError, OperationalError
from werkzeug.exceptions import RequestEntityTooLarge

from hype.images import served_file, served_png
from hype.models import Assignment, Trial
from hype.proxy.nginx import accel_path
from hype.sessions import (
    AnswerOutcome,
    Identity,
    SessionError,
    assignment_by_token,
    current_trial,
    enter,
    example_images,
    finish_instructions,
    image_file_for_token,
    identity_from_params,
    is_mturk_preview,
    is_plain_link,
    is_timed,
    mask_count,
    mask_images,
    new_anonymous_id,
    progress,
    published_study,
    record_answer,
    record_browser_check,
    serve_trial,
    upcoming_trial,
)
from hype.studies import study_settings
from hype.web import config, db
from hype.answer_rows import record_answer_rows
from hype.web.payloads import json_body, parse_answer, parse_check, parse_entry_params

bp = Blueprint("worker_api", __name__, url_prefix="/api")

T = TypeVar("T")
WRITE_ATTEMPTS = 5

# The largest body any worker call needs is an answer of well under 2 KiB; the app-wide limit
# (config.max_upload_bytes) is sized for researchers' image archives, far too much for this API.
API_MAX_BODY_BYTES = 64 * 1024

# What the path segments can be (hype.studies.new_slug, secrets.token_urlsafe): anything else is
# answered 404 before it reaches the database (a NUL byte, for one, is an error in PostgreSQL).
SLUG_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
TOKEN_PATTERN = r"^[A-Za-z0-9_-]{20,128}$"
IMAGE_TOKEN_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
_PATH_RULES: dict[str, tuple[re.Pattern[str], str, str]] = {
    "slug": (re.compile(SLUG_PATTERN), "This study link is not valid.", "unknown-study"),
    "token": (re.compile(TOKEN_PATTERN), "This session link is not valid.", "unknown-session"),
    "image_token": (re.compile(IMAGE_TOKEN_PATTERN), "This image is not available.", "not-found"),
}


@bp.url_value_preprocessor
def _check_path_values(endpoint: str | None, values: dict[str, Any] | None) -> None:
    for name, value in (values or {}).items():
        rule = _PATH_RULES.get(name)
        if rule is not None and not (isinstance(value, str) and rule[0].fullmatch(value)):
            raise SessionError(rule[1], status=404, code=rule[2])


@bp.before_request
def _limit_body() -> None:
    """413 for a body above API_MAX_BODY_BYTES: at once when Content-Length says so; without one (a
    chunked upload) the body is read here, at most one byte past the limit, and kept for the view."""
    length = request.content_length
    if length is None:
        try:
            request.max_content_length = API_MAX_BODY_BYTES + 1  # werkzeug stops reading there
        except AttributeError:  # Flask < 3.1: only the app-wide MAX_CONTENT_LENGTH bounds the read
            pass
        length = len(request.get_data(cache=True))
    if length > API_MAX_BODY_BYTES:
        raise RequestEntityTooLarge(f"Request bodies sent to this API must be at most {API_MAX_BODY_BYTES:,} bytes.")


def anonymous_id(slug: str) -> str:
    """The browser's anonymous id for a plain link, kept in the signed session cookie so a reload
    finds the same session."""
    ids = dict(cookie.get("anon", {}))
    if slug not in ids:
        ids[slug] = new_anonymous_id()
        cookie["anon"] = ids
        cookie.permanent = True
    return ids[slug]


def entry_identity(slug: str, params: dict[str, str]) -> Identity:
    """Who a study link's parameters name; a plain link's browser is named by its cookie id."""
    return identity_from_params(params, anonymous_id(slug) if is_plain_link(params) else None)


def with_retries(work: Callable[[], T]) -> T:
    """Run one short transaction (every worker-API request's database work), retrying when a
    concurrent writer got there first or the connection was lost.

    An IntegrityError means another request recorded the same thing (a retried answer racing its
    original): the retry then finds that record and answers as a replay. OperationalError covers
    SQLite's "database is locked" under many writers, and a pooled PostgreSQL connection the server
    dropped (there is no pre-ping, see hype.db): SQLAlchemy invalidates it and the retry gets a new one.
    """
    session = db()
    for attempt in range(WRITE_ATTEMPTS):
        try:
            result = work()
            session.commit()
            return result
        except (IntegrityError, OperationalError):
            session.rollback()
            if attempt == WRITE_ATTEMPTS - 1:
                raise
            time.sleep(0.01 * (attempt + 1))
        except SessionError as exc:
            if exc.keep_changes:  # e.g. the session just found abandoned stays marked so
                session.commit()
            else:
                session.rollback()
            raise
        except BaseException:
            session.rollback()
            raise
    raise AssertionError("unreachable")


# The worker URLs every answer returns, from templates: url_for costs tens of microseconds a call and
# an answer needs up to seven. tests/api/test_worker_urls.py checks they match url_for's.
SESSION_PAGE_URL = "{root}/w/{token}"
TRIAL_IMAGE_URL = "{root}/api/w/{token}/img/{image_token}"
MASK_URL = "{root}/api/w/{token}/masks/{index}"


class _CachedReads:
    """What progress() and mask_count() need of the request's session: its engine, the key of their
    per-process caches, and the session itself only when they miss. The usual answer commits on a
    connection of its own (hype.answer_rows), and opening an ORM session to read two cached figures
    cost it more than either read."""

    def get_bind(self) -> Any:
        return current_app.extensions["hype.engine"]

    def execute(self, *args: Any, **kwargs: Any) -> Any:
        return db().execute(*args, **kwargs)

    def scalar(self, *args: Any, **kwargs: Any) -> Any:
        return db().scalar(*args, **kwargs)


_cached_reads: Any = _CachedReads()


def session_state(assignment: Any, current: Any = None) -> dict[str, Any]:
    """Stage, progress and page; ``current``, the stage's current trial when the caller has it, spares
    the progress count."""
    return {
        "stage": assignment.stage,
        "progress": progress(_cached_reads, assignment, current),
        "url": SESSION_PAGE_URL.format(root=request.script_root, token=assignment.token),
    }


# -- entry --------------------------------------------------------------------------------------------


@bp.post("/s/<slug>/sessions")
def create_session(slug: str):
    body = json_body()
    params = parse_entry_params(body)
    study = with_retries(lambda: published_study(db(), slug))
    if is_mturk_preview(params):
        # MTurk previews carry no workerId: refuse as a preview before reading an identity.
        raise SessionError("This is an MTurk preview: accept the HIT to start.", status=403, code="mturk-preview")
    identity = entry_identity(slug, params)
    # Stored for the researcher: printable characters only (no NUL, no control codes).
    user_agent = "".join(ch for ch in request.headers.get("User-Agent", "")[:500] if ch.isprintable())

    entry = with_retries(lambda: enter(db(), study, identity, user_agent))
    state = session_state(entry.assignment)
    return jsonify(token=entry.assignment.token, created=entry.created, **state), 201 if entry.created else 200


# -- session ------------------------------------------------------------------------------------------


@bp.get("/w/<token>")
def get_state(token: str):
    return jsonify(with_retries(lambda: session_state(assignment_by_token(db(), token))))


@bp.post("/w/<token>/instructions")
def done_instructions(token: str):
    json_body()  # no fields, but a JSON object like every other write (a form post is refused, 415)

    def work() -> Assignment:
        assignment = assignment_by_token(db(), token, for_update=True)
        finish_instructions(assignment)
        return assignment

    return jsonify(session_state(with_retries(work)))


@bp.post("/w/<token>/check")
def browser_check(token: str):
    check = parse_check(json_body())

    def work() -> Assignment:
        assignment = assignment_by_token(db(), token, for_update=True)
        record_browser_check(db(), assignment, check)
        return assignment

    return jsonify(session_state(with_retries(work)))


@bp.get("/w/<token>/trial")
def next_trial(token: str):
    def work() -> dict[str, Any]:
        assignment = assignment_by_token(db(), token)
        return trial_state(assignment, current_trial(db(), assignment))

    return jsonify(with_retries(work))


_LOOK_UP = object()


def trial_state(assignment: Assignment, trial: Trial | None, following: Any = _LOOK_UP) -> dict[str, Any]:
    """The session state with the trial to show now (its exposure fixed on first serving) and the
    image to preload during it: what GET /trial returns and what an answer returns as `next`.
    ``following`` is the trial after ``trial`` (or None) when the caller already has it."""
    if trial is None:
        return {**session_state(assignment, trial), "trial": None, "preload": []}
    settings = study_settings(assignment.study)
    exposure = serve_trial(db(), assignment, settings, trial)
    if following is _LOOK_UP:
        following = upcoming_trial(db(), trial)
    return _served_state(assignment, settings, trial, exposure, following)


def _served_state(assignment: Any, settings, trial: Any, exposure: float | None, following: Any) -> dict[str, Any]:
    """trial_state's body once the trial is served; ``assignment`` and the trials are ORM objects or
    rows (hype.answer_rows.record_answer_rows)."""
    return {
        **session_state(assignment, trial),
        "trial": _trial_payload(assignment, settings, trial, exposure),
        "preload": [TRIAL_IMAGE_URL.format(root=request.script_root, token=assignment.token, image_token=following.image_token)]
        if following else [],
    }


def _trial_payload(assignment: Any, settings, trial: Any, exposure: float | None) -> dict[str, Any]:
    timed = is_timed(settings, trial)
    t = settings.time
    masks: list[str] = []
    if timed:
        n_available = mask_count(_cached_reads, assignment.study_id)
        masks = [
            MASK_URL.format(root=request.script_root, token=assignment.token, index=k)
            for k in _mask_indices(trial.image_token, t.n_masks, n_available)
        ]
    return {
        "id": trial.image_token,
        "image_url": TRIAL_IMAGE_URL.format(root=request.script_root, token=assignment.token, image_token=trial.image_token),
        "phase": trial.phase,
        "block": trial.block,
        "timed": timed,
        "exposure_ms": exposure,
        "countdown": {"steps": t.countdown_steps, "ms": t.countdown_ms} if timed else None,
        "masks": masks,
        "mask_ms": t.mask_ms if timed else None,
        "feedback": timed,
    }


def _mask_indices(seed_text: str, n: int, available: int) -> list[int]:
    """Which of the study's masks a trial uses: a fixed, label-independent draw from its token."""
    if available == 0:
        return []
    digest = hashlib.sha256(seed_text.encode()).digest()
    return [digest[k] % available for k in range(n)]


@bp.post("/w/<token>/answers")
def answer(token: str):
    parsed = parse_answer(json_body())
    # The usual answer on a connection of its own, committed there (hype.answer_rows); anything else (a
    # replay, a refusal, a stage's last answer, a database error) on the ORM path below, which answers
    # exactly as before (record_answer_rows committed nothing then, or its commit's reply was lost and
    # the ORM path finds the answer and replays it).
    fast = record_answer_rows(current_app.extensions["hype.answer_connections"], token, parsed)
    if fast is not None:
        outcome = AnswerOutcome(replayed=False, feedback_correct=fast.feedback_correct, stage=fast.assignment.stage)
        try:
            next_state = _served_state(fast.assignment, fast.settings, fast.next_trial, fast.exposure, fast.after_next)
        except OperationalError:  # a cached read's miss met a dropped pooled connection: once more, on a fresh one
            db().rollback()
            next_state = _served_state(fast.assignment, fast.settings, fast.next_trial, fast.exposure, fast.after_next)
    else:
        def work():
            assignment = assignment_by_token(db(), token, for_update=True)
            outcome = record_answer(db(), assignment, parsed)
            # The next trial rides along (served, so its exposure is fixed in this same transaction): the
            # runner needs no GET /trial between answers, a third fewer requests per judgment.
            if outcome.next_trial is not None:
                return outcome, trial_state(assignment, outcome.next_trial, following=outcome.after_next)
            return outcome, trial_state(assignment, current_trial(db(), assignment))

        outcome, next_state = with_retries(work)
    body = {
        "recorded": True,
        "replayed": outcome.replayed,
        "feedback": None if outcome.feedback_correct is None else {"correct": outcome.feedback_correct},
        **{key: value for key, value in next_state.items() if key not in ("trial", "preload")},  # the session state
        "next": next_state,
    }
    return jsonify(body), 200 if outcome.replayed else 201


# -- images --------------------------------------------------------------------------------------------


def _image(file_sha256: str) -> Response:
    """A served image: its bytes, or, behind nginx, an X-Accel-Redirect that has nginx send the same
    file (hype.proxy.nginx) so no Python process reads or writes image bytes.

    Bytes only either way: no Last-Modified or ETag, which would tell real images (imported at one
    time) from fakes (imported at another) by their headers alone."""
    cfg = config()
    if cfg.behind_nginx:
        served_file(cfg.image_store, cfg.served_dir, file_sha256)
        response = Response(status=200, mimetype="image/png")
        response.headers["X-Accel-Redirect"] = accel_path(file_sha256)
    else:
        response = Response(served_png(cfg.image_store, cfg.served_dir, file_sha256), mimetype="image/png")
    response.headers["Cache-Control"] = "private, no-store"
    return response


@bp.get("/w/<token>/img/<image_token>")
def trial_image(token: str, image_token: str):
    file_sha256 = with_retries(lambda: image_file_for_token(db(), token, image_token))
    if file_sha256 is None:
        with_retries(lambda: assignment_by_token(db(), token))  # an unknown session says so
        abort(404, description="This image is not available.")
    return _image(file_sha256)


@bp.get("/w/<token>/masks/<int:index>")
def mask_image(token: str, index: int):
    masks = with_retries(lambda: mask_images(db(), assignment_by_token(db(), token).study_id))
    if not 0 <= index < len(masks):
        abort(404, description="No such mask.")
    return _image(masks[index].file_sha256)


@bp.get("/w/<token>/examples/<kind>")
def example_image(token: str, kind: str):
    image = with_retries(lambda: example_images(db(), assignment_by_token(db(), token))).get(kind)
    if image is None:
        abort(404, description="No example image.")
    return _image(image.file_sha256)
