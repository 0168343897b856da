"""A local HTTP stand-in for the Prolific endpoints hype uses, as Prolific documents them
(docs.prolific.com/api-reference: studies, transitions, submissions, bulk bonus payments).

It checks what the real client sends (token header, paths, body fields and their types), pages the
submission list with `_links.next.href`, and can be told to answer 429 / 5xx a given number of
times, so back-off and "never pay twice" are exercised over real HTTP.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

TOKEN = "test-token-123"


@dataclass
class Call:
    method: str
    path: str
    query: dict[str, list[str]]
    body: Any


@dataclass
class ProlificStandIn:
    page_size: int = 2
    studies: dict[str, dict[str, Any]] = field(default_factory=dict)
    submissions: list[dict[str, Any]] = field(default_factory=list)
    bulk: dict[str, dict[str, Any]] = field(default_factory=dict)
    paid: list[tuple[str, str]] = field(default_factory=list)  # (participant id, amount) actually paid
    calls: list[Call] = field(default_factory=list)
    # (method, path prefix) -> list of statuses to answer before serving normally
    faults: dict[tuple[str, str], list[tuple[int, dict[str, str]]]] = field(default_factory=dict)
    url: str = ""
    pay_then_fail: int = 0  # pay calls that pay, then answer 503 (the answer lost on the way back)

    def fail_next(self, method: str, prefix: str, status: int, times: int = 1, headers: dict[str, str] | None = None) -> None:
        self.faults.setdefault((method, prefix), []).extend([(status, headers or {})] * times)

    def calls_to(self, method: str, fragment: str) -> list[Call]:
        return [c for c in self.calls if c.method == method and fragment in c.path]

    def add_submission(self, participant_id: str, status: str = "AWAITING REVIEW", study_code: str | None = None) -> str:
        sid = f"sub{len(self.submissions):04d}"
        self.submissions.append({"id": sid, "participant_id": participant_id, "status": status, "study_code": study_code,
                                 "started_at": "2026-11-29T10:00:00Z"})
        return sid


class _Handler(BaseHTTPRequestHandler):
    server: "_Server"

    def log_message(self, *args: Any) -> None:  # quiet
        pass

    def _send(self, status: int, body: Any = None, headers: dict[str, str] | None = None) -> None:
        data = b"" if body is None else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def _handle(self, method: str) -> None:
        state = self.server.state
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        body = json.loads(raw) if raw else None
        state.calls.append(Call(method, parts.path, parse_qs(parts.query), body))
        if self.headers.get("Authorization") != f"Token {TOKEN}":
            return self._send(401, {"error": {"detail": "Invalid token."}})
        for (m, prefix), queue in state.faults.items():
            if m == method and parts.path.startswith(prefix) and queue:
                status, headers = queue.pop(0)
                return self._send(status, {"error": {"detail": "try later"}}, headers)
        try:
            status, answer = route(state, method, parts.path, parse_qs(parts.query), body)
        except BadRequest as exc:
            return self._send(400, {"error": {"detail": str(exc)}})
        self._send(status, answer)

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_PATCH(self) -> None:
        self._handle("PATCH")


class BadRequest(Exception):
    pass


def _need(body: Any, name: str, kind: type | tuple[type, ...]) -> Any:
    if not isinstance(body, dict) or name not in body:
        raise BadRequest(f"{name} is required")
    value = body[name]
    if not isinstance(value, kind) or isinstance(value, bool):
        raise BadRequest(f"{name} has the wrong type")
    return value


def route(state: ProlificStandIn, method: str, path: str, query: dict[str, list[str]], body: Any) -> tuple[int, Any]:
    seg = [p for p in path.split("/") if p]
    assert seg[:2] == ["api", "v1"], path
    seg = seg[2:]
    if method == "POST" and seg == ["studies"]:
        for name in ("name", "internal_name", "description", "external_study_url", "prolific_id_option"):
            _need(body, name, str)
        for name in ("total_available_places", "estimated_completion_time", "reward"):
            if _need(body, name, int) < 1:
                raise BadRequest(f"{name} must be positive")
        if "{{%PROLIFIC_PID%}}" not in body["external_study_url"]:
            raise BadRequest("external_study_url must carry {{%PROLIFIC_PID%}} with prolific_id_option url_parameters")
        codes = _need(body, "completion_codes", list)
        if not codes:
            raise BadRequest("completion_codes is required")
        for c in codes:
            _need(c, "code", str), _need(c, "code_type", str)
            if c["code_type"] not in ("COMPLETED", "FAILED_ATTENTION_CHECK", "FOLLOW_UP_STUDY", "GIVE_BONUS", "INCOMPATIBLE_DEVICE", "NO_CONSENT", "OTHER"):
                raise BadRequest("unknown code_type")
            for a in _need(c, "actions", list):
                if _need(a, "action", str) not in ("AUTOMATICALLY_APPROVE", "MANUALLY_REVIEW", "AUTOMATICALLY_REJECT", "REQUEST_RETURN", "ADD_TO_PARTICIPANT_GROUP"):
                    raise BadRequest("unknown action")
        sid = f"study{len(state.studies):04d}"
        state.studies[sid] = {**body, "id": sid, "status": "UNPUBLISHED"}
        return 201, state.studies[sid]
    if seg[:1] == ["studies"] and len(seg) == 3 and seg[2] == "transition" and method == "POST":
        study = state.studies.get(seg[1])
        if study is None:
            return 404, {"error": {"detail": "Not found."}}
        if _need(body, "action", str) != "PUBLISH":
            raise BadRequest("unsupported action")
        study["status"] = "ACTIVE"
        return 200, study
    if seg[:1] == ["studies"] and len(seg) == 2 and method == "GET":
        study = state.studies.get(seg[1])
        if study is None:
            return 404, {"error": {"detail": "Not found."}}
        taken = sum(1 for s in state.submissions if s["status"] in ("RESERVED", "ACTIVE", "AWAITING REVIEW", "APPROVED"))
        return 200, {**study, "places_taken": taken}
    if seg[:1] == ["studies"] and len(seg) == 2 and method == "PATCH":
        study = state.studies[seg[1]]
        places = _need(body, "total_available_places", int)
        if places < study["total_available_places"]:
            raise BadRequest("places can only grow")
        study["total_available_places"] = places
        return 200, study
    if seg == ["submissions"] and method == "GET":
        study = query.get("study", [None])[0]
        if study not in state.studies:
            raise BadRequest("study is required")
        page = int(query.get("page", ["1"])[0])
        start = (page - 1) * state.page_size
        rows = state.submissions[start:start + state.page_size]
        more = start + state.page_size < len(state.submissions)
        nxt = {"href": f"{state.url}/api/v1/submissions/?study={study}&page={page + 1}"} if more else {"href": None}
        return 200, {"results": rows, "_links": {"self": {"href": path}, "next": nxt}, "meta": {"count": len(state.submissions)}}
    if seg[:1] == ["submissions"] and len(seg) == 3 and method == "POST":
        sub = next((s for s in state.submissions if s["id"] == seg[1]), None)
        if sub is None:
            return 404, {"error": {"detail": "Not found."}}
        if sub["status"] != "AWAITING REVIEW":
            raise BadRequest(f"submission is {sub['status']}")
        if seg[2] == "transition":
            if _need(body, "action", str) != "APPROVE":
                raise BadRequest("only APPROVE here")
            sub["status"] = "APPROVED"
            return 200, sub
        if seg[2] == "request-return":
            reasons = _need(body, "request_return_reasons", list)
            if not reasons or not all(isinstance(r, str) for r in reasons):
                raise BadRequest("request_return_reasons must be a list of strings")
            sub["status"] = "AWAITING REVIEW"  # the participant has to act; it stays until they do
            sub["return_requested"] = reasons
            return 200, sub
    if seg == ["submissions", "bonus-payments"] and method == "POST":
        study = _need(body, "study_id", str)
        if study not in state.studies:
            raise BadRequest("unknown study")
        rows = []
        for line in _need(body, "csv_bonuses", str).splitlines():
            pid, amount = line.split(",")
            if not any(s["participant_id"] == pid for s in state.submissions):
                raise BadRequest(f"{pid} did not take part")
            if "." not in amount or len(amount.split(".")[1]) != 2:
                raise BadRequest("amount must be a decimal like 1.50")
            rows.append((pid, amount))
        bid = f"bulk{len(state.bulk):04d}"
        state.bulk[bid] = {"id": bid, "study": study, "rows": rows, "paid": False}
        return 201, {"id": bid, "study": study, "total_amount": sum(round(float(a) * 100) for _, a in rows)}
    if seg[:1] == ["bulk-bonus-payments"] and len(seg) == 3 and seg[2] == "pay" and method == "POST":
        batch = state.bulk.get(seg[1])
        if batch is None:
            return 404, {"error": {"detail": "Not found."}}
        state.paid.extend(batch["rows"])  # Prolific: NOT idempotent; paying twice pays twice
        batch["paid"] = True
        if state.pay_then_fail:
            state.pay_then_fail -= 1
            return 503, {"error": {"detail": "upstream timeout"}}
        return 202, None
    return 404, {"error": {"detail": f"no route {method} {path}"}}


class _Server(ThreadingHTTPServer):
    state: ProlificStandIn


def serve(state: ProlificStandIn):
    server = _Server(("127.0.0.1", 0), _Handler)
    server.state = state
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return server
