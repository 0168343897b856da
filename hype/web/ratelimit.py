"""Limits on failed sign-ins (Flask-Limiter), so a password cannot be guessed by brute force.

Only failed attempts count (anything but the redirect a successful sign-in answers with): per client
address, and per account named in the form, so that neither many guesses from one place nor guesses
at one account from many places get far. Past a limit even the right password is refused until the
window moves on.

Storage: HYPE_REDIS_URL when set, shared by every server process (gunicorn's workers, several
machines). Otherwise in-process memory: exact for `hype serve` (one process, threads), but with
`hype serve --production` each of the N gunicorn processes counts on its own, so an attacker gets
up to N times the limit; `hype serve --production` says so when it starts without Redis. (Flask-
Limiter's storages are memory, Redis/Valkey, Memcached and MongoDB: none lives in the embedded
SQLite database, and a hand-written one was not worth its risk.)
"""

from __future__ import annotations

from functools import partial

from flask import Flask, Response, render_template, request
from flask_limiter import Limiter
from flask_limiter.errors import RateLimitExceeded
from flask_limiter.util import get_remote_address

from hype.config import Config

SIGN_IN_ENDPOINT = "auth.login"  # the one limited view
FAILED_SIGN_INS_PER_ADDRESS = "10 per 15 minutes"
FAILED_SIGN_INS_PER_ACCOUNT = "20 per hour"
TOO_MANY = "Too many failed sign-ins. Wait 15 minutes and try again, or ask an administrator to reset the password."


def storage_uri(config: Config) -> str:
    return config.redis_url or "memory://"


def _account_key() -> str:
    return "account:" + (request.form.get("email") or "").strip().lower()[:320]


def _failed(response: Response) -> bool:
    return response.status_code != 302


def _too_many(exc: RateLimitExceeded):
    if request.endpoint == SIGN_IN_ENDPOINT:
        return render_template("researcher/login.html", error=TOO_MANY, next=request.values.get("next", "")), 429
    return exc


def _hooks_only_for(app: Flask, limiter: Limiter, blueprint: str) -> None:
    """Move the before/after/teardown request hooks Limiter(app=...) registered app-wide into one
    blueprint's scope (Flask runs a blueprint's hooks for that blueprint's requests only)."""

    def mine(fn) -> bool:
        return getattr(fn, "__self__", None) is limiter or (isinstance(fn, partial) and limiter in fn.args)

    for hooks in (app.before_request_funcs, app.after_request_funcs, app.teardown_request_funcs):
        app_wide = hooks.get(None, [])
        moved = [fn for fn in app_wide if mine(fn)]
        if len(moved) != 1:  # pragma: no cover - a Flask-Limiter that registers otherwise: keep it app-wide
            continue
        app_wide.remove(moved[0])
        hooks.setdefault(blueprint, []).extend(moved)


def install(app: Flask, config: Config) -> Limiter:
    """One limiter per app (tests build many apps; each keeps its own counters unless they share Redis)."""
    limiter = Limiter(get_remote_address, app=app, storage_uri=storage_uri(config), strategy="moving-window",
                      key_prefix="hype-signin", headers_enabled=False)
    # Only the sign-in view has limits: every other request skips the limiter. Its filter runs inside
    # three hooks that first resolve the view, the limits and a context (55-65 us a request), so the
    # hooks run only for the sign-in view's blueprint.
    limiter.request_filter(lambda: request.endpoint != SIGN_IN_ENDPOINT)
    _hooks_only_for(app, limiter, SIGN_IN_ENDPOINT.split(".")[0])
    view = app.view_functions[SIGN_IN_ENDPOINT]
    view = limiter.limit(FAILED_SIGN_INS_PER_ADDRESS, methods=["POST"], deduct_when=_failed)(view)
    view = limiter.limit(FAILED_SIGN_INS_PER_ACCOUNT, key_func=_account_key, methods=["POST"], deduct_when=_failed,
                         scope="account")(view)
    app.view_functions[SIGN_IN_ENDPOINT] = view
    app.register_error_handler(RateLimitExceeded, _too_many)
    app.extensions["hype.limiter"] = limiter
    return limiter
