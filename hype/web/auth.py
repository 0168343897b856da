"""Researcher sign-in. Every researcher route is wrapped in `login_required`; studies are then
filtered by owner in the views, so a signed-in researcher still sees only their own."""

from __future__ import annotations

from functools import wraps
from typing import Any, Callable, TypeVar

from flask import Blueprint, g, jsonify, redirect, render_template, request, session, url_for

from hype.accounts import authenticate, end_sessions
from hype.models import Researcher
from hype.web import db

bp = Blueprint("auth", __name__)

F = TypeVar("F", bound=Callable[..., Any])


def current_researcher() -> Researcher | None:
    """The signed-in researcher, if the cookie's epoch is still the account's: logout and a password
    reset move the epoch on, so a copied or stolen cookie stops working on the server side."""
    if "researcher" not in g:
        researcher_id = session.get("researcher_id")
        researcher = db().get(Researcher, researcher_id) if isinstance(researcher_id, int) else None
        if researcher is not None and session.get("epoch") != researcher.session_epoch:
            researcher = None
        g.researcher = researcher
    return g.researcher


def _wants_json() -> bool:
    return request.path.endswith(".json") or request.accept_mimetypes.best == "application/json"


def login_required(view: F) -> F:
    @wraps(view)
    def wrapped(*args: Any, **kwargs: Any):
        if current_researcher() is None:
            if _wants_json():
                return jsonify(error="unauthorized", message="Sign in first."), 401
            return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
        return view(*args, **kwargs)

    return wrapped  # type: ignore[return-value]


def _safe_next(target: str | None) -> str:
    """Only same-site paths, so the login form cannot be used as an open redirect."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return url_for("researcher.studies")


@bp.route("/login", methods=["GET", "POST"])
def login():
    error = None
    if request.method == "POST":
        researcher = authenticate(db(), request.form.get("email", ""), request.form.get("password", ""))
        if researcher is not None:
            session.clear()  # a fresh session on sign-in: nothing set before it carries over
            session["researcher_id"] = researcher.id
            session["epoch"] = researcher.session_epoch
            return redirect(_safe_next(request.form.get("next")))
        error = "Wrong e-mail or password."
    return render_template("researcher/login.html", error=error, next=request.values.get("next", "")), 401 if error else 200


@bp.post("/logout")
def logout():
    researcher = current_researcher()
    if researcher is not None:
        end_sessions(researcher)
        db().commit()
    session.clear()
    return redirect(url_for("auth.login"))
