"""Validation of the worker API's JSON bodies, with messages that name the field at fault.

Hand-written rather than a schema library because the rules are few and the error text is part of
the API: a crowd worker's browser (or a load test) must learn exactly which field was wrong.
"""

from __future__ import annotations

import math
import re
from typing import Any

from flask import request

from hype.sessions import Answer, BrowserCheck, SessionError

MAX_MS = 3_600_000.0  # an hour: anything longer is not a measurement of one trial
MAX_MASKS = 16
MAX_TIMESTAMPS = 32
# Opaque trial ids are secrets.token_urlsafe(16) (22 characters); the column holds up to 64.
TRIAL_ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
# Names the trial runner gives its timestamps (image_on, mask_on, ...).
TIMESTAMP_KEY_PATTERN = r"^[A-Za-z0-9_.:-]{1,40}$"
# The same rule hype.sessions applies, checked here with fullmatch so a trailing newline cannot pass.
IDEMPOTENCY_KEY_PATTERN = r"^[A-Za-z0-9_-]{8,64}$"
_TRIAL_ID = re.compile(TRIAL_ID_PATTERN)
_TIMESTAMP_KEY = re.compile(TIMESTAMP_KEY_PATTERN)
_IDEMPOTENCY_KEY = re.compile(IDEMPOTENCY_KEY_PATTERN)


def json_body() -> dict[str, Any]:
    if not request.is_json:
        raise SessionError("Send a JSON body with Content-Type: application/json.", status=415, code="unsupported-media-type")
    try:
        body = request.get_json(silent=True)
    except RecursionError:  # nesting deeper than the JSON decoder will go: malformed for this API
        body = None
    if not isinstance(body, dict):
        raise SessionError("The body must be a JSON object.", code="malformed-json")
    return body


def _number(body: dict[str, Any], name: str, *, required: bool = False, low: float = 0.0, high: float = MAX_MS) -> float | None:
    value = body.get(name)
    if value is None:
        if required:
            raise SessionError(f"Missing field: {name}.", code="missing-field")
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise SessionError(f"{name} must be a number.", code="bad-field")
    try:
        value = float(value)  # a JSON integer beyond float range raises OverflowError here
    except OverflowError:
        raise SessionError(f"{name} must be between {low:g} and {high:g}.", code="bad-field") from None
    if not math.isfinite(value):
        raise SessionError(f"{name} must be a number.", code="bad-field")
    if not low <= value <= high:
        raise SessionError(f"{name} must be between {low:g} and {high:g}.", code="bad-field")
    return float(value)


def _string(body: dict[str, Any], name: str, max_len: int = 128) -> str:
    value = body.get(name)
    if value is None:
        raise SessionError(f"Missing field: {name}.", code="missing-field")
    if not isinstance(value, str) or not value or len(value) > max_len:
        raise SessionError(f"{name} must be a non-empty string of at most {max_len} characters.", code="bad-field")
    return value


def _bool(body: dict[str, Any], name: str) -> bool:
    value = body.get(name, False)
    if not isinstance(value, bool):
        raise SessionError(f"{name} must be true or false.", code="bad-field")
    return value


def parse_answer(body: dict[str, Any]) -> Answer:
    response = _string(body, "response", 8)
    if response not in ("real", "fake"):
        raise SessionError('response must be "real" or "fake".', code="bad-field")
    masks = body.get("mask_measured_ms", [])
    if not isinstance(masks, list) or len(masks) > MAX_MASKS:
        raise SessionError(f"mask_measured_ms must be a list of at most {MAX_MASKS} numbers.", code="bad-field")
    mask_values = tuple(_number({"mask_measured_ms": m}, "mask_measured_ms", required=True) for m in masks)
    stamps = body.get("client_timestamps", {})
    if not isinstance(stamps, dict) or len(stamps) > MAX_TIMESTAMPS:
        raise SessionError(f"client_timestamps must be an object of at most {MAX_TIMESTAMPS} numbers.", code="bad-field")
    clean_stamps: dict[str, float] = {}
    for key, value in stamps.items():
        if not _TIMESTAMP_KEY.fullmatch(key):
            raise SessionError(
                "client_timestamps keys must be 1-40 letters, digits or _ . : - characters.", code="bad-field"
            )
        number = _number({key: value}, key, required=True, low=-1e13, high=1e13)
        assert number is not None
        clean_stamps[key] = number
    trial = _string(body, "trial", 64)
    if not _TRIAL_ID.fullmatch(trial):
        raise SessionError("trial must be the id the trial came with (letters, digits, _ or -).", code="bad-field")
    key = _string(body, "idempotency_key", 64)
    if not _IDEMPOTENCY_KEY.fullmatch(key):
        raise SessionError("idempotency_key must be 8-64 letters, digits, _ or -", code="bad-request")
    return Answer(
        trial_token=trial,
        judged_fake=response == "fake",
        idempotency_key=key,
        measured_ms=_number(body, "measured_ms"),
        mask_measured_ms=mask_values,
        refresh_interval_ms=_number(body, "refresh_interval_ms", low=0.0, high=1000.0),
        reaction_ms=_number(body, "reaction_ms"),
        focus_lost=_bool(body, "focus_lost"),
        client_timestamps=clean_stamps,
    )


def parse_check(body: dict[str, Any]) -> BrowserCheck:
    refresh = _number(body, "refresh_interval_ms", required=True, low=0.0, high=1000.0)
    width = _number(body, "window_width", required=True, low=0, high=100_000)
    height = _number(body, "window_height", required=True, low=0, high=100_000)
    assert refresh is not None and width is not None and height is not None
    return BrowserCheck(refresh_interval_ms=refresh, window_width=int(width), window_height=int(height))


def parse_entry_params(body: dict[str, Any]) -> dict[str, str]:
    """The study link's query parameters, as the consent page forwards them."""
    params = body.get("params", {})
    if not isinstance(params, dict) or len(params) > 20:
        raise SessionError("params must be an object of the study link's query parameters.", code="bad-field")
    if not all(isinstance(k, str) and isinstance(v, str) and len(v) <= 500 for k, v in params.items()):
        raise SessionError("params values must be strings.", code="bad-field")
    if body.get("consent") is not True:
        raise SessionError("Taking part needs consent: send consent: true.", code="consent-required")
    return params
