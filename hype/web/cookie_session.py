"""The signed session cookie, left alone by the worker API's session routes.

Everything under /api/w/<token>/ is authorised by the token in its path (the worker API keeps no
ambient credential, hence its CSRF exemption), and none of it reads or writes the cookie: only entry
(/api/s/<slug>/sessions) keeps a plain link's anonymous id there. Flask still opens the cookie on
every request, before it even knows the route (an HMAC check and a JSON decode when the browser sends
one, as every plain-link worker's browser does), and considers saving it after; on an answer that
is work for nothing. These requests get Flask's null session instead, which is never saved.
"""

from __future__ import annotations

from flask import Flask, Request
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface

COOKIELESS_PREFIX = "/api/w/"


class WorkerApiSessionInterface(SecureCookieSessionInterface):
    def open_session(self, app: Flask, request: Request) -> SecureCookieSession | None:
        if request.path.startswith(COOKIELESS_PREFIX):
            return self.make_null_session(app)
        return super().open_session(app, request)
