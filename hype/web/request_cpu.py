"""CPU per kind of request, counted inside each server process: what experiments/load_crowd.py uses
to say where the app servers' CPU goes at a person's pace.

A process tree's CPU from /proc says how much a crowd cost, not which requests cost it; a sampling
profiler is not installed on the CI machine. So, only when ``HYPE_REQUEST_CPU_DIR`` names a folder,
the outermost WSGI layer reads the thread's CPU clock around each request (the body's iteration and
close included) and adds it to its endpoint's total; every process writes its totals to
``<folder>/<pid>.json`` at most once a second and when it exits. What the server process spent
outside those requests (gunicorn's own HTTP handling, idle polling) is its /proc CPU less their sum.
Off (the default), nothing is wrapped and nothing is counted.
"""

from __future__ import annotations

import atexit
import json
import os
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

from werkzeug.exceptions import HTTPException
from werkzeug.routing import Map

ENV_VAR = "HYPE_REQUEST_CPU_DIR"
_DUMP_EVERY_S = 1.0


def install_if_asked(app: Any) -> None:
    """Wrap ``app.wsgi_app`` (outermost) when the environment asks for the counts."""
    folder = os.environ.get(ENV_VAR, "").strip()
    if folder:
        app.wsgi_app = RequestCpu(app.wsgi_app, app.url_map, Path(folder))


class RequestCpu:
    """WSGI middleware adding each request's thread CPU to its endpoint's total."""

    def __init__(self, app: Callable, url_map: Map, folder: Path):
        self.app = app
        self.url_map = url_map
        self.folder = folder
        self.folder.mkdir(parents=True, exist_ok=True)
        self.lock = threading.Lock()
        self.totals: dict[str, list[float]] = {}  # endpoint -> [requests, CPU seconds]
        self.naming_s = 0.0  # the counter's own cost (matching the URL), to subtract
        self.last_dump = 0.0
        atexit.register(self.dump)

    def endpoint(self, environ: dict[str, Any]) -> str:
        try:
            name, _ = self.url_map.bind_to_environ(environ).match()
        except HTTPException as exc:
            return f"({exc.code})"
        return str(name)

    def __call__(self, environ: dict[str, Any], start_response: Callable) -> Iterable[bytes]:
        begun = time.thread_time()
        name = self.endpoint(environ)
        named = time.thread_time()
        body = self.app(environ, start_response)
        wrapper = environ.get("wsgi.file_wrapper")
        if wrapper is not None and isinstance(body, wrapper):  # left as it is, so the server may sendfile() it
            self.add(name, time.thread_time() - named, named - begun)
            return body
        return _Counted(body, self, name, named, named - begun)

    def add(self, name: str, cpu_s: float, naming_s: float) -> None:
        with self.lock:
            entry = self.totals.setdefault(name, [0, 0.0])
            entry[0] += 1
            entry[1] += cpu_s
            self.naming_s += naming_s
            due = time.monotonic() - self.last_dump > _DUMP_EVERY_S
            if due:
                self.last_dump = time.monotonic()
        if due:
            self.dump()

    def dump(self) -> None:
        with self.lock:
            record = {"pid": os.getpid(), "process_cpu_s": time.process_time(), "naming_s": self.naming_s,
                      "endpoints": {name: {"requests": int(n), "cpu_s": s} for name, (n, s) in self.totals.items()}}
        path = self.folder / f"{os.getpid()}.json"
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(json.dumps(record))
        os.replace(tmp, path)


class _Counted:
    """The response body, passed through; the request's CPU is booked when the server closes it."""

    def __init__(self, body: Iterable[bytes], counter: RequestCpu, name: str, begun: float, naming_s: float):
        self.body, self.counter, self.name, self.begun, self.naming_s = body, counter, name, begun, naming_s

    def __iter__(self) -> Iterator[bytes]:
        return iter(self.body)

    def close(self) -> None:
        try:
            close = getattr(self.body, "close", None)
            if close is not None:
                close()
        finally:
            self.counter.add(self.name, time.thread_time() - self.begun, self.naming_s)


def read_totals(folder: Path) -> dict[str, dict[str, float]]:
    """Every process's totals summed: endpoint -> {"requests", "cpu_s"}, and "(naming)" for the
    counter's own URL matching."""
    out: dict[str, dict[str, float]] = {}
    naming = 0.0
    for path in Path(folder).glob("*.json"):
        record = json.loads(path.read_text())
        naming += record["naming_s"]
        for name, entry in record["endpoints"].items():
            into = out.setdefault(name, {"requests": 0, "cpu_s": 0.0})
            into["requests"] += entry["requests"]
            into["cpu_s"] += entry["cpu_s"]
    out["(naming)"] = {"requests": 0, "cpu_s": naming}
    return out
