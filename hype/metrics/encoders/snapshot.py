"""Local Hugging Face snapshot directories (``config.json`` + weights) and their identity.

Weights are never downloaded at run time: a run that silently fetched different weights would
not be comparable with the last one. ``hype weights fetch NAME`` downloads once, on a machine with
network, into ``<data dir>/weights/NAME``.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from ..errors import MetricError, WeightsNotFoundError
from .defaults import WEIGHTS_SUBDIR, EncoderSpec

WEIGHT_SUFFIXES = (".safetensors", ".bin")


class WeightsMismatchError(MetricError):
    """A weights directory holds a different model than the encoder named."""


def weight_files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.iterdir() if p.is_file() and p.suffix in WEIGHT_SUFFIXES and not p.name.startswith("."))


def resolve_snapshot(spec: EncoderSpec, weights: str | os.PathLike | None) -> tuple[Path, str]:
    """The snapshot directory for ``spec`` and a description of where it came from."""
    if weights is None:
        raise WeightsNotFoundError(
            f"No local weights for encoder {spec.name} ({spec.description}). Pass --weights DIR (a "
            f"Hugging Face snapshot directory of {spec.hub_repo}), set {spec.env_var}=DIR, or run "
            f"`hype weights fetch {spec.name}` once on a machine with network (it stores the snapshot "
            f"in <data dir>/{WEIGHTS_SUBDIR}/{spec.name})."
        )
    p = Path(weights).expanduser()
    if not p.exists():
        raise WeightsNotFoundError(f"weights directory for {spec.name} does not exist: {p}")
    if not p.is_dir():
        raise WeightsNotFoundError(f"{spec.name} weights must be a snapshot directory (config.json + weights), got a file: {p}")
    if not (p / "config.json").is_file():
        raise WeightsNotFoundError(f"{p} is not a Hugging Face snapshot for {spec.name}: it has no config.json")
    if not weight_files(p):
        raise WeightsNotFoundError(f"{p} has a config.json but no weights file (*.safetensors or *.bin) for {spec.name}")
    return p, f"snapshot {p}"


def read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise WeightsMismatchError(f"cannot read {path.name} in {path.parent}: {exc}") from exc


def snapshot_sha256(directory: Path) -> str:
    """sha256 identifying the weights: of the single weights file, or, for a sharded snapshot,
    of the sorted lines "<file name> <file sha256>"."""
    from .inception import sha256_file  # noqa: PLC0415 - one memoised file hasher

    files = weight_files(directory)
    if len(files) == 1:
        return sha256_file(files[0])
    h = hashlib.sha256()
    for f in files:
        h.update(f"{f.name} {sha256_file(f)}\n".encode())
    return h.hexdigest()


def check_model_type(spec: EncoderSpec, directory: Path, config: dict[str, Any], accepted: tuple[str, ...]) -> None:
    got = config.get("model_type")
    if got not in accepted:
        raise WeightsMismatchError(
            f"{directory} holds a {got or 'unknown'!s} model, not {spec.name} ({spec.description}); "
            f"expected model_type {' or '.join(accepted)}"
        )
