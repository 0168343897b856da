"""A worker's browser driving the worker JSON API the way static/worker.js does, for the API, hostile-input
and cheating tests (a module of its own in tests/, which is always on the import path; the test
folders each have a conftest.py, so `from conftest import ...` would be ambiguous).

Each `ApiBrowser` has its own Flask test client, so its own cookie jar. The truth of a trial (real or
fake) never comes from here: tests read it from the database by the trial's opaque token.
"""

from __future__ import annotations

import secrets
from typing import Any

FRAME_60HZ = 1000 / 60
GOOD_CHECK = {"refresh_interval_ms": FRAME_60HZ, "window_width": 1280, "window_height": 900}


def new_key() -> str:
    return secrets.token_urlsafe(12)


def faithful_timing(trial: dict[str, Any]) -> dict[str, Any]:
    """What a 60 Hz browser that showed the trial exactly as asked would report."""
    if not trial["timed"]:
        return {"measured_ms": 2345.0, "mask_measured_ms": [], "refresh_interval_ms": FRAME_60HZ, "reaction_ms": 2345.0}
    frames = max(1, round(trial["exposure_ms"] / FRAME_60HZ))
    mask_frames = max(1, round(trial["mask_ms"] / FRAME_60HZ))
    return {
        "measured_ms": frames * FRAME_60HZ,
        "mask_measured_ms": [mask_frames * FRAME_60HZ] * len(trial["masks"]),
        "refresh_interval_ms": FRAME_60HZ,
        "reaction_ms": 640.0,
    }


class ApiBrowser:
    """One browser driving one session through the API."""

    def __init__(self, app, slug: str, params: dict[str, str] | None = None):
        self.client = app.test_client()
        self.slug = slug
        self.params = dict(params or {})
        self.token: str | None = None

    # -- entry and stages --
    def enter(self, consent: bool = True):
        response = self.client.post(f"/api/s/{self.slug}/sessions", json={"consent": consent, "params": self.params})
        if response.status_code in (200, 201):
            self.token = response.get_json()["token"]
        return response

    @property
    def api(self) -> str:
        assert self.token, "enter() first"
        return f"/api/w/{self.token}"

    def state(self) -> dict[str, Any]:
        response = self.client.get(self.api)
        assert response.status_code == 200, response.get_data(as_text=True)
        return response.get_json()

    def instructions(self):
        return self.client.post(self.api + "/instructions", json={})

    def check(self, **changes):
        return self.client.post(self.api + "/check", json={**GOOD_CHECK, **changes})

    def start(self) -> dict[str, Any]:
        """Enter, read the instructions, pass the browser check; returns the state after the check."""
        entered = self.enter()
        assert entered.status_code == 201, entered.get_data(as_text=True)
        assert self.instructions().status_code == 200
        checked = self.check()
        assert checked.status_code == 200, checked.get_data(as_text=True)
        return checked.get_json()

    # -- trials --
    def trial(self) -> dict[str, Any]:
        response = self.client.get(self.api + "/trial")
        assert response.status_code == 200, response.get_data(as_text=True)
        return response.get_json()

    def answer(self, trial: dict[str, Any] | str, response: str, key: str | None = None, *, timing: dict | None = None,
               **extra):
        """Answer a trial given as its payload (timing then defaults to a faithful report) or its token."""
        if isinstance(trial, dict):
            trial_id, timing = trial["id"], faithful_timing(trial) if timing is None else timing
        else:
            trial_id = trial
        body = {"trial": trial_id, "response": response, "idempotency_key": key or new_key(), **(timing or {}), **extra}
        return self.client.post(self.api + "/answers", json=body)
