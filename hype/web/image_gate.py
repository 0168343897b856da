"""The trial-image and mask requests behind nginx, answered before Flask is entered.

A worker's browser loads one trial image per judgment (and a timed trial's masks), and behind nginx
the app's whole part is a yes or no: may this session see this image now (counting a trial image's
delivery if so)? Through Flask and the ORM that yes costs more than a bare Flask handler that sends
the file itself; here it is one prepared SELECT (and, for a trial image, one autocommitted UPDATE)
on a DB-API connection the gate keeps, and an X-Accel-Redirect.

Only the plain yes is answered here. Anything else (a malformed URL, an image that may not be
shown, a database error) goes on to the Flask route, which checks again and answers as it always
does: the same 404s, retries and error pages, and nothing counted twice, since a delivery is counted
only where the file is handed over.
"""

from __future__ import annotations

import re
from typing import Any, Callable, Iterable

from sqlalchemy import Engine

from hype.config import Config
from hype.direct_sql import KeptConnections, direct
from hype.images import served_file
from hype.proxy.nginx import accel_path
from hype.sessions import COUNT_PRESENTATION, IMAGE_DELIVERY, MASK_DELIVERY, TRIAL_STAGES, may_deliver

_IMAGE_PATH = re.compile(r"/api/w/([A-Za-z0-9_-]{20,128})/(img|masks)/([A-Za-z0-9_-]{1,64})")
_MASK_INDEX = re.compile(r"[0-9]{1,4}")


_HEADERS = (("Content-Type", "image/png"), ("Content-Length", "0"), ("Cache-Control", "private, no-store"))


class ImageGate:
    """WSGI middleware: GET /api/w/<token>/img/<image_token> and /api/w/<token>/masks/<index>, when
    allowed, without Flask."""

    def __init__(self, app: Callable, engine: Engine, config: Config):
        self.app = app
        self.engine = engine
        self.config = config
        self.lookup = direct(engine.dialect, IMAGE_DELIVERY)
        self.count = direct(engine.dialect, COUNT_PRESENTATION)
        self.mask = direct(engine.dialect, MASK_DELIVERY)
        # The gate's connections autocommit: the count is one statement, and a BEGIN and a COMMIT
        # would double the calls into the driver (each a round trip on PostgreSQL). The check and the
        # count were never one transaction (the SELECT locks nothing): an answer recorded between them
        # is the race a reload beside the answer always had, and the count, kept either way, flags
        # that trial.
        self.connections = KeptConnections(engine, autocommit=True)
        # Files known to have their served copy (made at publish and never removed): checked once.
        self.served: set[str] = set()

    def __call__(self, environ: dict[str, Any], start_response: Callable) -> Iterable[bytes]:
        match = _IMAGE_PATH.fullmatch(environ.get("PATH_INFO", "")) if environ.get("REQUEST_METHOD") == "GET" else None
        file_sha256 = None
        if match is not None:
            token, kind, name = match.groups()
            if kind == "img":
                file_sha256 = self._deliver(token, name)
            elif _MASK_INDEX.fullmatch(name):
                file_sha256 = self._mask(token, int(name))
        if file_sha256 is None:
            return self.app(environ, start_response)
        start_response("200 OK", [*_HEADERS, ("X-Accel-Redirect", accel_path(file_sha256))])
        return [b""]

    def _deliver(self, token: str, image_token: str) -> str | None:
        """The file to hand over, the delivery counted and committed; None to leave it to Flask."""
        try:
            connection = self.connections.take()
        except Exception:  # noqa: BLE001 - the Flask route retries and reports
            return None
        try:
            cursor = connection.cursor()
            cursor.execute(self.lookup.sql, self.lookup.params(token=token, image_token=image_token))
            row = cursor.fetchone()
            if row is None or not may_deliver(*row[1:-1]):
                self.connections.give(connection)
                return None
            file_sha256 = row[-1]
            self._ensure_served(file_sha256)
            cursor.execute(self.count.sql, self.count.params(trial_id=row[0]))  # autocommitted
            self.connections.give(connection)
            return file_sha256
        except Exception:  # noqa: BLE001 - nothing was counted: Flask does it properly
            self.connections.discard(connection)
            return None

    def _mask(self, token: str, index: int) -> str | None:
        """The session's study's index-th mask, while the session is in a trial stage; None to leave
        it to Flask (which says why not: no such session or mask, a session that has ended)."""
        try:
            connection = self.connections.take()
        except Exception:  # noqa: BLE001
            return None
        try:
            cursor = connection.cursor()
            cursor.execute(self.mask.sql, self.mask.params(token=token, index=index))
            row = cursor.fetchone()
            if row is None or row[0] not in TRIAL_STAGES:
                self.connections.give(connection)
                return None
            self._ensure_served(row[1])
            self.connections.give(connection)  # after the last thing that may fail: never closed once given
            return row[1]
        except Exception:  # noqa: BLE001
            self.connections.discard(connection)
            return None

    def _ensure_served(self, file_sha256: str) -> None:
        if file_sha256 not in self.served:
            served_file(self.config.image_store, self.config.served_dir, file_sha256)
            self.served.add(file_sha256)
