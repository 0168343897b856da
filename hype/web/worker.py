"""Worker-facing pages and JSON API. (Entry page here; the trial flow builds on it.)"""

from __future__ import annotations

from flask import Blueprint, abort, render_template, request
from sqlalchemy import select

from hype.models import Study
from hype.studies import study_settings
from hype.web import db

bp = Blueprint("worker", __name__)

MTURK_PREVIEW = "ASSIGNMENT_ID_NOT_AVAILABLE"


def _published_study(slug: str) -> Study:
    study = db().scalar(select(Study).where(Study.slug == slug))
    if study is None or study.status == "draft":
        abort(404, description="This study link is not valid.")
    return study


@bp.get("/s/<slug>")
def start(slug: str):
    study = _published_study(slug)
    settings = study_settings(study)
    preview = request.args.get("assignmentId") == MTURK_PREVIEW
    return render_template(
        "worker/start.html",
        study=study,
        settings=settings,
        preview=preview,
        closed=study.status == "closed",
    )
