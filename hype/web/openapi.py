"""The OpenAPI 3.1 description of the worker JSON API, served at ``GET /api/openapi.json``.

Built from the same constants the handlers validate with (hype/web/payloads.py, hype/web/worker_api.py),
so a changed bound changes the document too; tests/hostile/test_schemathesis.py fuzzes the running app
against it and fails on any 5xx, on an error without a JSON {error, message} body, and on a response
that does not match the schemas below. Response objects are closed (``additionalProperties: false``):
a field added to what the browser receives (say, a trial's label) breaks that test until it is
documented here, which is the point.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from flask import Blueprint, jsonify

from hype.sessions import ACTIVE_STAGES, FINISHED_STAGES
from hype.web import payloads
from hype.web.worker_api import API_MAX_BODY_BYTES, IMAGE_TOKEN_PATTERN, SLUG_PATTERN, TOKEN_PATTERN

bp = Blueprint("openapi", __name__, url_prefix="/api")

JSON = "application/json"
PNG = "image/png"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _error(description: str) -> dict[str, Any]:
    return {"description": description, "content": {JSON: {"schema": _ref("Error")}}}


def _json(description: str, schema: str) -> dict[str, Any]:
    return {"description": description, "content": {JSON: {"schema": _ref(schema)}}}


def _png(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "headers": {"Cache-Control": {"schema": {"type": "string", "const": "private, no-store"}}},
        "content": {PNG: {"schema": {"type": "string", "format": "binary"}}},
    }


def _body(schema: str) -> dict[str, Any]:
    return {"required": True, "content": {JSON: {"schema": _ref(schema)}}}


def _ms(high: float = payloads.MAX_MS, *, nullable: bool = False, description: str = "") -> dict[str, Any]:
    schema: dict[str, Any] = {"type": ["number", "null"] if nullable else "number", "minimum": 0, "maximum": high}
    if description:
        schema["description"] = description
    return schema


TOO_LARGE = _error(f"The body is larger than {API_MAX_BODY_BYTES:,} bytes.")
NOT_JSON = _error("The body is not sent as Content-Type: application/json.")
BAD_BODY = _error("The body is not a JSON object, or a field is missing or invalid; the message names the field.")
UNKNOWN_SESSION = _error("No session has this token (unknown-session).")
ABANDONED = _error("The session was idle for longer than the study allows and cannot be resumed (session-abandoned).")
DEFAULT = _error("Any other error (405 for a wrong method; 5xx should never happen), always as {error, message}.")

SLUG = {
    "name": "slug",
    "in": "path",
    "required": True,
    "description": "The study's handle from its worker link /s/{slug}.",
    "schema": {"type": "string", "pattern": SLUG_PATTERN},
}
TOKEN = {
    "name": "token",
    "in": "path",
    "required": True,
    "description": "The session token (secrets.token_urlsafe(32): 43 characters, 256 random bits); the only "
    "credential a worker's browser holds.",
    "schema": {"type": "string", "pattern": TOKEN_PATTERN},
}
IMAGE_TOKEN = {
    "name": "image_token",
    "in": "path",
    "required": True,
    "description": "A trial's opaque id (secrets.token_urlsafe(16): 22 characters, 128 random bits).",
    "schema": {"type": "string", "pattern": IMAGE_TOKEN_PATTERN},
}

_STATE_PROPERTIES: dict[str, Any] = {
    "stage": _ref("Stage"),
    "progress": _ref("Progress"),
    "url": {"type": "string", "pattern": "^/w/[A-Za-z0-9_-]+$", "description": "The worker page of this session."},
}

SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object",
        "required": ["error", "message"],
        "properties": {
            "error": {"type": "string", "minLength": 1, "description": "Machine-readable code, e.g. unknown-session."},
            "message": {"type": "string", "minLength": 1, "description": "What went wrong, for a person to read."},
        },
        "additionalProperties": False,
    },
    "Stage": {"type": "string", "enum": list(ACTIVE_STAGES + FINISHED_STAGES)},
    "Progress": {
        "type": "object",
        "required": ["done", "total"],
        "properties": {"done": {"type": "integer", "minimum": 0}, "total": {"type": "integer", "minimum": 0}},
        "additionalProperties": False,
        "description": "Answered / total trials of the current phase (the task's once past it).",
    },
    "SessionState": {
        "type": "object",
        "required": ["stage", "progress", "url"],
        "properties": _STATE_PROPERTIES,
        "additionalProperties": False,
    },
    "NewSession": {
        "type": "object",
        "required": ["token", "created", "stage", "progress", "url"],
        "properties": {
            "token": {"type": "string", "pattern": "^[A-Za-z0-9_-]{43}$"},
            "created": {"type": "boolean", "description": "false when an unfinished session was resumed."},
            **_STATE_PROPERTIES,
        },
        "additionalProperties": False,
    },
    "Trial": {
        "type": "object",
        "description": "One presentation. Nothing here depends on whether the image is real or fake.",
        "required": ["id", "image_url", "phase", "block", "timed", "exposure_ms", "countdown", "masks", "mask_ms", "feedback"],
        "properties": {
            "id": {"type": "string", "pattern": "^[A-Za-z0-9_-]{22}$"},
            "image_url": {"type": "string", "pattern": "^/api/w/[A-Za-z0-9_-]{43}/img/[A-Za-z0-9_-]{22}$"},
            "phase": {"type": "string", "enum": ["qualification", "task"]},
            "block": {"type": "integer", "minimum": 0},
            "timed": {"type": "boolean", "description": "HYPE-time task trials only."},
            "exposure_ms": _ms(nullable=True, description="Set by the server's staircase; null when untimed."),
            "countdown": {
                "type": ["object", "null"],
                "required": ["steps", "ms"],
                "properties": {"steps": {"type": "integer", "minimum": 0}, "ms": {"type": "number", "minimum": 0}},
                "additionalProperties": False,
            },
            "masks": {
                "type": "array",
                "items": {"type": "string", "pattern": "^/api/w/[A-Za-z0-9_-]+/masks/[0-9]+$"},
            },
            "mask_ms": _ms(nullable=True),
            "feedback": {"type": "boolean", "description": "Whether the answer's response carries correct/incorrect."},
        },
        "additionalProperties": False,
    },
    "TrialState": {
        "type": "object",
        "required": ["stage", "progress", "url", "trial", "preload"],
        "properties": {
            **_STATE_PROPERTIES,
            "trial": {
                "description": "The one trial that may be answered now; null outside the trial stages.",
                "anyOf": [_ref("Trial"), {"type": "null"}],
            },
            "preload": {
                "type": "array",
                "maxItems": 1,
                "items": {"type": "string", "pattern": "^/api/w/[A-Za-z0-9_-]{43}/img/[A-Za-z0-9_-]{22}$"},
                "description": "The next trial's image, to fetch while this one runs.",
            },
        },
        "additionalProperties": False,
    },
    "AnswerResult": {
        "type": "object",
        "required": ["recorded", "replayed", "feedback", "stage", "progress", "url", "next"],
        "properties": {
            "recorded": {"type": "boolean", "const": True},
            "replayed": {"type": "boolean", "description": "true when this idempotency key was already recorded."},
            "feedback": {
                "description": "Only where the protocol gives feedback (HYPE-time task), after recording.",
                "anyOf": [
                    {
                        "type": "object",
                        "required": ["correct"],
                        "properties": {"correct": {"type": "boolean"}},
                        "additionalProperties": False,
                    },
                    {"type": "null"},
                ],
            },
            **_STATE_PROPERTIES,
            "next": {
                **_ref("TrialState"),
                "description": "What GET /trial would return now: the trial to show next (served), so the "
                "runner needs no request between answers.",
            },
        },
        "additionalProperties": False,
    },
    "EntryRequest": {
        "type": "object",
        "required": ["consent"],
        "properties": {
            "consent": {"type": "boolean", "const": True, "description": "Taking part needs consent."},
            "params": {
                "type": "object",
                "maxProperties": 20,
                "additionalProperties": {"type": "string", "maxLength": 500},
                "description": "The study link's query parameters. workerId/assignmentId/hitId/turkSubmitTo (MTurk) "
                "or PROLIFIC_PID/STUDY_ID/SESSION_ID (Prolific) identify the worker; ids must be 1-200 of "
                "A-Z a-z 0-9 _ . : @ - and turkSubmitTo one of MTurk's two hosts (else 400 bad-identity). "
                "Without them the browser is identified by its signed cookie.",
            },
        },
    },
    "EmptyRequest": {"type": "object", "description": "No fields are read; the body must still be a JSON object."},
    "CheckRequest": {
        "type": "object",
        "required": ["refresh_interval_ms", "window_width", "window_height"],
        "properties": {
            "refresh_interval_ms": _ms(1000.0, description="Measured display frame interval. Outside the supported "
                                       "refresh rates the answer is 422 display-unsupported."),
            "window_width": {"type": "number", "minimum": 0, "maximum": 100_000},
            "window_height": {"type": "number", "minimum": 0, "maximum": 100_000},
        },
    },
    "AnswerRequest": {
        "type": "object",
        "required": ["trial", "response", "idempotency_key"],
        "properties": {
            "trial": {"type": "string", "pattern": payloads.TRIAL_ID_PATTERN, "description": "The current trial's id."},
            "response": {"type": "string", "enum": ["real", "fake"]},
            "idempotency_key": {
                "type": "string",
                "pattern": payloads.IDEMPOTENCY_KEY_PATTERN,
                "description": "Chosen by the client per answer; a retry with the same key is recorded once.",
            },
            "measured_ms": _ms(nullable=True, description="On-screen duration of the image as measured."),
            "mask_measured_ms": {"type": "array", "maxItems": payloads.MAX_MASKS, "items": _ms()},
            "refresh_interval_ms": _ms(1000.0, nullable=True),
            "reaction_ms": _ms(nullable=True),
            "focus_lost": {"type": "boolean"},
            "client_timestamps": {
                "type": "object",
                "maxProperties": payloads.MAX_TIMESTAMPS,
                "propertyNames": {"pattern": payloads.TIMESTAMP_KEY_PATTERN},
                "additionalProperties": {"type": "number", "minimum": -1e13, "maximum": 1e13},
            },
        },
    },
}

PATHS: dict[str, Any] = {
    "/api/s/{slug}/sessions": {
        "parameters": [SLUG],
        "post": {
            "operationId": "createSession",
            "summary": "Consent and start (or resume) this browser's session in a study.",
            "requestBody": _body("EntryRequest"),
            "responses": {
                "201": _json("A new session.", "NewSession"),
                "200": _json("This worker's unfinished session, resumed.", "NewSession"),
                "400": BAD_BODY,
                "403": _error("An MTurk preview (assignmentId=ASSIGNMENT_ID_NOT_AVAILABLE)."),
                "404": _error("No published study has this slug (unknown-study)."),
                "409": _error("Already taken part, or the study is closed, full or empty."),
                "410": ABANDONED,
                "413": TOO_LARGE,
                "415": NOT_JSON,
                "default": DEFAULT,
            },
        },
    },
    "/api/w/{token}": {
        "parameters": [TOKEN],
        "get": {
            "operationId": "getSession",
            "summary": "The session's stage and progress.",
            "responses": {"200": _json("The state.", "SessionState"), "404": UNKNOWN_SESSION, "410": ABANDONED, "default": DEFAULT},
        },
    },
    "/api/w/{token}/instructions": {
        "parameters": [TOKEN],
        "post": {
            "operationId": "finishInstructions",
            "summary": "The worker has read the instructions (idempotent).",
            "requestBody": _body("EmptyRequest"),
            "responses": {
                "200": _json("The state after.", "SessionState"),
                "400": BAD_BODY,
                "404": UNKNOWN_SESSION,
                "410": ABANDONED,
                "413": TOO_LARGE,
                "415": NOT_JSON,
                "default": DEFAULT,
            },
        },
    },
    "/api/w/{token}/check": {
        "parameters": [TOKEN],
        "post": {
            "operationId": "browserCheck",
            "summary": "Store the display measurements and move on to the trials.",
            "requestBody": _body("CheckRequest"),
            "responses": {
                "200": _json("The state after (unchanged when already past the check).", "SessionState"),
                "400": BAD_BODY,
                "404": UNKNOWN_SESSION,
                "410": ABANDONED,
                "409": _error("Instructions not read yet (wrong-stage)."),
                "413": TOO_LARGE,
                "415": NOT_JSON,
                "422": _error("Display or window unsuitable (display-unsupported, window-too-small)."),
                "default": DEFAULT,
            },
        },
    },
    "/api/w/{token}/trial": {
        "parameters": [TOKEN],
        "get": {
            "operationId": "currentTrial",
            "summary": "The trial to show now (its exposure fixed on first request), and the next image to preload.",
            "responses": {"200": _json("The trial, or null.", "TrialState"), "404": UNKNOWN_SESSION, "410": ABANDONED, "default": DEFAULT},
        },
    },
    "/api/w/{token}/answers": {
        "parameters": [TOKEN],
        "post": {
            "operationId": "answer",
            "summary": "Record the answer to the current trial, exactly once.",
            "requestBody": _body("AnswerRequest"),
            "responses": {
                "201": _json("Recorded.", "AnswerResult"),
                "200": _json("Already recorded under this idempotency key: the first outcome.", "AnswerResult"),
                "400": BAD_BODY,
                "403": _error("The trial belongs to another session (foreign-trial)."),
                "404": _error("Unknown session or trial."),
                "410": ABANDONED,
                "409": _error("Out of order, already answered, not shown yet, key reused or no trial expected."),
                "413": TOO_LARGE,
                "415": NOT_JSON,
                "default": DEFAULT,
            },
        },
    },
    "/api/w/{token}/img/{image_token}": {
        "parameters": [TOKEN, IMAGE_TOKEN],
        "get": {
            "operationId": "trialImage",
            "summary": "A trial's image, for this session only: its current or next trial (an answered one too "
            "when untimed). Each delivery counts as a presentation; a timed trial delivered twice is flagged.",
            "description": "Every image is an uncompressed (stored-deflate) PNG without ancillary chunks, so all "
            "images of a study have the same length and chunk layout.",
            "responses": {"200": _png("The image."), "404": _error("Not available (now)."), "default": DEFAULT},
        },
    },
    "/api/w/{token}/masks/{index}": {
        "parameters": [
            TOKEN,
            {"name": "index", "in": "path", "required": True, "schema": {"type": "integer", "minimum": 0}},
        ],
        "get": {
            "operationId": "maskImage",
            "summary": "One of the study's backward masks (HYPE-time).",
            "responses": {"200": _png("The mask."), "404": _error("Unknown session or no such mask."), "410": ABANDONED, "default": DEFAULT},
        },
    },
    "/api/w/{token}/examples/{kind}": {
        "parameters": [
            TOKEN,
            {"name": "kind", "in": "path", "required": True, "schema": {"type": "string", "enum": ["real", "fake"]}},
        ],
        "get": {
            "operationId": "exampleImage",
            "summary": "The instructions' example image of each kind, never one of this session's trials.",
            "responses": {"200": _png("The example."), "404": _error("Unknown session or no example."), "410": ABANDONED, "default": DEFAULT},
        },
    },
    "/api/openapi.json": {
        "get": {
            "operationId": "openapi",
            "summary": "This document.",
            "responses": {"200": {"description": "OpenAPI 3.1", "content": {JSON: {"schema": {"type": "object"}}}}},
        },
    },
}


@lru_cache(maxsize=1)
def openapi_document() -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "HYPE worker API",
            "version": "1",
            "description": "What a crowd worker's browser talks to (static/worker.js). A session token in the path "
            "is the only credential; there are no cookies to forge and no CSRF tokens. Write bodies are JSON "
            f"objects of at most {API_MAX_BODY_BYTES:,} bytes. Every error is a JSON object "
            "{error, message}. Nothing returned before an answer is recorded depends on whether an image is "
            "real or fake.",
        },
        "paths": PATHS,
        "components": {"schemas": SCHEMAS},
    }


@bp.get("/openapi.json")
def document():
    return jsonify(openapi_document())
