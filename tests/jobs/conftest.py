"""Fixtures for the job tests: a tiny TorchScript "Inception" (tests/jobs/tiny_inception.py) and a
small study with two models whose metrics a job computes."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")
HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from tiny_inception import write_tiny_inception  # noqa: E402


@pytest.fixture(scope="session")
def tiny_weights(tmp_path_factory) -> Path:
    return write_tiny_inception(tmp_path_factory.mktemp("weights") / "tiny_inception.pt")


@pytest.fixture
def metrics_study(make_study):
    """A draft-free small study: 24 real images, two models of 16, 32 x 32 pixels."""
    return make_study("hype-infinity", models=("alpha", "beta"), n_real=24, n_fake=16, size=32)
