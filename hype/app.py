"""Flask application factory."""

from __future__ import annotations

from typing import Any

from flask import Flask, g, jsonify, request
from flask_wtf.csrf import CSRFProtect
from werkzeug.exceptions import HTTPException

from hype.config import Config, load_config
from hype.db import make_engine, make_session_factory
from hype.direct_sql import KeptConnections
from hype.sessions import SessionError

PROJECT_ROOT_TEMPLATES = "templates"


def create_app(config: Config | None = None, **overrides: Any) -> Flask:
    config = config or load_config(**overrides)
    import hype

    root = _project_root(hype.__file__)
    app = Flask(
        "hype",
        template_folder=str(root / "templates"),
        static_folder=str(root / "static"),
        static_url_path="/static",
    )
    app.config.update(
        SECRET_KEY=config.secret_key,
        MAX_CONTENT_LENGTH=config.max_upload_bytes,
        TESTING=config.testing,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        JSON_SORT_KEYS=False,
    )
    if config.public_url:
        app.config["PREFERRED_URL_SCHEME"] = config.public_url.split(":", 1)[0]
        app.config["SESSION_COOKIE_SECURE"] = config.public_url.startswith("https://")
    # Behind `hype nginx-config`'s nginx there is at least its one hop.
    n = config.trusted_proxies or (1 if config.behind_nginx else 0)
    if n > 0:
        # Only as many hops as the operator says sit in front: a client cannot forge its own headers past them.
        from werkzeug.middleware.proxy_fix import ProxyFix

        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n, x_host=n, x_prefix=n)  # type: ignore[method-assign]
    app.extensions["hype.config"] = config
    from hype.web.cookie_session import WorkerApiSessionInterface

    app.session_interface = WorkerApiSessionInterface()
    engine = make_engine(config.database_url, pool_size=config.extra.get("pool_size"))
    app.extensions["hype.engine"] = engine
    app.extensions["hype.sessions"] = make_session_factory(engine)
    # The usual answer's own connections (hype.answer_rows): no ORM session, no pool checkout per answer.
    app.extensions["hype.answer_connections"] = KeptConnections(engine, autocommit=False)

    @app.teardown_appcontext
    def _close_session(exc: BaseException | None) -> None:
        session = g.pop("db", None)
        if session is not None:
            if exc is not None:
                session.rollback()
            session.close()

    # Worker pages may be framed by MTurk (ExternalQuestion shows them in an iframe); nothing else may
    # frame anything here. Built once: every response carries them.
    def csp(ancestors: str) -> str:
        return ("default-src 'self'; img-src 'self' data: blob:; style-src 'self'; script-src 'self'; "
                f"connect-src 'self'; frame-ancestors {ancestors}; base-uri 'none'; "
                "form-action 'self' https://www.mturk.com https://workersandbox.mturk.com")

    worker_csp = csp("'self' https://www.mturk.com https://workersandbox.mturk.com")
    other_csp = csp("'self'")

    @app.after_request
    def _security_headers(response):
        worker_page = request.blueprint == "worker"
        headers = response.headers
        headers.setdefault("Content-Security-Policy", worker_csp if worker_page else other_csp)
        headers.setdefault("X-Content-Type-Options", "nosniff")
        if not worker_page:
            headers.setdefault("X-Frame-Options", "SAMEORIGIN")
        headers.setdefault("Referrer-Policy", "no-referrer")
        return response

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):
        if request.path.startswith("/api/"):
            code = (exc.name or "error").lower().replace(" ", "-")
            return jsonify(error=code, message=exc.description), exc.code
        return exc

    @app.errorhandler(SessionError)
    def _session_error(exc: SessionError):
        session = g.get("db")
        if session is not None:
            if exc.keep_changes:
                try:
                    session.commit()
                except Exception:  # the refusal still stands; the change is made the next time
                    session.rollback()
            else:
                session.rollback()
        if request.path.startswith("/api/"):
            return jsonify(error=exc.code, message=exc.message), exc.status
        from hype.web.worker import render_session_error

        return render_session_error(exc)

    @app.get("/favicon.ico")
    def _favicon():
        # Browsers ask for it on every site; a 404 there is noise in every log and console.
        return app.send_static_file("favicon.ico"), 200, {"Cache-Control": "public, max-age=86400"}

    csrf = CSRFProtect(app)
    from hype.web import register_blueprints

    register_blueprints(app, csrf)
    if config.behind_nginx:
        # Trial images, the one request per judgment besides the answer, answered before Flask.
        from hype.web.image_gate import ImageGate

        app.wsgi_app = ImageGate(app.wsgi_app, engine, config)  # type: ignore[method-assign]
    from hype.web import ratelimit

    ratelimit.install(app, config)
    from hype.web import request_cpu

    request_cpu.install_if_asked(app)  # outermost; only when HYPE_REQUEST_CPU_DIR asks (experiments/load_crowd.py)
    return app


def _project_root(package_file: str):
    """templates/ and static/ live beside the package (repository layout), found from the package path."""
    from pathlib import Path

    return Path(package_file).resolve().parent.parent


def config_of(app: Flask) -> Config:
    return app.extensions["hype.config"]
