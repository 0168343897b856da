"""Shared fixtures for the metrics tests. Reference packages are imported through
``hype.metrics.reference`` (torchvision stand-in, see there); a missing one skips its test."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from hype.metrics.reference import import_with_torchvision_stub as _import_reference


def import_with_torchvision_stub(module: str, attr: str) -> Any:
    """``from module import attr``; skips the test when the reference package is not installed."""
    try:
        return _import_reference(module, attr)
    except ModuleNotFoundError as exc:
        pytest.skip(str(exc))


@pytest.fixture(scope="session")
def reference_import() -> Callable[[str, str], Any]:
    return import_with_torchvision_stub


@pytest.fixture(scope="session")
def inception():
    """The packaged Inception on CPU, loaded once (0.5 s, 87 MB)."""
    from hype.metrics.features import load_inception

    try:
        return load_inception(device="cpu")
    except FileNotFoundError as exc:  # WeightsNotFoundError
        pytest.skip(f"no Inception weights: {exc}")
