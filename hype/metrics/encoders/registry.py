"""Encoders by name: ``load_encoder("dinov2-vitl14", weights=DIR)``.

Each family registers a factory; new encoders plug in with ``register_encoder`` and need nothing
else from the metrics, which only see an ``Encoder``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..errors import MetricError
from .defaults import SPECS, EncoderSpec

Factory = Callable[[EncoderSpec, "str | os.PathLike | None", Any], Any]
_FACTORIES: dict[str, Factory] = {}


def register_encoder(family: str, factory: Factory) -> None:
    """Make ``factory(spec, weights, device) -> Encoder`` build every encoder of ``family``."""
    _FACTORIES[family] = factory


def encoder_names() -> list[str]:
    return list(SPECS)


def get_spec(name: str) -> EncoderSpec:
    try:
        return SPECS[name]
    except KeyError:
        raise MetricError(f"unknown encoder {name!r}; choose from {', '.join(SPECS)}") from None


def _ensure_builtin_families() -> None:
    from . import clip, dinov2, inception  # noqa: F401, PLC0415 - importing registers them


def load_encoder(
    name: str,
    weights: str | os.PathLike | None = None,
    device: Any = None,
    *,
    search_dirs: list[Path] | None = None,
):
    """Build encoder ``name`` from local weights: ``weights`` (a file for Inception, a snapshot
    directory otherwise), else the spec's environment variable, else ``<dir>/<name>`` for each of
    ``search_dirs`` (where ``hype weights fetch`` puts them). Nothing is downloaded."""
    spec = get_spec(name)
    _ensure_builtin_families()
    if weights is None and spec.family != "inception":
        env = os.environ.get(spec.env_var, "").strip()
        if env:
            weights = env
        else:
            for d in search_dirs or []:
                if (Path(d) / name).is_dir():
                    weights = Path(d) / name
                    break
    return _FACTORIES[spec.family](spec, weights, device)
