"""Background jobs from the dashboard: start one for a study, follow it, fetch what it made.

Thin views over hype.jobs; the study lookup (and its 404 for anyone but the owner) is the
dashboard's own `_own_study`."""

from __future__ import annotations

from flask import Blueprint, abort, flash, jsonify, redirect, send_from_directory, url_for

from hype.jobs import JobError, job_view, jobs_of_study, submit
from hype.jobs.kinds import reports_dir
from hype.models import Job
from hype.web import config, db
from hype.web.auth import login_required
from hype.web.researcher import _own_study

bp = Blueprint("jobs", __name__)

#: Kinds the dashboard starts with one button (imports are started from the upload form).
BUTTON_KINDS = ("metrics", "report")


@bp.app_template_global("study_jobs")
def study_jobs(study_id: int) -> list[dict]:
    """The jobs a researcher started; forecast jobs (one per new evaluator of a QUEST+ study) show on
    the Certainty card instead, and would push these off the list."""
    return [job_view(j) for j in jobs_of_study(db(), study_id, exclude_kinds=("forecast",))]


@bp.post("/studies/<int:study_id>/jobs/<kind>")
@login_required
def start(study_id: int, kind: str):
    study = _own_study(study_id)
    if kind not in BUTTON_KINDS:
        abort(404, description="No such job.")
    factory = _factory()
    try:
        job = submit(config(), factory, study.id, kind)
        flash(f"Job {job.id} started: {job_view(job)['label'].lower()}. Its progress shows below.")
    except JobError as exc:
        flash(str(exc), "error")
    return redirect(url_for("researcher.study", study_id=study.id) + "#jobs")


@bp.get("/studies/<int:study_id>/jobs.json")
@login_required
def listing(study_id: int):
    study = _own_study(study_id)
    return jsonify(jobs=study_jobs(study.id))


@bp.get("/studies/<int:study_id>/jobs/<int:job_id>/report.html")
@login_required
def rendered_report(study_id: int, job_id: int):
    study = _own_study(study_id)
    job = db().get(Job, job_id)
    if job is None or job.study_id != study.id or job.kind != "report" or job.state != "done":
        abort(404, description="No such report.")
    return send_from_directory(reports_dir(config()), job.result["file"], mimetype="text/html", as_attachment=True,
                               download_name=f"hype-report-{study.slug}.html")


def _factory():
    from flask import current_app

    return current_app.extensions["hype.sessions"]
