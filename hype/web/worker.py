"""Worker-facing pages: the study link (consent, or preview), then one page per session stage.

Pages are rendered by the server from the session's stored stage, so a reload always lands on the
right step; the JavaScript in static/worker.js only drives the current step through the JSON API.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from flask import Blueprint, redirect, render_template, request, url_for

from hype import effort
from hype.models import Assignment, Study
from hype.monitoring import finished_session_seconds
from hype.sessions import (
    FINISHED_STAGES,
    SessionError,
    assignment_by_token,
    check_resumable,
    example_images,
    find_assignment,
    image_size,
    is_mturk_preview,
    published_study,
    study_is_full,
)
from hype.studies import study_settings
from hype.web import db, external_url
from hype.web.worker_api import entry_identity

bp = Blueprint("worker", __name__)


ENTRY_PARAMS = ("assignmentId", "hitId", "workerId", "turkSubmitTo", "PROLIFIC_PID", "STUDY_ID", "SESSION_ID")
PROLIFIC_COMPLETE = "https://app.prolific.com/submissions/complete?cc={code}"


@bp.get("/s/<slug>")
def start(slug: str):
    study = published_study(db(), slug)
    settings = study_settings(study)
    params = {k: request.args[k] for k in ENTRY_PARAMS if k in request.args}
    preview = is_mturk_preview(params)
    pay = effort.stated_pay(settings, finished_session_seconds(db(), study))
    context: dict[str, Any] = dict(study=study, settings=settings, preview=preview, params=params, closed=False,
                                   full=study_is_full(db(), study, settings), pay=pay)
    if preview:
        return render_template("worker/start.html", **context)
    identity = entry_identity(slug, params)
    assignment = find_assignment(db(), study, identity)
    if assignment is not None:
        check_resumable(assignment, settings)  # an abandoned session: 410, saying why
        if assignment.stage in FINISHED_STAGES:
            return render_template("worker/message.html", study=study, title="Already taken part",
                                   message="You have already taken part in this study; each person can take part once. Thank you!"), 409
        return redirect(url_for("worker.session_page", token=assignment.token), code=303)
    context["closed"] = study.status == "closed"
    return render_template("worker/start.html", **context)


@bp.get("/w/<token>")
def session_page(token: str):
    assignment = assignment_by_token(db(), token)
    study = assignment.participant.study
    settings = study_settings(study)
    width, height = image_size(db(), study.id)
    common: dict[str, Any] = dict(
        study=study, settings=settings, assignment=assignment, token=token, image_width=width, image_height=height
    )
    stage = assignment.stage
    if stage == "instructions":
        examples = sorted(example_images(db(), assignment))
        return render_template("worker/instructions.html", examples=examples, **common)
    if stage == "check":
        return render_template("worker/check.html", **common)
    if stage in ("qualification", "task"):
        return render_template("worker/trials.html", **common)
    return render_template("worker/done.html", finish=_finish(assignment, study), **common)


def _finish(assignment: Assignment, study: Study) -> dict[str, Any]:
    """How this worker is handed back to the platform that sent them, with their code."""
    participant = assignment.participant
    code = assignment.completion_code or ""
    if participant.platform == "prolific":
        # Prolific only recognises the codes registered on its study (completed / qualification
        # failed); the session's own code is the worker's receipt. Sync checks the pair.
        study_code = study.completion_code if assignment.stage == "completed" else study.qualification_fail_code
        template = study.prolific_completion_url or PROLIFIC_COMPLETE
        url = template.replace("{code}", study_code) if "{code}" in template else template
        return {"platform": "prolific", "code": code, "redirect_url": url}
    if participant.platform == "mturk":
        ids = participant.platform_ids or {}
        return {
            "platform": "mturk",
            "code": code,
            "submit_url": f"{ids.get('turkSubmitTo', 'https://www.mturk.com')}/mturk/externalSubmit",
            "assignment_id": ids.get("assignmentId", ""),
        }
    return {"platform": "plain", "code": code}


def start_url(study: Study, **params: str) -> str:
    """The worker link for a study, with optional platform parameters (used by the dashboard and CLI)."""
    query = f"?{urlencode(params)}" if params else ""
    return external_url("worker.start", slug=study.slug) + query


def render_session_error(exc: SessionError):
    title = "Session closed" if exc.code == "session-abandoned" else "Cannot continue"
    return render_template("worker/message.html", study=None, title=title, message=exc.message), exc.status
