"""Web layer: thin views over the pure modules and the study services."""

from __future__ import annotations

from flask import Flask, current_app, g
from sqlalchemy.orm import Session

from hype.config import Config


def db() -> Session:
    """The request's session, opened on first use and closed at teardown."""
    if "db" not in g:
        g.db = current_app.extensions["hype.sessions"]()
    return g.db


def config() -> Config:
    return current_app.extensions["hype.config"]


def register_blueprints(app: Flask) -> None:
    from hype.web.worker import bp as worker_bp

    app.register_blueprint(worker_bp)
