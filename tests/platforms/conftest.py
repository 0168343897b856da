"""Fixtures for the crowd-platform tests: a published study with finished workers, the Prolific
stand-in over real HTTP, and a real boto3 MTurk client under botocore's Stubber."""

from __future__ import annotations

import numpy as np
import pytest

from prolific_standin import TOKEN, ProlificStandIn, serve
from session_player import play

SMALL = {"qualification": {"n_real": 4, "n_fake": 4}, "infinity": {"n_real": 5, "n_fake": 5}, "evaluators_per_model": 2}


@pytest.fixture
def prolific_api():
    state = ProlificStandIn()
    server = serve(state)
    yield state
    server.shutdown()
    server.server_close()


@pytest.fixture
def sleeps():
    return []


@pytest.fixture
def prolific_client(prolific_api, sleeps):
    from hype.platforms.prolific import ProlificClient

    return ProlificClient(token=TOKEN, base_url=prolific_api.url, sleep=sleeps.append, backoff_s=0.5)


@pytest.fixture
def study(make_study, session):
    return make_study(settings=SMALL)


@pytest.fixture
def crowd(session, study):
    """play(worker, platform, **kw) -> assignment id: a finished worker on `platform`."""

    rng = np.random.default_rng(3)

    def run(worker: str, platform: str, *, accuracy: float = 1.0, qualify: bool = True) -> int:
        params = {"prolific": {"PROLIFIC_PID": worker, "STUDY_ID": "s", "SESSION_ID": f"sess-{worker}"},
                  "mturk": {"workerId": worker, "assignmentId": f"ASG{worker}", "hitId": "HIT1",
                            "turkSubmitTo": "https://workersandbox.mturk.com"}}[platform]
        return play(session, study, worker, accuracy=accuracy, rng=rng, platform_params=params, qualify=qualify)

    return run
