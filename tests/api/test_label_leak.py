"""Nothing a worker's browser receives tells real from fake (docs/protocol.md §Integrity).

Several complete sessions in both modes are run through the API while every response the client
gets is collected: status, headers (less Date), JSON bodies, page HTML, image URLs, image bytes and
PNG chunk types, masks and preloads. Only afterwards is each trial labelled from the database, and
the collected material is checked for anything that separates the labels. The simulated worker
answers every trial correctly, so the staircases (and with them the exposures and the feedback) run
the same course in every session whatever the labels: a payload that differs between a real and a
fake trial at the same position can only be a leak.
"""

from __future__ import annotations

import base64
import json
import re
import struct
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import pytest
from scipy.stats import mannwhitneyu

from apihelpers import faithful_timing

pytestmark = pytest.mark.db

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
LABEL_WORDS = ("fake", "real", "is_fake", "label", "correct", "truth", "model", "pool", "alpha", "beta")


def png_chunk_types(data: bytes) -> tuple[str, ...]:
    assert data[:8] == PNG_SIGNATURE
    types, pos = [], 8
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        types.append(data[pos + 4 : pos + 8].decode("ascii"))
        pos += 12 + length
    assert pos == len(data), "trailing bytes after IEND"
    return tuple(types)


def clean_headers(headers) -> dict[str, str]:
    """All headers but Date; a Set-Cookie's value is per-request (signed timestamp) so only its presence counts."""
    out = {}
    for name, value in headers.items():
        if name.lower() == "date":
            continue
        out[name.lower()] = "<cookie>" if name.lower() == "set-cookie" else value
    return out


@dataclass
class Collected:
    """Everything the browser of one session received, in order, before labels are known."""

    mode: str
    platform: str
    session_token: str = ""
    pre_answer_json: list[Any] = field(default_factory=list)  # entry, instructions, check, state, trial
    trials: list[dict[str, Any]] = field(default_factory=list)  # one per /trial: position, payload, headers
    answers: list[dict[str, Any]] = field(default_factory=list)  # (trial id, status, headers, body)
    images: list[dict[str, Any]] = field(default_factory=list)  # trial images and preloads
    masks: list[dict[str, Any]] = field(default_factory=list)
    examples: dict[str, bytes] = field(default_factory=dict)
    pages: list[dict[str, Any]] = field(default_factory=list)  # trial page HTML before each trial
    other_pages: list[str] = field(default_factory=list)


def fetch_image(client, url: str) -> dict[str, Any]:
    response = client.get(url)
    data = response.get_data()
    return {
        "url": url,
        "token": url.rsplit("/", 1)[1],
        "status": response.status_code,
        "headers": clean_headers(response.headers),
        "length": len(data),
        "chunks": png_chunk_types(data) if response.status_code == 200 else None,
        "bytes": data,
    }


def drive_session(w, oracle, mode: str, platform: str) -> Collected:
    got = Collected(mode, platform)
    entry = w.enter()
    assert entry.status_code == 201
    got.session_token = w.token
    got.pre_answer_json.append(entry.get_json())
    got.other_pages.append(w.client.get(f"/w/{w.token}").get_data(as_text=True))  # instructions
    for kind in ("real", "fake"):
        example = w.client.get(f"{w.api}/examples/{kind}")
        assert example.status_code == 200
        got.examples[kind] = example.get_data()
    got.pre_answer_json.append(w.instructions().get_json())
    got.other_pages.append(w.client.get(f"/w/{w.token}").get_data(as_text=True))  # check
    got.pre_answer_json.append(w.check().get_json())
    index = defaultdict(int)  # trials seen per (phase, block)
    while True:
        page = w.client.get(f"/w/{w.token}")
        state_response = w.client.get(w.api)
        got.pre_answer_json.append(state_response.get_json())
        response = w.client.get(w.api + "/trial")
        assert response.status_code == 200
        body = response.get_json()
        trial = body["trial"]
        if trial is None:
            got.other_pages.append(page.get_data(as_text=True))  # done page
            break
        got.pre_answer_json.append(body)
        position = (trial["phase"], trial["block"], index[(trial["phase"], trial["block"])])
        index[(trial["phase"], trial["block"])] += 1
        got.pages.append({"trial": trial["id"], "phase": trial["phase"], "status": page.status_code,
                          "html": page.get_data(as_text=True)})
        got.trials.append({"position": position, "body": body, "status": response.status_code,
                           "headers": clean_headers(response.headers)})
        image = fetch_image(w.client, trial["image_url"])
        image["role"] = "current"
        got.images.append(image)
        for url in body["preload"]:
            preload = fetch_image(w.client, url)
            preload["role"] = "preload"
            got.images.append(preload)
        for url in trial["masks"]:
            got.masks.append(fetch_image(w.client, url))
        answer = w.answer(trial["id"], oracle(trial["id"]), timing=faithful_timing(trial))
        assert answer.status_code == 201
        got.answers.append({"trial": trial["id"], "position": position, "status": answer.status_code,
                            "headers": clean_headers(answer.headers), "body": answer.get_json()})
    assert body["stage"] == "completed"
    return got


PLATFORMS = {
    "plain": None,
    "mturk": lambda k: {"assignmentId": f"ASG{k}", "hitId": "HIT0001", "workerId": f"WORKER{k}",
                        "turkSubmitTo": "https://www.mturk.com"},
    "prolific": lambda k: {"PROLIFIC_PID": f"PID{k}", "STUDY_ID": "STUDY01", "SESSION_ID": f"SES{k}"},
}


_COLLECTED: dict[str, tuple[list[Collected], dict[str, bool]]] = {}


@pytest.fixture
def collected(db_backend, request):
    """Complete sessions in both modes, then the labels of every trial token, read from the DB.

    Collected once per database backend and shared by the tests below (the material is plain data;
    running the sessions is the slow part), so every check looks at the same responses."""
    if db_backend not in _COLLECTED:
        _COLLECTED[db_backend] = _collect(*(request.getfixturevalue(name) for name in ("make_study", "worker", "oracle", "truth")))
    return _COLLECTED[db_backend]


# Headers that belong to the client (a plain link's browser holds a cookie; MTurk and Prolific
# workers are identified by their ids), not to the response: equal within a session, not across.
PER_CLIENT_HEADERS = ("set-cookie", "vary")


def _collect(make_study, worker, oracle, truth):
    runs: list[Collected] = []
    plan = {"hype-infinity": ["plain", "mturk", "prolific", "mturk"], "hype-time": ["mturk", "plain", "prolific"]}
    for mode, platforms in plan.items():
        study = make_study(mode)
        for k, platform in enumerate(platforms):
            params = PLATFORMS[platform](f"{mode[5:8]}{k}") if PLATFORMS[platform] else None
            runs.append(drive_session(worker(study, params), oracle, mode, platform))
    labels: dict[str, bool] = {}
    for run in runs:
        for t in run.trials:
            labels[t["body"]["trial"]["id"]] = truth(t["body"]["trial"]["id"])
        for image in run.images:
            labels[image["token"]] = truth(image["token"])
    return runs, labels


def normalise(value: Any, secrets: dict[str, str]) -> Any:
    """Replace every per-session random token (session, trial ids, mask indices) with a placeholder."""
    text = json.dumps(value, sort_keys=True)
    for secret, placeholder in secrets.items():
        text = text.replace(secret, placeholder)
    text = re.sub(r"/masks/\d+", "/masks/<k>", text)
    return json.loads(text)


def secrets_of(run: Collected) -> dict[str, str]:
    out = {run.session_token: "<session>"}
    for t in run.trials:
        out[t["body"]["trial"]["id"]] = "<trial>"
    for image in run.images:
        out[image["token"]] = "<trial>"
    return out


# -- images ---------------------------------------------------------------------------------------------


def test_served_images_are_indistinguishable_by_headers_length_and_chunks(collected):
    runs, labels = collected
    by_label: dict[bool, set] = {True: set(), False: set()}
    lengths, chunk_sets = set(), set()
    n = {True: 0, False: 0}
    for run in runs:
        per_session = {True: set(), False: set()}
        for image in run.images:
            assert image["status"] == 200
            fake = labels[image["token"]]
            n[fake] += 1
            headers = frozenset(image["headers"].items())
            per_session[fake].add(headers)
            by_label[fake].add(frozenset((k, v) for k, v in headers if k not in PER_CLIENT_HEADERS))
            lengths.add(image["length"])
            chunk_sets.add(image["chunks"])
            for name in ("last-modified", "etag", "content-disposition", "x-sendfile", "expires", "age"):
                assert name not in image["headers"], (name, image["headers"])
            assert image["headers"]["content-type"] == "image/png"
            assert int(image["headers"]["content-length"]) == image["length"]
        assert per_session[True] == per_session[False] and len(per_session[True]) == 1, per_session
    assert n[True] > 20 and n[False] > 20
    assert by_label[True] == by_label[False] and len(by_label[True]) == 1
    # stored-deflate PNGs: every 32x32 image is the same number of bytes, whatever its content
    assert len(lengths) == 1
    assert chunk_sets == {("IHDR", "IDAT", "IEND")}
    # masks look the same on the wire as the images they follow
    mask_lengths = {m["length"] for run in runs for m in run.masks}
    mask_chunks = {m["chunks"] for run in runs for m in run.masks}
    assert mask_lengths == lengths and mask_chunks == chunk_sets
    assert {m["status"] for run in runs for m in run.masks} == {200}


def test_image_bytes_carry_no_source_names_or_labels(collected):
    runs, _ = collected
    for run in runs:
        for image in run.images + run.masks:
            lowered = image["bytes"].lower()
            for word in (b"img0", b".png", b"fake", b"real", b"alpha", b"beta", b"exif", b"text"):
                assert word not in lowered, (word, image["url"])


def test_examples_are_never_one_of_the_workers_own_trial_images(collected):
    runs, _ = collected
    for run in runs:
        served = {image["bytes"] for image in run.images}
        assert set(run.examples) == {"real", "fake"}
        for kind, data in run.examples.items():
            assert data not in served, f"the {kind} example is one of this worker's trials"
            assert png_chunk_types(data) == ("IHDR", "IDAT", "IEND")


def test_preload_is_the_next_trial_of_the_phase(collected):
    runs, _ = collected
    for run in runs:
        for current, following in zip(run.trials, run.trials[1:]):
            preload = current["body"]["preload"]
            if following["position"][0] == current["position"][0]:
                assert preload == [following["body"]["trial"]["image_url"]]
            else:
                assert preload == []
        assert run.trials[-1]["body"]["preload"] == []


# -- tokens -----------------------------------------------------------------------------------------------


def decode_token(token: str) -> bytes:
    assert re.fullmatch(r"[A-Za-z0-9_-]+", token), token
    return base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))


def test_image_tokens_are_random_and_independent_of_the_label(collected):
    runs, labels = collected
    tokens = [t["body"]["trial"]["id"] for run in runs for t in run.trials]
    assert len(set(tokens)) == len(tokens), "a trial token repeats"
    first_bytes: dict[bool, list[int]] = {True: [], False: []}
    for token in tokens:
        raw = decode_token(token)
        assert len(raw) >= 16, f"{token} carries {len(raw) * 8} bits, fewer than 128"
        first_bytes[labels[token]].append(raw[0])
    for run in runs:
        for t in run.trials:
            trial = t["body"]["trial"]
            assert trial["image_url"] == f"/api/w/{run.session_token}/img/{trial['id']}"
    assert len(first_bytes[True]) > 20 and len(first_bytes[False]) > 20
    # Tokens come from `secrets`, so this is random: a 0.1% false-alarm rate by construction (1% failed
    # one run in about fifty). A real dependence on the label gives p far below it.
    p = mannwhitneyu(first_bytes[True], first_bytes[False]).pvalue
    assert p > 0.001, p
    assert len(decode_token(runs[0].session_token)) >= 32


# -- JSON --------------------------------------------------------------------------------------------------


def test_trial_payloads_are_identical_for_real_and_fake_at_each_position(collected):
    runs, labels = collected
    groups: dict[tuple, dict[bool, list]] = defaultdict(lambda: {True: [], False: []})
    for run in runs:
        secrets = secrets_of(run)
        # within one session (one client) every /trial response carries the same headers
        assert len({json.dumps({k: v for k, v in t["headers"].items() if k != "content-length"}, sort_keys=True)
                    for t in run.trials}) == 1
        for t in run.trials:
            fake = labels[t["body"]["trial"]["id"]]
            # Content-Length follows the mask indices (1 or 2 digits), drawn from the random token
            headers = {k: v for k, v in t["headers"].items() if k not in ("content-length",) + PER_CLIENT_HEADERS}
            groups[(run.mode,) + t["position"]][fake].append(
                json.dumps([t["status"], headers, normalise(t["body"], secrets)], sort_keys=True)
            )
            trial = t["body"]["trial"]
            assert set(trial) == {"id", "image_url", "phase", "block", "timed", "exposure_ms", "countdown", "masks",
                                  "mask_ms", "feedback"}
    mixed = 0
    for position, by_label in groups.items():
        values = set(by_label[True]) | set(by_label[False])
        assert len(values) == 1, (position, values)
        mixed += bool(by_label[True]) and bool(by_label[False])
    # the check has teeth only where both labels were served at the same position
    assert mixed >= 15, mixed


def test_answer_responses_differ_only_by_position_and_give_feedback_only_in_the_timed_task(collected):
    runs, labels = collected
    groups: dict[tuple, set] = defaultdict(set)
    for run in runs:
        secrets = secrets_of(run)
        for a in run.answers:
            body = a["body"]
            timed = run.mode == "hype-time" and a["position"][0] == "task"
            if timed:
                assert body["feedback"] == {"correct": True}  # the worker was always right
            else:
                assert body["feedback"] is None
                assert "correct" not in json.dumps(body)
            # An answer carries the next trial (`next`), so, as for /trial, Content-Length follows its mask indices.
            headers = {k: v for k, v in a["headers"].items() if k not in ("content-length",) + PER_CLIENT_HEADERS}
            groups[(run.mode,) + a["position"]].add(json.dumps([a["status"], headers, normalise(body, secrets)], sort_keys=True))
    for position, values in groups.items():
        assert len(values) == 1, (position, values)


def test_no_label_appears_in_any_json_before_an_answer(collected):
    runs, _ = collected
    n = 0
    for run in runs:
        secrets = secrets_of(run)
        for body in run.pre_answer_json:
            text = json.dumps(normalise(body, secrets)).lower()
            for word in LABEL_WORDS:
                assert word not in text, (word, text)
            n += 1
    assert n > 100


# -- pages ------------------------------------------------------------------------------------------------


def test_trial_page_html_carries_no_tokens_and_does_not_change_with_the_label(collected):
    runs, labels = collected
    for run in runs:
        tokens = set(secrets_of(run)) - {run.session_token}
        by_phase: dict[str, dict[bool, set]] = defaultdict(lambda: {True: set(), False: set()})
        for page in run.pages:
            assert page["status"] == 200
            html = page["html"]
            assert 'data-page="trials"' in html
            for token in tokens:
                assert token not in html
            assert "/img/" not in html and "is_fake" not in html
            by_phase[page["phase"]][labels[page["trial"]]].add(html.replace(run.session_token, "<session>"))
        for phase, by_label in by_phase.items():
            assert by_label[True] and by_label[False], phase
            assert by_label[True] == by_label[False] and len(by_label[True]) == 1, phase
        for html in run.other_pages:
            for token in tokens:
                assert token not in html
            assert "/img/" not in html
