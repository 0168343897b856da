"""Web layer: thin views over the pure modules and the study services."""

from __future__ import annotations

from typing import TYPE_CHECKING

from flask import Flask, current_app, g
from sqlalchemy.orm import Session

from hype.config import Config

if TYPE_CHECKING:
    from flask_wtf.csrf import CSRFProtect


def db() -> Session:
    """The request's session, opened on first use and closed at teardown."""
    if "db" not in g:
        g.db = current_app.extensions["hype.sessions"]()
    return g.db


def config() -> Config:
    return current_app.extensions["hype.config"]


def external_url(endpoint: str, **values) -> str:
    """An absolute URL for workers and platforms: under HYPE_PUBLIC_URL when set (the address the
    world uses behind a reverse proxy), else the request's own address (as ProxyFix reports it)."""
    from flask import request, url_for

    public = config().public_url
    if not public:
        return url_for(endpoint, _external=True, **values)
    path = url_for(endpoint, **values)
    root = request.script_root
    if root and path.startswith(root):
        path = path[len(root):]
    return public + path


def register_blueprints(app: Flask, csrf: "CSRFProtect") -> None:
    from hype.web.auth import bp as auth_bp
    from hype.web.researcher import bp as researcher_bp
    from hype.web.worker import bp as worker_bp
    from hype.web.worker_api import bp as worker_api_bp

    app.register_blueprint(worker_bp)
    # The worker API authenticates by the session token in its path, never by a cookie, so a
    # cross-site page cannot act for a worker and CSRF tokens would only get in the way.
    csrf.exempt(worker_api_bp)
    app.register_blueprint(worker_api_bp)
    app.register_blueprint(auth_bp)
    app.register_blueprint(researcher_bp)
    from hype.web.platforms import bp as platforms_bp

    app.register_blueprint(platforms_bp)
    from hype.web.jobs import bp as jobs_bp

    app.register_blueprint(jobs_bp)
    from hype.web.openapi import bp as openapi_bp  # GET /api/openapi.json, the worker API's description

    app.register_blueprint(openapi_bp)
