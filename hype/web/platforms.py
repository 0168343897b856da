"""Dashboard actions for crowd platforms (the same steps as `hype prolific|mturk ...`), the pay
estimate behind the new-study form, and bonus sheets in each platform's format.

Clients come from `app.extensions["hype.platform_clients"]` when set (tests put stand-ins there),
else from the server's environment: HYPE_PROLIFIC_TOKEN, and boto3's usual AWS credentials.
"""

from __future__ import annotations

from typing import Any, Callable

from flask import Blueprint, abort, current_app, flash, jsonify, redirect, request, url_for

from hype import effort
from hype.platforms import PlatformError, service
from hype.platforms.sheets import FORMATS, bonus_sheet
from hype.protocol import SettingsError, StudySettings
from hype.studies import StudyError
from hype.web import config, db, external_url
from hype.web.auth import login_required
from hype.settings_form import EDITABLE_WHILE_RUNNING, merge, settings_from_form
from hype.studies import has_started, study_settings
from hype.web.researcher import _download, _own_study

bp = Blueprint("platforms", __name__)

ACTIONS = {"prolific": ("create", "publish", "sync", "pay"), "mturk": ("create", "sync", "pay")}


def _client(platform: str, production: bool = False):
    factory: Callable[..., Any] | None = current_app.extensions.get("hype.platform_clients")
    if factory is not None:
        return factory(platform, production=production)
    if platform == "prolific":
        from hype.platforms.prolific import ProlificClient

        return ProlificClient.from_env()
    from hype.platforms.mturk import make_client

    return make_client(production=production)


@bp.post("/studies/<int:study_id>/platforms/<platform>/<action>")
@login_required
def act(study_id: int, platform: str, action: str):
    study = _own_study(study_id)
    if action not in ACTIONS.get(platform, ()):
        abort(404)
    production = platform == "mturk" and request.form.get("production") == "on"
    where = url_for("researcher.study", study_id=study.id) + "#platforms"
    try:
        if action == "create" and not config().public_url:
            raise PlatformError("set HYPE_PUBLIC_URL (the https:// address workers reach this server at) before listing the study")
        client = _client(platform, production)
        link = external_url("worker.start", slug=study.slug)
        message = _run(platform, action, study, client, link, production)
        flash(message)
    except (PlatformError, StudyError) as exc:
        db().rollback()
        flash(f"{platform.capitalize()} {action} failed: {exc}", "error")
    except Exception as exc:  # botocore's credential and service errors
        if not (type(exc).__module__ or "").startswith("botocore"):
            raise
        db().rollback()
        flash(f"MTurk {action} failed: {exc}", "error")
    return redirect(where)


def _run(platform: str, action: str, study, client, link: str, production: bool) -> str:
    session = db()
    if platform == "prolific":
        if action == "create":
            record, created = service.prolific_create(session, study, client, link=link)
            return f"Prolific draft study {record.external_id} {'created' if created else 'exists'}: {record.places} places. Check it on Prolific, then publish."
        if action == "publish":
            record = service.prolific_publish(session, study, client)
            return f"Prolific study {record.external_id} published ({record.status})."
        if action == "sync":
            return f"Prolific sync: {service.prolific_sync(session, study, client).summary()}."
        return f"Prolific bonuses: {service.prolific_pay(session, study, client).summary()}."
    if action == "create":
        record, created = service.mturk_create(session, study, client, link=link, production=production)
        return f"MTurk HIT {record.external_id} {'created' if created else 'exists'} ({'sandbox' if record.sandbox else 'production'}): {record.places} assignments."
    if action == "sync":
        return f"MTurk sync: {service.mturk_sync(session, study, client, production=production).summary()}."
    return f"MTurk bonuses: {service.mturk_pay(session, study, client, production=production).summary()}."


@bp.get("/studies/new/pay.json")
@login_required
def pay_estimate():
    """The settings forms' live time / pay / hourly figures, computed by hype.effort from the form's
    values (laid over a study's own settings when `study` names one, as its edit form does)."""
    try:
        settings = form_settings(request.args, _own_study(int(request.args["study"])) if request.args.get("study") else None)
    except (SettingsError, StudyError, ValueError) as exc:
        return jsonify(error=str(exc)), 400
    return jsonify(pay_figures(settings))


def form_settings(form, study=None) -> StudySettings:
    """Settings a new-study or edit form describes: for an edit, only what may still change is read."""
    if study is None:
        mode = form.get("mode") or "hype-infinity"
        return StudySettings.from_dict({**settings_from_form(form, mode=mode), "mode": mode})
    only = EDITABLE_WHILE_RUNNING if has_started(db(), study) else None
    return StudySettings.from_dict(merge(study_settings(study).to_dict(), settings_from_form(form, only=only, mode=study.mode)))


def pay_figures(settings: StudySettings, pay: effort.PayEstimate | None = None) -> dict[str, Any]:
    pay = pay or effort.expected_pay(settings)
    minimum = config().min_hourly_usd
    return {
        "minutes": pay.rounded_minutes,
        "base_usd": pay.base_usd,
        "base_hourly_usd": round(pay.base_hourly_usd, 2),
        "floor_hourly_usd": round(pay.floor_hourly_usd, 2),
        "max_bonus_usd": pay.max_bonus_usd,
        "min_hourly_usd": minimum,
        "source": pay.source,
        "n_sessions": pay.n_sessions,
        "warning": pay.warning(minimum),
    }


@bp.get("/studies/<int:study_id>/bonus-<fmt>.csv")
@login_required
def bonus(study_id: int, fmt: str):
    study = _own_study(study_id)
    if fmt not in FORMATS:
        abort(404)
    return _download(bonus_sheet(db(), study, fmt), f"bonus-{fmt}-{study.slug}.csv", "text/csv")


def study_panel(study) -> dict[str, Any]:
    """What the study page shows about pay and platforms."""
    from hype.monitoring import finished_session_seconds

    settings = study_settings(study)
    measured = effort.measured_pay(settings, finished_session_seconds(db(), study))
    return {
        "expected": pay_figures(settings),
        "measured": pay_figures(settings, measured) if measured else None,
        "prolific": service.listing(db(), study, "prolific"),
        "mturk": service.listing(db(), study, "mturk"),
        "public_url": config().public_url,
        "formats": FORMATS,
    }


def form_pay(form, study=None) -> dict[str, Any] | None:
    """A settings form's pay figures for the values it shows (None while they are invalid)."""
    if not form:
        return pay_figures(study_settings(study) if study is not None else StudySettings())
    try:
        return pay_figures(form_settings(form, study))
    except (SettingsError, StudyError, ValueError):
        return None
