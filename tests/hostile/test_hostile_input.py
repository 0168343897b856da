"""Hostile input to the worker API and the pages: SQL-looking strings, huge bodies, wrong content
types, forged / foreign / replayed tokens, token entropy, and the security headers and markup every
response must carry. (XSS in study names and worker ids on the dashboard: tests/web/test_researcher.py.)
"""

from __future__ import annotations

import base64
import hashlib
import io
import re
import secrets
from collections import Counter
from html.parser import HTMLParser
from urllib.parse import quote

import numpy as np
import pytest
from scipy import stats
from sqlalchemy import func, inspect, select, text

from hype.accounts import create_researcher
from hype.models import Assignment, Judgment, Participant, Study, Trial
from hype.studies import close_study
from hype.web.worker_api import API_MAX_BODY_BYTES

from hostile_helpers import GOOD_CHECK, Browser, new_key, run_correctly, timing_for, truth

pytestmark = pytest.mark.db

SQL = [
    "' OR '1'='1",
    "'; DROP TABLE assignments; --",
    '" OR 1=1 --',
    "1) OR (1=1",
    "x' UNION SELECT token, token FROM assignments --",
    "admin'--",
    "%' OR token LIKE '%",
    "1; SELECT pg_sleep(5); --",
    "'||(SELECT token FROM assignments LIMIT 1)||'",
    "\x00' OR 1=1",
    "'/**/OR/**/1=1#",
]


def assert_json_error(response, status: int, code: str | None = None) -> dict:
    assert response.status_code == status, (response.status_code, response.get_data(as_text=True)[:300])
    assert response.mimetype == "application/json", response.headers
    body = response.get_json()
    assert isinstance(body, dict) and isinstance(body.get("message"), str) and body["message"].strip(), body
    assert isinstance(body.get("error"), str) and body["error"], body
    if code is not None:
        assert body["error"] == code, body
    return body


def db_fingerprint(session) -> dict[str, str]:
    """Every table's row count and a hash of its contents: equal before and after means untouched."""
    session.rollback()
    out = {}
    for table in sorted(inspect(session.get_bind()).get_table_names()):
        rows = session.execute(text(f'SELECT * FROM "{table}"')).all()
        out[table] = f"{len(rows)}:{hashlib.sha256(repr(sorted(map(repr, rows))).encode()).hexdigest()[:16]}"
    return out


# -- SQL-looking input --------------------------------------------------------------------------------


def test_sql_looking_input_is_a_clean_4xx_and_leaves_the_database_intact(make_study, app, session):
    study = make_study()
    browser = Browser(app, study.slug)
    browser.start()
    trial = browser.trial()["trial"]
    before = db_fingerprint(session)
    client = app.test_client()
    for payload in SQL:
        segment = quote(payload, safe="")
        # slug and token in the path
        assert_json_error(client.post(f"/api/s/{segment}/sessions", json={"consent": True, "params": {}}), 404)
        assert client.get(f"/s/{segment}").status_code == 404
        for path in ("", "/trial", "/masks/0", "/examples/real"):
            assert_json_error(client.get(f"/api/w/{segment}{path}"), 404)
        assert_json_error(client.post(f"/api/w/{segment}/instructions", json={}), 404)
        assert_json_error(client.post(f"/api/w/{segment}/check", json=GOOD_CHECK), 404)
        assert_json_error(client.get(f"/api/w/{segment}/img/{segment}"), 404)
        assert client.get(f"/w/{segment}").status_code == 404
        # platform ids in the entry params
        for params in (
            {"workerId": payload, "assignmentId": "A1", "hitId": "H1", "turkSubmitTo": "https://www.mturk.com"},
            {"workerId": "W1", "assignmentId": payload, "hitId": "H1", "turkSubmitTo": "https://www.mturk.com"},
            {"workerId": "W1", "assignmentId": "A1", "hitId": "H1", "turkSubmitTo": payload},
            {"PROLIFIC_PID": payload, "STUDY_ID": "S", "SESSION_ID": "X"},
            {"PROLIFIC_PID": "P1", "STUDY_ID": payload, "SESSION_ID": "X"},
        ):
            assert_json_error(client.post(f"/api/s/{study.slug}/sessions", json={"consent": True, "params": params}), 400, "bad-identity")
        # the trial id and the idempotency key of an answer
        base = {"trial": trial["id"], "response": "real", "idempotency_key": new_key(), **timing_for(trial)}
        assert_json_error(browser.client.post(browser.api + "/answers", json={**base, "trial": payload}), 400, "bad-field")
        assert_json_error(browser.client.post(browser.api + "/answers", json={**base, "idempotency_key": payload}), 400)
        assert_json_error(browser.client.post(browser.api + "/answers", json={**base, "response": payload}), 400, "bad-field")
        assert_json_error(
            browser.client.post(browser.api + "/answers", json={**base, "client_timestamps": {payload: 1.0}}), 400, "bad-field"
        )
    assert db_fingerprint(session) == before
    # and the session still works
    assert browser.trial()["trial"]["id"] == trial["id"]


def test_unknown_params_with_sql_are_ignored_not_stored(make_study, app, session):
    study = make_study()
    client = app.test_client()
    params = {f"k{n}": payload for n, payload in enumerate(SQL[:9])}
    response = client.post(f"/api/s/{study.slug}/sessions", json={"consent": True, "params": params})
    assert response.status_code == 201, response.get_data(as_text=True)
    session.rollback()
    participant = session.scalar(select(Participant).join(Assignment).where(Assignment.token == response.get_json()["token"]))
    assert participant.platform == "plain" and participant.platform_ids == {}
    assert session.scalar(select(func.count()).select_from(Study)) == 1


# -- sizes and content types --------------------------------------------------------------------------


def _post_targets(browser: Browser, slug: str) -> list[str]:
    return [f"/api/s/{slug}/sessions", browser.api + "/instructions", browser.api + "/check", browser.api + "/answers"]


def test_a_body_over_the_api_limit_is_413_json(make_study, app, session):
    study = make_study()
    browser = Browser(app, study.slug)
    browser.start()
    trial = browser.trial()["trial"]
    before = db_fingerprint(session)
    padding = "x" * API_MAX_BODY_BYTES
    for url in _post_targets(browser, study.slug):
        body = {"consent": True, "trial": trial["id"], "response": "real", "idempotency_key": new_key(), "pad": padding}
        body_413 = assert_json_error(browser.client.post(url, json=body), 413)
        assert f"{API_MAX_BODY_BYTES:,}" in body_413["message"]
        # A chunked upload has no Content-Length: the limit holds while reading.
        raw = b'{"pad": "' + b"y" * (2 * API_MAX_BODY_BYTES) + b'"}'
        streamed = browser.client.post(
            url,
            input_stream=io.BytesIO(raw),
            content_type="application/json",
            headers={"Transfer-Encoding": "chunked"},
            environ_overrides={"wsgi.input_terminated": True},
        )
        assert_json_error(streamed, 413)
    assert db_fingerprint(session) == before
    # The limit is the API's own: just under it, the answer is judged on its fields (and recorded).
    body = {"trial": trial["id"], "response": "real", "idempotency_key": new_key(), **timing_for(trial)}
    body["pad"] = "z" * (API_MAX_BODY_BYTES - len(str(body)) - 200)
    assert browser.client.post(browser.api + "/answers", json=body).status_code == 201
    assert app.config["MAX_CONTENT_LENGTH"] > API_MAX_BODY_BYTES  # researchers' archives keep the large limit


def test_deeply_nested_json_is_400_not_500(make_study, app):
    study = make_study()
    browser = Browser(app, study.slug)
    browser.start()
    depth = API_MAX_BODY_BYTES // 2 - 10
    nested = '{"trial": ' + "[" * depth + "]" * depth + "}"
    for url in _post_targets(browser, study.slug):
        assert_json_error(browser.client.post(url, data=nested, content_type="application/json"), 400, "malformed-json")


def test_numbers_beyond_float_range_are_400(make_study, app):
    study = make_study()
    browser = Browser(app, study.slug)
    browser.start()
    trial = browser.trial()["trial"]
    raw = '{"trial": "%s", "response": "real", "idempotency_key": "abcdefgh12", "reaction_ms": %s}' % (trial["id"], "9" * 400)
    assert_json_error(browser.client.post(browser.api + "/answers", data=raw, content_type="application/json"), 400, "bad-field")
    raw = '{"refresh_interval_ms": 16.7, "window_width": %s, "window_height": 900}' % ("9" * 400)
    fresh = Browser(app, study.slug)
    fresh.enter()
    fresh.client.post(fresh.api + "/instructions", json={})
    assert_json_error(fresh.client.post(fresh.api + "/check", data=raw, content_type="application/json"), 400, "bad-field")


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "application/xml", "text/json", None],
)
def test_wrong_content_type_is_415(make_study, app, session, content_type):
    study = make_study()
    browser = Browser(app, study.slug)
    browser.enter()
    before = db_fingerprint(session)
    bodies = {
        f"/api/s/{study.slug}/sessions": '{"consent": true, "params": {}}',
        browser.api + "/instructions": "{}",
        browser.api + "/check": '{"refresh_interval_ms": 16.7, "window_width": 1280, "window_height": 900}',
        browser.api + "/answers": '{"trial": "abc", "response": "real", "idempotency_key": "abcdefgh12"}',
    }
    for url, raw in bodies.items():
        kwargs = {"data": raw} if content_type is None else {"data": raw, "content_type": content_type}
        if content_type is None:
            kwargs["headers"] = {"Content-Type": ""}
        assert_json_error(browser.client.post(url, **kwargs), 415, "unsupported-media-type")
    assert db_fingerprint(session) == before


def test_wrong_methods_are_json_405(make_study, app):
    study = make_study()
    browser = Browser(app, study.slug)
    browser.enter()
    client = browser.client
    assert_json_error(client.get(f"/api/s/{study.slug}/sessions"), 405)
    assert_json_error(client.delete(browser.api), 405)
    assert_json_error(client.put(browser.api + "/answers", json={}), 405)
    assert_json_error(client.get(browser.api + "/answers"), 405)
    assert_json_error(client.get("/api/no/such/route"), 404)


# -- tokens --------------------------------------------------------------------------------------------


def test_forged_tokens_are_404(make_study, app):
    study = make_study()
    real = Browser(app, study.slug)
    real.start()
    trial = real.trial()["trial"]
    client = app.test_client()
    forged = [secrets.token_urlsafe(32) for _ in range(20)]
    forged.append(real.token[:-1] + ("A" if real.token[-1] != "A" else "B"))  # one character off
    forged.append(real.token.upper() if real.token.upper() != real.token else real.token.lower())
    forged.append(real.token + "A")
    for token in forged:
        assert_json_error(client.get(f"/api/w/{token}"), 404, "unknown-session")
        assert_json_error(client.get(f"/api/w/{token}/trial"), 404, "unknown-session")
        assert_json_error(client.post(f"/api/w/{token}/instructions", json={}), 404, "unknown-session")
        assert_json_error(client.post(f"/api/w/{token}/check", json=GOOD_CHECK), 404, "unknown-session")
        body = {"trial": trial["id"], "response": "real", "idempotency_key": new_key()}
        assert_json_error(client.post(f"/api/w/{token}/answers", json=body), 404, "unknown-session")
        assert_json_error(client.get(f"/api/w/{token}/examples/real"), 404, "unknown-session")
        assert_json_error(client.get(f"/api/w/{token}/masks/0"), 404, "unknown-session")
        assert_json_error(client.get(f"/api/w/{token}/img/{trial['id']}"), 404, "unknown-session")
        assert client.get(f"/w/{token}").status_code == 404
    for image_token in [secrets.token_urlsafe(16) for _ in range(20)] + [trial["id"][:-1] + "_"]:
        assert_json_error(client.get(f"/api/w/{real.token}/img/{image_token}"), 404)
    assert real.trial()["trial"]["id"] == trial["id"]


def test_a_token_reaches_only_its_own_session(make_study, app, session):
    """Tokens are bound to one participant's session: another session's token (same study or not)
    cannot answer this session's trials, and its own views show only its own trials."""
    study_x = make_study("hype-time", models=("alpha",), seed=1)
    study_y = make_study("hype-time", models=("alpha",), seed=2)
    a = Browser(app, study_x.slug)
    b = Browser(app, study_y.slug)
    c = Browser(app, study_x.slug)
    for browser in (a, b, c):
        browser.start()
        run_correctly(browser, session, "qualification")
    assert len({a.token, b.token, c.token}) == 3
    trial_a = a.trial()["trial"]
    before = db_fingerprint(session)
    for other in (b, c):
        own = other.trial()["trial"]
        assert own["id"] != trial_a["id"]
        response = other.client.post(
            other.api + "/answers", json={"trial": trial_a["id"], "response": "real", "idempotency_key": new_key(), **timing_for(trial_a)}
        )
        assert_json_error(response, 403, "foreign-trial")
        # its masks are its own study's: every mask URL it is given is under its own token
        assert all(url.startswith(other.api + "/masks/") for url in own["masks"])
    session.rollback()
    assert db_fingerprint(session) == before
    # A's trial is still A's to answer
    assert a.answer(trial_a, "real").status_code == 201
    # trial lists never mix sessions
    session.rollback()
    ids_a = set(session.scalars(select(Trial.image_token).join(Assignment).where(Assignment.token == a.token)))
    ids_b = set(session.scalars(select(Trial.image_token).join(Assignment).where(Assignment.token == b.token)))
    assert not ids_a & ids_b


def test_the_same_platform_worker_gets_the_same_session_and_nobody_else_does(make_study, app):
    study = make_study()
    mturk = {"workerId": "W1", "assignmentId": "A1", "hitId": "H1", "turkSubmitTo": "https://www.mturk.com"}
    first = Browser(app, study.slug, mturk)
    assert first.enter().status_code == 201
    again = Browser(app, study.slug, mturk)  # another browser, same worker: the session resumes
    assert again.enter().status_code == 200 and again.token == first.token
    other = Browser(app, study.slug, {**mturk, "workerId": "W2"})
    assert other.enter().status_code == 201 and other.token != first.token
    plain_1, plain_2 = Browser(app, study.slug), Browser(app, study.slug)  # cookies tell plain browsers apart
    plain_1.enter()
    plain_2.enter()
    assert plain_1.token != plain_2.token


def _b64_bytes(token: str) -> bytes:
    return base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))


def test_tokens_carry_at_least_128_random_bits(make_study, app, session):
    study = make_study(settings={"qualification": {"n_real": 1, "n_fake": 1}, "infinity": {"n_real": 1, "n_fake": 1}})
    tokens = []
    for _ in range(150):
        browser = Browser(app, study.slug)
        assert browser.enter().status_code == 201
        tokens.append(browser.token)
    session.rollback()
    image_tokens = list(session.scalars(select(Trial.image_token)))
    assert len(image_tokens) == 4 * len(tokens)
    for name, values, length, n_bytes in (("session", tokens, 43, 32), ("trial", image_tokens, 22, 16)):
        assert len(set(values)) == len(values), f"{name} tokens repeat"
        assert all(re.fullmatch(r"[A-Za-z0-9_-]{%d}" % length, v) for v in values), f"{name} token shape"
        raw = [_b64_bytes(v) for v in values]
        assert all(len(r) == n_bytes for r in raw)
        assert 8 * n_bytes >= 128
        # The bytes look uniform (a counter, a timestamp or a hash of guessable input would not):
        data = np.frombuffer(b"".join(raw), dtype=np.uint8)
        counts = np.bincount(data, minlength=256)
        assert stats.chisquare(counts).pvalue > 1e-4, f"{name} token bytes are not uniform"
        bits = np.unpackbits(data.reshape(len(raw), n_bytes), axis=1)
        per_position = bits.mean(axis=0)  # every bit position is a fair coin
        assert np.all(np.abs(per_position - 0.5) < 5 * 0.5 / np.sqrt(len(raw))), f"{name} token has a fixed bit"
        # no shared structure between tokens issued one after another
        prefixes = [len(_common_prefix(x, y)) for x, y in zip(values, values[1:])]
        assert max(prefixes) <= 4, f"{name} tokens issued in a row share a prefix"


def _common_prefix(a: str, b: str) -> str:
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return a[:n]


# -- replays -------------------------------------------------------------------------------------------


def test_a_replayed_answer_returns_the_original_outcome_and_records_nothing(make_study, app, session):
    study = make_study("hype-time", models=("alpha",))
    browser = Browser(app, study.slug)
    browser.start()
    run_correctly(browser, session, "qualification")
    first = browser.trial()["trial"]
    right = "fake" if truth(session, first["id"]) else "real"
    wrong = "real" if right == "fake" else "fake"
    key = new_key()
    original = browser.answer(first, wrong, key)
    assert original.status_code == 201
    assert original.get_json()["feedback"] == {"correct": False}
    # the session moves on
    for _ in range(3):
        trial = browser.trial()["trial"]
        assert browser.answer(trial, "real").status_code == 201
    before = db_fingerprint(session)
    session.rollback()
    judgment = session.scalar(select(Judgment).join(Trial).where(Trial.image_token == first["id"]))
    recorded = (judgment.judged_fake, judgment.correct, judgment.requested_ms, judgment.reaction_ms)
    for response in (wrong, right):  # a replay that now says the right thing changes nothing either
        replay = browser.client.post(
            browser.api + "/answers",
            json={"trial": first["id"], "response": response, "idempotency_key": key, **timing_for(first), "reaction_ms": 1.0},
        )
        assert replay.status_code == 200, replay.get_data(as_text=True)
        body = replay.get_json()
        assert body["replayed"] is True and body["recorded"] is True
        assert body["feedback"] == {"correct": False}
    assert db_fingerprint(session) == before
    session.rollback()
    judgment = session.scalar(select(Judgment).join(Trial).where(Trial.image_token == first["id"]))
    assert (judgment.judged_fake, judgment.correct, judgment.requested_ms, judgment.reaction_ms) == recorded
    # the same key for another trial is refused; a new key for an answered trial is refused
    current = browser.trial()["trial"]
    assert_json_error(browser.client.post(browser.api + "/answers", json={"trial": current["id"], "response": "real", "idempotency_key": key}), 409, "key-reused")
    assert_json_error(browser.client.post(browser.api + "/answers", json={"trial": first["id"], "response": "real", "idempotency_key": new_key()}), 409, "already-answered")
    # keys belong to a session: another worker may use the same key string
    other = Browser(app, study.slug)
    other.start()
    assert other.answer(other.trial()["trial"], "real", key).status_code == 201
    assert db_fingerprint(session) != before


def test_a_replay_after_the_session_finished_still_answers_the_same(make_study, app, session):
    study = make_study()
    browser = Browser(app, study.slug)
    browser.start()
    run_correctly(browser, session, "qualification")
    keys = []
    while (trial := browser.trial()["trial"]) is not None:
        keys.append((trial, new_key()))
        assert browser.answer(trial, "real", keys[-1][1]).status_code == 201
    assert browser.trial()["stage"] == "completed"
    before = db_fingerprint(session)
    for trial, key in keys:
        replay = browser.answer(trial, "fake", key)
        assert replay.status_code == 200 and replay.get_json()["replayed"] is True
        assert replay.get_json()["feedback"] is None and replay.get_json()["stage"] == "completed"
    assert db_fingerprint(session) == before


# -- security headers and markup -----------------------------------------------------------------------

MTURK = {"https://www.mturk.com", "https://workersandbox.mturk.com"}


def check_headers(response, what: str) -> None:
    headers = response.headers
    assert headers.get("X-Content-Type-Options") == "nosniff", what
    csp = headers.get("Content-Security-Policy")
    assert csp, f"{what}: no CSP"
    directives = {}
    for part in csp.split(";"):
        words = part.split()
        if words:
            directives[words[0].lower()] = words[1:]
    for needed in ("default-src", "script-src", "style-src", "frame-ancestors", "base-uri", "form-action"):
        assert needed in directives, f"{what}: CSP lacks {needed}"
    for name, sources in directives.items():
        for source in sources:
            low = source.lower()
            assert low not in ("'unsafe-inline'", "'unsafe-eval'", "'unsafe-hashes'", "'strict-dynamic'", "*"), f"{what}: {name} {source}"
            assert not low.startswith(("'nonce-", "'sha")), f"{what}: {name} {source}"
            if low in ("'self'", "'none'"):
                continue
            if name == "img-src" and low in ("data:", "blob:"):
                continue  # decoded images for the canvas; schemes, not origins
            assert name in ("frame-ancestors", "form-action") and source in MTURK, f"{what}: {name} allows {source}"
    frame_protected = headers.get("X-Frame-Options") in ("DENY", "SAMEORIGIN") or set(directives["frame-ancestors"]) <= {"'self'", "'none'"} | MTURK
    assert frame_protected, what
    assert headers.get("Referrer-Policy") == "no-referrer", what


class MarkupAudit(HTMLParser):
    """Collects what a strict CSP would block or what would need 'unsafe-inline'."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.problems: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag, attrs):
        names = {k.lower(): (v or "") for k, v in attrs}
        for name, value in names.items():
            if name.startswith("on"):
                self.problems.append(f"<{tag} {name}=...> inline event handler")
            if name == "style":
                self.problems.append(f"<{tag} style=...> inline style")
            if name in ("href", "src", "action", "formaction") and value.strip().lower().startswith("javascript:"):
                self.problems.append(f"<{tag} {name}=javascript:...>")
        if tag == "script":
            if not names.get("src"):
                self.problems.append("<script> without src (inline script)")
            elif re.match(r"^(https?:)?//", names["src"]):
                self.problems.append(f"<script src={names['src']}> from another origin")
            self._in_script = True
        if tag == "style":
            self.problems.append("<style> block")
        if tag == "link" and re.match(r"^(https?:)?//", names.get("href", "")):
            self.problems.append(f"<link href={names['href']}> from another origin")

    def handle_endtag(self, tag):
        if tag == "script":
            self._in_script = False

    def handle_data(self, data):
        if self._in_script and data.strip():
            self.problems.append("<script src> with inline content")


def check_page(response, what: str, status: int = 200) -> str:
    assert response.status_code == status, (what, response.status_code, response.get_data(as_text=True)[:300])
    assert response.mimetype == "text/html", what
    check_headers(response, what)
    html = response.get_data(as_text=True)
    audit = MarkupAudit()
    audit.feed(html)
    assert not audit.problems, f"{what}: {audit.problems}"
    return html


def _login(client, email: str, password: str) -> None:
    html = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)
    response = client.post("/login", data={"email": email, "password": password, "csrf_token": token})
    assert response.status_code == 302


def test_every_page_and_response_kind_has_the_headers_and_no_inline_code(make_study, app, session):
    infinity = make_study()
    timed = make_study("hype-time", models=("alpha",), seed=3)
    closed = make_study(seed=4)
    researcher = create_researcher(session, "r@example.org", "a long enough password")
    for study in (infinity, timed, closed):
        study.owner_id = researcher.id
    session.commit()
    pages: list[tuple[str, object, int]] = []

    client = app.test_client()
    pages.append(("consent page", client.get(f"/s/{infinity.slug}"), 200))
    pages.append(("MTurk preview", client.get(f"/s/{infinity.slug}?assignmentId=ASSIGNMENT_ID_NOT_AVAILABLE&hitId=H"), 200))
    closed_browser = Browser(app, closed.slug)
    closed_browser.start()
    close_study(closed)
    session.commit()
    pages.append(("closed study", app.test_client().get(f"/s/{closed.slug}"), 200))
    pages.append(("resumed session redirect target", closed_browser.client.get(f"/w/{closed_browser.token}"), 200))

    for study, label in ((infinity, "HYPE-inf"), (timed, "HYPE-time")):
        for params, platform in (({}, "plain"), ({"workerId": "W9", "assignmentId": "A9", "hitId": "H9", "turkSubmitTo": "https://workersandbox.mturk.com"}, "mturk"), ({"PROLIFIC_PID": "P9", "STUDY_ID": "S9", "SESSION_ID": "X9"}, "prolific")):
            b = Browser(app, study.slug, params)
            assert b.enter().status_code == 201
            page = f"/w/{b.token}"
            pages.append((f"{label} {platform} instructions", b.client.get(page), 200))
            b.client.post(b.api + "/instructions", json={})
            pages.append((f"{label} {platform} check", b.client.get(page), 200))
            b.client.post(b.api + "/check", json=GOOD_CHECK)
            pages.append((f"{label} {platform} qualification", b.client.get(page), 200))
            run_correctly(b, session, "qualification")
            pages.append((f"{label} {platform} task", b.client.get(page), 200))
            run_correctly(b, session, "task")
            pages.append((f"{label} {platform} done", b.client.get(page), 200))
            again = b.client.get(f"/s/{study.slug}", query_string=params)
            pages.append((f"{label} {platform} already taken part", again, 409))
        failing = Browser(app, study.slug)
        failing.start()
        while (trial := failing.trial()["trial"]) is not None:  # every qualification answer wrong
            failing.answer(trial, "real" if truth(session, trial["id"]) else "fake")
        pages.append((f"{label} failed qualification", failing.client.get(f"/w/{failing.token}"), 200))
    pages.append(("unknown session", client.get(f"/w/{secrets.token_urlsafe(32)}"), 404))
    pages.append(("unknown study", client.get(f"/s/{secrets.token_urlsafe(12)}"), 404))

    researcher_client = app.test_client()
    pages.append(("login", researcher_client.get("/login"), 200))
    bad_login = researcher_client.post("/login", data={"email": "r@example.org", "password": "wrong", "csrf_token": re.search(r'name="csrf_token" value="([^"]+)"', researcher_client.get("/login").get_data(as_text=True)).group(1)})
    pages.append(("failed login", bad_login, 401))
    _login(researcher_client, "r@example.org", "a long enough password")
    pages.append(("studies", researcher_client.get("/studies"), 200))
    pages.append(("new study", researcher_client.get("/studies/new"), 200))
    for study in (infinity, timed, closed):
        pages.append((f"dashboard {study.mode} {study.status}", researcher_client.get(f"/studies/{study.id}"), 200))

    for what, response, status in pages:
        check_page(response, what, status)

    # every other kind of response carries the headers too
    b = Browser(app, timed.slug)
    b.start()
    trial = b.trial()
    others = {
        "JSON state": (b.client.get(b.api), 200),
        "JSON trial": (b.client.get(b.api + "/trial"), 200),
        "trial image": (b.client.get(trial["trial"]["image_url"]), 200),
        "preload image": (b.client.get(trial["preload"][0]), 200),
        "example image": (b.client.get(b.api + "/examples/real"), 200),
        "static script": (b.client.get("/static/worker.js"), 200),
        "static css": (b.client.get("/static/hype.css"), 200),
        "OpenAPI document": (b.client.get("/api/openapi.json"), 200),
        "JSON 404": (b.client.get("/api/w/" + "x" * 43), 404),
        "JSON 405": (b.client.get(b.api + "/answers"), 405),
        "JSON 413": (b.client.post(b.api + "/answers", data="x" * (API_MAX_BODY_BYTES + 1), content_type="application/json"), 413),
        "JSON 415": (b.client.post(b.api + "/answers", data="{}", content_type="text/plain"), 415),
        "HTML 404": (b.client.get("/no/such/page"), 404),
        "static 404": (b.client.get("/static/nope.js"), 404),
        "live JSON": (researcher_client.get(f"/studies/{timed.id}/live.json"), 200),
        "CSV download": (researcher_client.get(f"/studies/{timed.id}/bonus.csv"), 200),
        "researcher redirect": (app.test_client().get("/studies"), 302),
    }
    b.client.post(b.api + "/answers", json={"trial": trial["trial"]["id"], "response": "real", "idempotency_key": new_key(), **timing_for(trial["trial"])})
    for what, (response, status) in others.items():
        assert response.status_code == status, (what, response.status_code)
        check_headers(response, what)
        # only the worker's pages may be framed (by MTurk); nothing else by anyone but ourselves
        assert response.headers.get("X-Frame-Options") == "SAMEORIGIN", what
        assert "frame-ancestors 'self';" in response.headers["Content-Security-Policy"], what
    worker_page = pages[0][1]
    assert "frame-ancestors 'self' https://www.mturk.com https://workersandbox.mturk.com;" in worker_page.headers["Content-Security-Policy"]
    researcher_page = next(response for what, response, _ in pages if what == "studies")
    assert researcher_page.headers.get("X-Frame-Options") == "SAMEORIGIN"
    assert "frame-ancestors 'self';" in researcher_page.headers["Content-Security-Policy"]


def test_images_carry_nothing_but_pixels(make_study, app):
    """Served images: one type, no validators (ETag / Last-Modified would date the import), no cache."""
    study = make_study()
    b = Browser(app, study.slug)
    b.start()
    seen = Counter()
    for _ in range(6):
        state = b.trial()
        response = b.client.get(state["trial"]["image_url"])
        assert response.status_code == 200 and response.mimetype == "image/png"
        assert "ETag" not in response.headers and "Last-Modified" not in response.headers
        assert response.headers["Cache-Control"] == "private, no-store"
        assert "Content-Disposition" not in response.headers
        seen[(len(response.data), tuple(sorted(k for k, _ in response.headers)))] += 1
        b.answer(state["trial"], "real")
    assert len(seen) == 1, seen  # same length, same header set for every image


def test_the_audits_are_not_vacuous():
    audit = MarkupAudit()
    audit.feed('<div style="color:red" onclick="x()"><script>alert(1)</script><script src="https://cdn.example/x.js"></script>'
               '<a href="javascript:alert(1)">x</a><style>p{}</style></div>')
    assert len(audit.problems) == 7, audit.problems  # the inline script counts twice (no src, content)

    class Fake:
        def __init__(self, csp):
            self.headers = {"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer", "Content-Security-Policy": csp}

    good = ("default-src 'self'; script-src 'self'; style-src 'self'; frame-ancestors 'self'; base-uri 'none'; "
            "form-action 'self' https://www.mturk.com")
    check_headers(Fake(good), "good")
    for bad in (good.replace("script-src 'self'", "script-src 'self' 'unsafe-inline'"),
                good.replace("style-src 'self'", "style-src 'self' https://fonts.example"),
                good.replace("frame-ancestors 'self'", "frame-ancestors *"),
                good.replace("default-src 'self'", "default-src 'self' https://www.mturk.com"),
                good.replace("base-uri 'none'; ", "")):
        with pytest.raises(AssertionError):
            check_headers(Fake(bad), bad)
