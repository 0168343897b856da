"""Researcher dashboard: studies, their lifecycle, monitoring, exclusions and downloads.

Views only translate forms to calls of hype.studies / hype.monitoring / hype.study_scoring and
back; every study is looked up through `_own_study`, which answers 404 for anyone but its owner.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from flask import Blueprint, Response, abort, flash, jsonify, redirect, render_template, request, url_for
from sqlalchemy import func, select
from werkzeug.utils import secure_filename

from hype import monitoring, recruitment
from hype.models import Image, Study
from hype.protocol import MODES
from hype.quality import ExclusionRules
from hype.scoring import MIN_EVALUATORS_FOR_CI, ScoringError
from hype.protocol import SettingsError, StudySettings
from hype.settings_form import EDITABLE_WHILE_RUNNING, MODE_SECTIONS, current_values, sections, settings_from_form
from hype.studies import (
    StudyError,
    close_study,
    create_study,
    has_started,
    import_images,
    publish_study,
    reopen_study,
    study_settings,
    update_settings,
)
from hype.server_folders import resolve_server_folder
from hype.platforms.mturk import external_question
from hype.platforms.service import prolific_study_url
from hype.web import config, db, external_url
from hype.web.auth import current_researcher, login_required
from hype.web.forms import number

bp = Blueprint("researcher", __name__)

LIVE_RESAMPLES = 2000  # enough for a live CI to two digits; the report uses the study's own setting


def _own_study(study_id: int) -> Study:
    study = db().get(Study, study_id)
    researcher = current_researcher()
    if study is None or researcher is None or study.owner_id != researcher.id:
        abort(404, description="No such study.")
    return study


@bp.get("/")
def home():
    return redirect(url_for("researcher.studies") if current_researcher() else url_for("auth.login"))


@bp.get("/studies")
@login_required
def studies():
    researcher = current_researcher()
    rows = list(db().scalars(select(Study).where(Study.owner_id == researcher.id).order_by(Study.created_at.desc())))
    return render_template("researcher/studies.html", studies=rows, researcher=researcher)


# -- creating -----------------------------------------------------------------------------------------

@bp.route("/studies/new", methods=["GET", "POST"])
@login_required
def new_study():
    error = None
    if request.method == "POST":
        seed_text = (request.form.get("seed") or "").strip()
        try:
            seed = number(request.form, "seed", "The seed", int) if seed_text else None
            study = create_study(
                db(),
                name=request.form.get("name", ""),
                mode=request.form.get("mode", ""),
                seed=seed,
                settings=settings_from_form(request.form, mode=request.form.get("mode", "")),
                owner_id=current_researcher().id,
                prolific_completion_url=(request.form.get("prolific_completion_url") or "").strip() or None,
            )
            db().commit()
            flash("Study created. Add the real images and one image set per model, then publish.")
            return redirect(url_for("researcher.study", study_id=study.id))
        except (StudyError, SettingsError, ValueError) as exc:
            db().rollback()
            error = str(exc)
    values = request.form if request.method == "POST" else current_values(StudySettings())
    from hype.web.platforms import form_pay

    return render_template(
        "researcher/new_study.html", sections=sections(), values=values, modes=MODES, error=error, form=request.form,
        mode_sections=MODE_SECTIONS,
        pay=form_pay(request.form),
    ), 400 if error else 200


@bp.route("/studies/<int:study_id>/settings", methods=["GET", "POST"])
@login_required
def edit_settings(study_id: int):
    """Every setting until the first worker starts; then (and once closed) only the target, the pay
    and the recruitment settings."""
    study = _own_study(study_id)
    started = has_started(db(), study)
    editable = EDITABLE_WHILE_RUNNING if started or study.status == "closed" else None
    error = None
    if request.method == "POST":
        try:
            was = study.status
            changed = update_settings(db(), study, settings_from_form(request.form, only=editable, mode=study.mode))
            recruitment.settings_changed(db(), study, changed)
            recruitment.close_if_complete(db(), study)
            db().commit()
            message = f"Settings saved ({', '.join(changed)} changed)." if changed else "Nothing changed."
            if was == "published" and study.status == "closed":
                message += " Every model now has its valid evaluators, so the study was closed."
            flash(message)
            return redirect(url_for("researcher.study", study_id=study.id))
        except (StudyError, SettingsError) as exc:
            db().rollback()
            error = str(exc)
    values = request.form if request.method == "POST" else current_values(study_settings(study))
    from hype.web.platforms import form_pay

    return render_template(
        "researcher/edit_settings.html", study=study, sections=sections(mode=study.mode), values=values, editable=editable,
        started=started, error=error, pay=form_pay(request.form, study),
    ), 400 if error else 200


@bp.post("/studies/<int:study_id>/images")
@login_required
def add_images(study_id: int):
    """A zip upload or a folder on the server, into the real pool or a model's pool."""
    study = _own_study(study_id)
    pool = request.form.get("pool", "real")
    model_name = (request.form.get("model_name") or "").strip() or None
    upload = request.files.get("archive")
    folder = (request.form.get("folder") or "").strip()
    try:
        resize = _size((request.form.get("resize") or "").strip())
        if pool not in ("real", "fake"):
            raise StudyError("choose the real pool or a model")
        if pool == "fake" and not model_name:
            raise StudyError("name the model these images come from")
        checked_folder = None
        if folder and not (upload and upload.filename):
            cfg = config()
            checked_folder = resolve_server_folder(folder, cfg.import_roots, forbidden=[cfg.data_dir])
        if _large_import(upload, checked_folder):
            return _import_in_background(study, upload, checked_folder, pool, model_name if pool == "fake" else None,
                                         resize)
        with tempfile.TemporaryDirectory(dir=_staging(study)) as tmp:
            if upload and upload.filename:
                source = Path(tmp) / (secure_filename(upload.filename) or "upload.zip")
                upload.save(source)
            elif checked_folder is not None:
                source = checked_folder
            else:
                raise StudyError("upload a zip or give a server folder")
            summary = import_images(db(), config(), study, source, pool=pool, model_name=model_name if pool == "fake" else None,
                                    resize=resize)
        db().commit()
        flash(f"Added {summary.added} images ({summary.width}×{summary.height}) to {'the real pool' if pool == 'real' else model_name}.")
    except (StudyError, ValueError) as exc:  # ImageImportError and ServerFolderError are ValueErrors
        db().rollback()
        flash(f"Nothing was added: {exc}", "error")
    except OSError:
        db().rollback()
        flash("Nothing was added: a file could not be read on the server. Upload a zip instead.", "error")
    return redirect(url_for("researcher.study", study_id=study.id))


def _size(text: str) -> tuple[int, int] | None:
    """'256x256' (or '256×256', '256 x 256') -> (256, 256); empty -> None (keep the images' size)."""
    if not text:
        return None
    parts = text.lower().replace("×", "x").replace(" ", "").split("x")
    if len(parts) != 2 or not all(p.isdigit() and 0 < int(p) <= 8192 for p in parts):
        raise StudyError(f"resize is width x height in pixels, e.g. 256x256, not {text!r}")
    return int(parts[0]), int(parts[1])


#: Imports at least this large run as a background job (hype.jobs), so the request returns at once.
LARGE_IMPORT_BYTES = 20 * 1024 * 1024
LARGE_IMPORT_FILES = 500


def _large_import(upload, folder: Path | None) -> bool:
    """`folder`: already checked against HYPE_IMPORT_ROOTS (resolve_server_folder)."""
    if upload and upload.filename:
        upload.stream.seek(0, 2)
        size = upload.stream.tell()
        upload.stream.seek(0)
        return size >= LARGE_IMPORT_BYTES
    if folder is not None and folder.is_dir():
        return sum(1 for _ in zip(range(LARGE_IMPORT_FILES), folder.rglob("*"))) >= LARGE_IMPORT_FILES
    return False


def _import_in_background(study: Study, upload, folder: Path | None, pool: str, model_name: str | None,
                          resize: tuple[int, int] | None):
    import uuid

    from flask import current_app

    from hype.jobs import JobError, submit

    params: dict[str, Any] = {"pool": pool, "model_name": model_name, "resize": list(resize) if resize else None}
    if upload and upload.filename:
        source = Path(_staging(study)) / f"{uuid.uuid4().hex}-{secure_filename(upload.filename) or 'upload.zip'}"
        upload.save(source)
        params.update(source=str(source), remove_source=True)
    else:
        params.update(source=str(folder), remove_source=False)
    try:
        job = submit(config(), current_app.extensions["hype.sessions"], study.id, "import", params)
        flash(f"A large import: it runs as job {job.id}; its progress shows under Background jobs.")
    except JobError as exc:
        if params.get("remove_source"):
            Path(params["source"]).unlink(missing_ok=True)
        flash(f"Nothing was added: {exc}", "error")
    return redirect(url_for("researcher.study", study_id=study.id) + "#jobs")


def _staging(study: Study) -> str:
    path = config().staging_dir / "uploads"
    path.mkdir(parents=True, exist_ok=True)
    return str(path)


@bp.post("/studies/<int:study_id>/publish")
@login_required
def publish(study_id: int):
    study = _own_study(study_id)
    try:
        publish_study(db(), config(), study)
        db().commit()
        flash("Published: the worker links below are live.")
    except StudyError as exc:
        db().rollback()
        flash(str(exc), "error")
    return redirect(url_for("researcher.study", study_id=study.id))


@bp.post("/studies/<int:study_id>/close")
@login_required
def close(study_id: int):
    study = _own_study(study_id)
    try:
        close_study(study)
        db().commit()
        flash("Closed: nobody new can start; sessions already running can finish.")
    except StudyError as exc:
        db().rollback()
        flash(str(exc), "error")
    return redirect(url_for("researcher.study", study_id=study.id))


@bp.post("/studies/<int:study_id>/reopen")
@login_required
def reopen(study_id: int):
    study = _own_study(study_id)
    try:
        reopen_study(db(), study)
        db().commit()
        if recruitment.is_complete(recruitment.model_slots(db(), study)):
            flash("Reopened, but every model already has its evaluators: raise the target to take more.")
        else:
            flash("Reopened: the worker links take new workers again.")
    except StudyError as exc:
        db().rollback()
        flash(str(exc), "error")
    return redirect(url_for("researcher.study", study_id=study.id))


# -- watching ---------------------------------------------------------------------------------------------


def worker_links(study: Study) -> dict[str, str]:
    plain = external_url("worker.start", slug=study.slug)
    prolific = prolific_study_url(plain)
    mturk_xml = external_question(plain)
    return {"plain": plain, "prolific": prolific, "mturk_xml": mturk_xml}


def live_score(study: Study) -> dict[str, Any]:
    """The score so far, in words a researcher reads: no CI for a model below MIN_EVALUATORS_FOR_CI."""
    from hype.study_scoring import NothingToScoreError, score_study

    try:
        score = score_study(db(), study, n_resamples=LIVE_RESAMPLES)
    except NothingToScoreError as exc:
        return {"available": False, "message": _nothing_yet(exc.by_status)}
    except ScoringError:
        return {"available": False, "message": "No score yet: every finished worker's trials are left out "
                                               "(flagged for timing or lost focus)."}
    data = score.to_dict()
    for row in data["leaderboard"]["rows"]:
        if row["n_evaluators"] < MIN_EVALUATORS_FOR_CI:
            row["ci_low"] = row["ci_high"] = None
            row["ci_note"] = f"needs {MIN_EVALUATORS_FOR_CI} evaluators"
    return {"available": True, "min_evaluators_for_ci": MIN_EVALUATORS_FOR_CI, **data}


def _nothing_yet(by_status: dict[str, int]) -> str:
    words = {"incomplete": "still working", "failed_qualification": "failed the qualification", "excluded": "excluded"}
    detail = ", ".join(f"{n} {words.get(s, s.replace('_', ' '))}" for s, n in sorted(by_status.items()))
    return "No score yet: a score counts only workers who finished the task, and none has" + (f" ({detail})." if detail else ".")


@bp.get("/studies/<int:study_id>")
@login_required
def study(study_id: int):
    study = _own_study(study_id)
    pools = db().execute(
        select(Image.pool, Image.model_id, func.count()).where(Image.study_id == study.id).group_by(Image.pool, Image.model_id)
    ).all()
    names = {m.id: m.name for m in study.models}
    pool_rows = [(("real" if pool == "real" else names.get(model_id, "?") + (" (degraded catch copies)" if pool == "catch" else "")), n)
                 for pool, model_id, n in pools if pool != "mask"]
    progress = monitoring.model_progress(db(), study)
    return render_template(
        "researcher/study.html",
        study=study,
        settings=study_settings(study),
        started=has_started(db(), study),
        pools=sorted(pool_rows),
        links=worker_links(study) if study.status != "draft" else None,
        progress=progress,
        complete=monitoring.is_study_complete(progress),
        workers=monitoring.worker_rows(db(), study),
        score=live_score(study),
        certainty=_certainty(study),
        rules=_default_rules(study_settings(study)),
        platforms=_platform_panel(study),
        server_folders=bool(config().import_roots),
    )


def _certainty(study: Study) -> list[Any]:
    """Per model: half-width and forecast (hype.stopping_state; the forecast is cached, recomputed
    only for models with new evaluators since; a QUEST+ study's by a background job, not here)."""
    from hype.stopping_state import certainty

    if not study.models or study.status == "draft":
        return []
    rows = certainty(db(), study, request_job=lambda fingerprint: _start_forecast_job(study.id, fingerprint))
    db().commit()
    return rows


def _start_forecast_job(study_id: int, fingerprint: str) -> None:
    """Queue the forecast job; the card says "being computed" meanwhile. One already waiting or
    running (another view got there first) is fine; a queue that cannot be reached fails the job,
    whose message the card then shows."""
    from flask import current_app

    from hype.jobs import JobError, submit
    from hype.stopping_state import FORECAST_JOB

    db().commit()  # the states just refreshed are what the job will read
    try:
        submit(config(), current_app.extensions["hype.sessions"], study_id, FORECAST_JOB, {"fingerprint": fingerprint})
    except JobError:
        pass


def _platform_panel(study: Study) -> dict[str, Any]:
    from hype.web.platforms import study_panel

    return study_panel(study)


@bp.app_template_global("stopping_coverage")
def stopping_coverage(settings: StudySettings) -> str:
    """The simulated coverage of a stopped model's interval the Certainty card quotes (hype.stopping's
    figures, so the card cannot go stale when they are re-measured), for the kind of score the study's
    own stopping rule decides on."""
    from hype.stopping import coverage_range, score_kind
    from hype.stopping_state import rule_for

    return coverage_range(score_kind(settings.mode, rule_for(settings)))


@bp.get("/studies/<int:study_id>/live.json")
@login_required
def live(study_id: int):
    study = _own_study(study_id)
    progress = monitoring.model_progress(db(), study)
    return jsonify(
        status=study.status,
        complete=monitoring.is_study_complete(progress),
        progress=[p.to_dict() for p in progress],
        score=live_score(study),
        # The Certainty card as the page renders it (one template for both), so half-widths, stops and
        # forecasts move with the rest of the dashboard instead of waiting for a reload.
        certainty_html=render_template("researcher/_certainty.html", study=study, settings=study_settings(study),
                                       certainty=_certainty(study)),
    )


@bp.get("/compare")
@login_required
def compare():
    """Several of the researcher's studies side by side (?study=ID&study=ID…)."""
    from hype.comparison import ComparisonError
    from hype.comparison_plot import comparison_forest_plot
    from hype.study_comparison import compare_studies

    ids = []
    for raw in request.args.getlist("study"):
        if raw.isdigit() and int(raw) not in ids:
            ids.append(int(raw))
    context: dict[str, Any] = {"min_ci": MIN_EVALUATORS_FOR_CI, "comparison": None, "plot": None, "infinity": True, "error": None}
    if len(ids) < 2:
        context["error"] = "Tick at least two studies to compare."
        return render_template("researcher/compare.html", **context), 400
    chosen = [_own_study(i) for i in sorted(ids)]  # oldest first: checkpoints in the order they were evaluated
    try:
        comparison = compare_studies(db(), chosen, n_resamples=LIVE_RESAMPLES)
    except ComparisonError as exc:
        context["error"] = f"These studies cannot be compared: {exc}."
        return render_template("researcher/compare.html", **context), 400
    context.update(comparison=comparison, infinity=comparison.mode != "hype-time",
                   plot=comparison_forest_plot(comparison) if comparison.rows else None)
    return render_template("researcher/compare.html", **context)


# -- quality control --------------------------------------------------------------------------------------


@bp.post("/studies/<int:study_id>/exclusions")
@login_required
def exclude(study_id: int):
    study = _own_study(study_id)
    try:
        assignment_id = (request.form.get("assignment_id") or "").strip()
        if not assignment_id.isdigit():
            raise monitoring.MonitoringError("That worker is not in this study.")
        exclusion = monitoring.exclude(db(), study, int(assignment_id), request.form.get("reason", ""))
        db().commit()
        message = "Worker excluded; scores now leave them out."
        if exclusion.assignment.stage == "completed":
            message += " Their model takes a new worker in their place" + (
                " once you reopen the study." if study.status == "closed" else ".")
        flash(message)
    except (monitoring.MonitoringError, ValueError) as exc:
        db().rollback()
        flash(str(exc), "error")
    return redirect(url_for("researcher.study", study_id=study.id) + "#workers")


@bp.post("/studies/<int:study_id>/exclusions/<int:exclusion_id>/revoke")
@login_required
def revoke(study_id: int, exclusion_id: int):
    study = _own_study(study_id)
    try:
        monitoring.revoke(db(), study, exclusion_id)
        db().commit()
        flash("Exclusion undone; the worker counts again.")
    except monitoring.MonitoringError as exc:
        db().rollback()
        flash(str(exc), "error")
    return redirect(url_for("researcher.study", study_id=study.id) + "#workers")


def _default_rules(settings) -> ExclusionRules:
    """The rules form's starting values; the catch rule's threshold is the study's own setting."""
    c = settings.catch
    return ExclusionRules(min_catch_accuracy=c.min_accuracy if c.enabled and c.min_accuracy else None)


@bp.post("/studies/<int:study_id>/exclusion-rules")
@login_required
def apply_rules(study_id: int):
    study = _own_study(study_id)
    form = request.form
    try:
        flagged_percent = (number(form, "max_flagged_percent", "The share of flagged trials (%)", low=0, high=100)
                           if form.get("use_flagged") == "on" else None)
        rules = ExclusionRules(
            failed_qualification=form.get("failed_qualification") == "on",
            max_flagged_share=flagged_percent / 100 if flagged_percent is not None else None,
            min_median_reaction_ms=(number(form, "min_median_reaction_ms", "The median reaction time (ms)", low=0)
                                    if form.get("use_fast") == "on" else None),
            min_catch_accuracy=(number(form, "min_catch_percent", "The share right on catch trials (%)", low=0, high=100) / 100
                                if form.get("use_catch") == "on" else None),
        )
        created = monitoring.apply_rules(db(), study, rules)
        db().commit()
        flash(f"Rules applied: {len(created)} new exclusion(s).")
    except ValueError as exc:  # FormError, or a rule ExclusionRules refuses
        db().rollback()
        flash(f"Rules not applied: {exc}", "error")
    return redirect(url_for("researcher.study", study_id=study.id) + "#workers")


# -- downloads ---------------------------------------------------------------------------------------------


def _download(data: str | bytes, filename: str, mimetype: str) -> Response:
    response = Response(data, mimetype=mimetype)
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@bp.get("/studies/<int:study_id>/bonus.csv")
@login_required
def bonus(study_id: int):
    study = _own_study(study_id)
    from hype.platforms.sheets import bonus_sheet

    return _download(bonus_sheet(db(), study, "hype"), f"bonus-{study.slug}.csv", "text/csv")


@bp.get("/studies/<int:study_id>/report.html")
@login_required
def report(study_id: int):
    study = _own_study(study_id)
    from hype.report import build_report

    return _download(build_report(db(), config(), study), f"hype-report-{study.slug}.html", "text/html")


@bp.get("/studies/<int:study_id>/export.zip")
@login_required
def export(study_id: int):
    study = _own_study(study_id)
    from hype.exports import export_tables, export_zip_bytes

    fmt = request.args.get("format", "csv")
    if fmt not in ("csv", "json"):
        abort(400, description="format must be csv or json")
    bundle = export_tables(db(), study, raw_ids=request.args.get("raw_ids") == "1")
    return _download(export_zip_bytes(bundle, fmt), f"hype-export-{study.slug}-{fmt}.zip", "application/zip")
