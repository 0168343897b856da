"""Schemathesis against the worker API's own OpenAPI document (GET /api/openapi.json), in-process (WSGI).

Each operation gets ~50 generated requests, positive (schema-valid) and negative (schema-invalid) mixed.
Most of them are aimed at live state so the fuzzer gets past "404 unknown session": path tokens and
slugs are swapped for real ones (sessions in every stage, a HYPE-time session with exposures, a closed
and a draft study), answer bodies get the session's current trial id and, sometimes, an idempotency
key already used. Checks on every response:

* not_a_server_error: no 5xx, and no exception escapes the app (TESTING propagates them);
* every error (4xx) is a JSON object {error, message} with a non-empty message (custom check);
* status code, content type, headers and body conform to the document (response objects are closed,
  so an undocumented field, e.g. anything label-like, fails);
* negative_data_rejection: schema-invalid input is refused with a 4xx.
"""

from __future__ import annotations

import json
import re
import zlib
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from sqlalchemy import select

from hype.models import Assignment, Judgment, Trial
from hype.studies import close_study
from hype.web.openapi import openapi_document

from hostile_helpers import Browser, run_correctly

pytestmark = [pytest.mark.slow, pytest.mark.db]

MAX_EXAMPLES = 50
OPERATIONS = sorted(
    (method.upper(), path)
    for path, item in openapi_document()["paths"].items()
    for method in item
    if method in ("get", "post") and path != "/api/openapi.json"
)


@schemathesis.check
def error_is_json_with_message(ctx, response, case) -> bool | None:
    """Every 4xx/5xx is application/json {error, message} with a non-empty message."""
    if response.status_code < 400:
        return None
    content_type = (response.headers.get("content-type") or [""])[0]
    assert content_type.startswith("application/json"), f"{response.status_code} answered with {content_type!r}"
    body = json.loads(response.content)
    assert isinstance(body, dict), f"error body is not an object: {body!r}"
    assert isinstance(body.get("message"), str) and body["message"].strip(), f"error without a message: {body!r}"
    assert isinstance(body.get("error"), str) and body["error"], f"error without a code: {body!r}"
    return True


CHECKS = [
    not_a_server_error,
    error_is_json_with_message,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,
]


def _roll(value: Any, n: int) -> int:
    """A deterministic function of generated data, so Hypothesis can replay and shrink a failure."""
    return zlib.crc32(repr(value).encode()) % n


class World:
    """Live state to aim generated requests at."""

    def __init__(self, app, session, make_study):
        self.app = app
        self.session = session
        self.infinity = make_study("hype-infinity")
        self.time = make_study("hype-time", models=("alpha",))
        closed = make_study("hype-infinity", seed=8)
        draft = make_study("hype-infinity", seed=9, publish=False)
        self.slugs = [self.infinity.slug, self.time.slug, closed.slug, draft.slug]
        entered = Browser(app, self.infinity.slug)
        entered.enter()
        read = Browser(app, self.infinity.slug)
        read.enter()
        read.client.post(read.api + "/instructions", json={})
        done = Browser(app, self.infinity.slug)
        done.start()
        run_correctly(done, session, "qualification")
        run_correctly(done, session, "task")
        closed_session = Browser(app, closed.slug)
        closed_session.start()
        close_study(closed)
        session.commit()
        self.fixed_tokens = [entered.token, read.token, done.token, closed_session.token]
        self.live: list[Browser] = []
        self.used_keys: list[tuple[str, str]] = []  # (token, key) pairs already sent
        self._refill()

    def _refill(self) -> None:
        """Keep one session of each mode in a trial stage (the fuzzer's answers finish them)."""
        self.live = [b for b in self.live if self.stage(b.token) in ("qualification", "task")]
        have = {b.slug for b in self.live}
        for study in (self.infinity, self.time):
            if study.slug not in have:
                browser = Browser(self.app, study.slug)
                browser.start()
                if study is self.time:  # into the timed task, where exposures and masks exist
                    run_correctly(browser, self.session, "qualification")
                self.live.append(browser)

    def stage(self, token: str) -> str | None:
        self.session.rollback()
        return self.session.scalar(select(Assignment.stage).where(Assignment.token == token))

    def tokens(self) -> list[str]:
        """Live sessions weigh three times as much as the fixed ones (instructions, check, done, closed)."""
        return [b.token for b in self.live] * 3 + self.fixed_tokens

    def image_tokens(self) -> list[str]:
        """Current, next, answered and not-yet-loadable trial ids of the live sessions."""
        self.session.rollback()
        out = []
        for b in self.live:
            out += list(
                self.session.scalars(
                    select(Trial.image_token).join(Assignment).where(Assignment.token == b.token).order_by(Trial.position).limit(12)
                )
            )
        return out

    def aim(self, case) -> None:
        self._refill()
        params = case.path_parameters or {}
        if "slug" in params and _roll(params["slug"], 4):
            params["slug"] = self.slugs[_roll(params["slug"], len(self.slugs))]
        token = params.get("token")
        if token is not None and _roll(token, 5):
            tokens = self.tokens()
            params["token"] = tokens[_roll(token, 97) % len(tokens)]
        if isinstance(params.get("index"), int) and _roll(params["index"], 4):
            params["index"] = _roll(params["index"], 26)  # the study has 24 masks
        if "image_token" in params and _roll(params["image_token"], 4):
            images = self.image_tokens()
            roll = _roll(params["image_token"], 3)
            browser = next((b for b in self.live if b.token == params.get("token")), None)
            if roll and browser is not None:
                # An image is served to its own session only, for its current (or next) trial.
                state = browser.client.get(browser.api + "/trial").get_json()
                current = [state["trial"]["id"]] if state["trial"] else []
                nexts = [url.rsplit("/", 1)[-1] for url in state["preload"]]
                choice = (current + nexts) if roll == 1 else current
                if choice:
                    params["image_token"] = choice[0] if roll == 2 else choice[-1]
            else:
                params["image_token"] = images[_roll(params["image_token"], len(images))]
        if case.operation.path.endswith("/answers") and isinstance(case.body, dict):
            self._aim_answer(case, params.get("token"))

    def _aim_answer(self, case, token: str | None) -> None:
        body = case.body
        if token is None or not isinstance(body.get("trial"), str):
            return
        roll = _roll(body["trial"], 6)
        if roll == 0:
            return
        browser = next((b for b in self.live if b.token == token), None)
        if browser is not None:
            current = browser.client.get(browser.api + "/trial").get_json()["trial"]  # serves it, as the runner does
            if current is not None and roll <= 3:
                body["trial"] = current["id"]
            elif roll == 4:  # another session's trial
                others = [t for t in self.image_tokens() if t != (current or {}).get("id")]
                body["trial"] = others[_roll(body, len(others))]
        if roll == 5 and self.used_keys and isinstance(body.get("idempotency_key"), str):
            _, key = self.used_keys[_roll(body, len(self.used_keys))]
            body["idempotency_key"] = key
        key = body.get("idempotency_key")
        if isinstance(key, str):
            self.used_keys.append((token, key))


@pytest.fixture
def world(app, session, make_study) -> World:
    return World(app, session, make_study)


@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_fuzz_operation(world: World, method: str, path: str) -> None:
    schema = schemathesis.openapi.from_wsgi("/api/openapi.json", world.app)
    operation = schema[path][method]
    strategy = st.one_of(
        operation.as_strategy(GenerationMode.POSITIVE),
        operation.as_strategy(GenerationMode.NEGATIVE),
    )
    seen: dict[Any, int] = {}

    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        derandomize=True,  # a fixed example stream: the "some request reached a 2xx" check must not depend on luck
        database=None,
        suppress_health_check=list(HealthCheck),
        print_blob=True,
    )
    @given(case=strategy)
    def run(case) -> None:
        world.aim(case)
        response = case.call()
        outcome = response.status_code
        if outcome >= 400 and response.headers.get("content-type", [""])[0].startswith("application/json"):
            outcome = f"{outcome} {json.loads(response.content).get('error')}"
        seen[outcome] = seen.get(outcome, 0) + 1
        case.validate_response(response, checks=CHECKS)

    run()
    print(f"{method} {path}: {dict(sorted(seen.items(), key=str))}")
    # The aiming worked: requests got past "unknown session/study" to the handlers' own rules.
    assert any(str(outcome).startswith("2") for outcome in seen), seen


def test_the_document_is_served_and_valid(client) -> None:
    response = client.get("/api/openapi.json")
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    document = response.get_json()
    assert document["openapi"].startswith("3.1")
    schema = schemathesis.openapi.from_dict(document)
    schema.validate()
    labels = {op.ok().label for op in schema.get_all_operations()}
    assert {f"{m} {p}" for m, p in OPERATIONS} <= labels
    for path, item in document["paths"].items():
        names = set(re.findall(r"{(\w+)}", path))
        assert names == {p["name"] for p in item.get("parameters", [])}, path
        for parameter in item.get("parameters", []):
            schema = parameter["schema"]
            assert schema.get("pattern") or schema.get("enum") or schema.get("type") == "integer", (path, parameter)


def test_answers_recorded_by_the_fuzzer_are_well_formed(world: World) -> None:
    """A smoke test of the aiming itself: a valid answer through the same path records one judgment."""
    browser = next(b for b in world.live if b.slug == world.infinity.slug)
    trial = browser.trial()["trial"]
    response = browser.answer(trial, "real")
    assert response.status_code == 201, response.get_data(as_text=True)
    world.session.rollback()
    n = world.session.scalar(select(Judgment.id).join(Trial).where(Trial.image_token == trial["id"]))
    assert n is not None
