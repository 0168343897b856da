"""Helpers for the hostile-input, fuzzing and cheating tests (tests/hostile): a browser that drives the worker JSON
API like static/worker.js does, and the database as the only source of truth about labels."""

from __future__ import annotations

import secrets
from typing import Any

from sqlalchemy import select

from hype.models import Assignment, Trial

FRAME_60HZ = 1000 / 60
GOOD_CHECK = {"refresh_interval_ms": FRAME_60HZ, "window_width": 1280, "window_height": 900}


def new_key() -> str:
    return secrets.token_urlsafe(12)


def timing_for(trial: dict[str, Any]) -> dict[str, Any]:
    """What a 60 Hz browser that showed the trial exactly as asked would send with its answer."""
    if not trial["timed"]:
        return {"measured_ms": 1500.0, "mask_measured_ms": [], "refresh_interval_ms": FRAME_60HZ, "reaction_ms": 1500.0}
    frames = max(1, round(trial["exposure_ms"] / FRAME_60HZ))
    mask_frames = max(1, round(trial["mask_ms"] / FRAME_60HZ))
    return {
        "measured_ms": frames * FRAME_60HZ,
        "mask_measured_ms": [mask_frames * FRAME_60HZ] * len(trial["masks"]),
        "refresh_interval_ms": FRAME_60HZ,
        "reaction_ms": 600.0,
    }


class Browser:
    """One worker's browser: its own cookie jar and the session token the API gave it."""

    def __init__(self, app, slug: str, params: dict[str, str] | None = None):
        self.client = app.test_client()
        self.slug = slug
        self.params = dict(params or {})
        self.token: str | None = None

    def enter(self):
        response = self.client.post(f"/api/s/{self.slug}/sessions", json={"consent": True, "params": self.params})
        if response.status_code in (200, 201):
            self.token = response.get_json()["token"]
        return response

    @property
    def api(self) -> str:
        assert self.token, "enter() first"
        return f"/api/w/{self.token}"

    def start(self) -> dict[str, Any]:
        """Enter, read the instructions, pass the browser check."""
        entered = self.enter()
        assert entered.status_code == 201, entered.get_data(as_text=True)
        assert self.client.post(self.api + "/instructions", json={}).status_code == 200
        checked = self.client.post(self.api + "/check", json=GOOD_CHECK)
        assert checked.status_code == 200, checked.get_data(as_text=True)
        return checked.get_json()

    def trial(self) -> dict[str, Any]:
        response = self.client.get(self.api + "/trial")
        assert response.status_code == 200, response.get_data(as_text=True)
        return response.get_json()

    def answer(self, trial: dict[str, Any], response: str, key: str | None = None):
        body = {"trial": trial["id"], "response": response, "idempotency_key": key or new_key(), **timing_for(trial)}
        return self.client.post(self.api + "/answers", json=body)


def truth(session, trial_id: str) -> bool:
    """is_fake of a trial, from the database (a fresh snapshot: the app commits on its own connection)."""
    session.rollback()
    value = session.scalar(select(Trial.is_fake).where(Trial.image_token == trial_id))
    assert value is not None, f"no trial {trial_id!r}"
    return bool(value)


def stage_of(session, token: str) -> str:
    session.rollback()
    return session.scalar(select(Assignment.stage).where(Assignment.token == token))


def run_correctly(browser: Browser, session, phase: str) -> int:
    """Answer every trial of ``phase`` correctly (from the database); returns how many."""
    n = 0
    while True:
        trial = browser.trial()["trial"]
        if trial is None or trial["phase"] != phase:
            return n
        response = browser.answer(trial, "fake" if truth(session, trial["id"]) else "real")
        assert response.status_code == 201, response.get_data(as_text=True)
        n += 1
