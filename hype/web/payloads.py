"""Validation of the worker API's JSON bodies, with messages that name the field at fault.

Hand-written rather than a schema library because the rules are few and the error text is part of
the API: a crowd worker's browser (or a load test) must learn exactly which field was wrong.
"""

from __future__ import annotations

import math
from typing import Any

from flask import request

from hype.sessions import Answer, BrowserCheck, SessionError

MAX_MS = 3_600_000.0  # an hour: anything longer is not a measurement of one trial
MAX_MASKS = 16
MAX_TIMESTAMPS = 32


def json_body() -> dict[str, Any]:
    if not request.is_json:
        raise SessionError("Send a JSON body with Content-Type: application/json.", status=415, code="unsupported-media-type")
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise SessionError("The body must be a JSON object.", code="malformed-json")
    return body


def _number(body: dict[str, Any], name: str, *, required: bool = False, low: float = 0.0, high: float = MAX_MS) -> float | None:
    value = body.get(name)
    if value is None:
        if required:
            raise SessionError(f"Missing field: {name}.", code="missing-field")
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
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
        if len(key) > 40:
            raise SessionError("client_timestamps keys must be at most 40 characters.", code="bad-field")
        number = _number({key: value}, key, required=True, low=-1e13, high=1e13)
        assert number is not None
        clean_stamps[key] = number
    return Answer(
        trial_token=_string(body, "trial"),
        judged_fake=response == "fake",
        idempotency_key=_string(body, "idempotency_key", 64),
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
