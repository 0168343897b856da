"""The trial-image request behind nginx, answered before Flask is entered.

A worker's browser loads one trial image per judgment, and behind nginx the app's whole part is a
yes or no: may this session see this image now (counting the delivery if so)? Through Flask and the
ORM that yes costs about as much as a bare Flask handler that sends the file itself; here it is one
prepared SELECT and one UPDATE on a pooled DB-API connection, and an X-Accel-Redirect.

Only the plain yes is answered here. Anything else (a malformed URL, an image that may not be
shown, a database error) goes on to the Flask route, which checks again and answers as it always
does: the same 404s, retries and error pages, and nothing counted twice, since a delivery is counted
only where the file is handed over.
"""

from __future__ import annotations

import re
from typing import Any, Callable, Iterable

from sqlalchemy import Engine
from sqlalchemy.sql import Executable

from hype.config import Config
from hype.images import served_file
from hype.proxy.nginx import accel_path
from hype.sessions import COUNT_PRESENTATION, IMAGE_DELIVERY, may_deliver

_IMAGE_PATH = re.compile(r"/api/w/([A-Za-z0-9_-]{20,128})/img/([A-Za-z0-9_-]{1,64})")


class PreparedSql:
    """A Core statement compiled once for the engine's dialect, run on a raw DB-API cursor. The values
    given are plain ones named by bindparam (no type processing needed); the statement's own
    literals (the 1 of ``presentations + 1``) are bound once here."""

    def __init__(self, engine: Engine, statement: Executable):
        compiled = statement.compile(dialect=engine.dialect)
        self.sql = compiled.string
        self.names = tuple(compiled.positiontup or ()) if compiled.positional else None
        self.defaults = compiled.construct_params(_check=False)

    def params(self, values: dict[str, Any]) -> Any:
        bound = {**self.defaults, **values}
        return tuple(bound[name] for name in self.names) if self.names is not None else bound


class ImageGate:
    """WSGI middleware: GET /api/w/<token>/img/<image_token>, when allowed, without Flask."""

    def __init__(self, app: Callable, engine: Engine, config: Config):
        self.app = app
        self.engine = engine
        self.config = config
        self.lookup = PreparedSql(engine, IMAGE_DELIVERY)
        self.count = PreparedSql(engine, COUNT_PRESENTATION)

    def __call__(self, environ: dict[str, Any], start_response: Callable) -> Iterable[bytes]:
        match = _IMAGE_PATH.fullmatch(environ.get("PATH_INFO", "")) if environ.get("REQUEST_METHOD") == "GET" else None
        file_sha256 = self._deliver(*match.groups()) if match else None
        if file_sha256 is None:
            return self.app(environ, start_response)
        start_response("200 OK", [("Content-Type", "image/png"), ("Content-Length", "0"),
                                  ("Cache-Control", "private, no-store"), ("X-Accel-Redirect", accel_path(file_sha256))])
        return [b""]

    def _deliver(self, token: str, image_token: str) -> str | None:
        """The file to hand over, the delivery counted and committed; None to leave it to Flask."""
        try:
            connection = self.engine.raw_connection()
        except Exception:  # noqa: BLE001 - the Flask route retries and reports
            return None
        try:
            cursor = connection.cursor()
            cursor.execute(self.lookup.sql, self.lookup.params({"token": token, "image_token": image_token}))
            row = cursor.fetchone()
            if row is None or not may_deliver(*row[1:-1]):
                connection.rollback()
                return None
            served_file(self.config.image_store, self.config.served_dir, row[-1])
            cursor.execute(self.count.sql, self.count.params({"trial_id": row[0]}))
            connection.commit()
            return row[-1]
        except Exception:  # noqa: BLE001 - nothing was counted (rolled back): Flask does it properly
            try:
                connection.rollback()
            except Exception:  # noqa: BLE001
                pass
            return None
        finally:
            connection.close()
