"""Errors and input validation shared by every metric.

Kept free of torch imports so callers (the web app, the CLI) can catch these
exceptions without pulling in the optional ``metrics`` dependencies.
"""

from __future__ import annotations

import numpy as np


class MetricError(ValueError):
    """Inputs cannot produce a meaningful metric value (too few images,
    mismatched feature dimensions, non-finite features...).

    A ``ValueError`` subclass so generic callers that already handle bad input
    keep working."""


class DeviceError(RuntimeError):
    """The requested compute device does not exist on this machine."""


class WeightsNotFoundError(FileNotFoundError):
    """No Inception weights file could be located; the message says how to get one."""


def as_feature_matrix(x: object, name: str, keep_float32: bool = False) -> np.ndarray:
    """Validate one feature set and return it as a 2-D float64 array (float32 kept as it is with
    ``keep_float32``: a metric that computes in float32 need not copy a 160 MB pool twice).

    Every metric goes through here so that a NaN from a broken generator or a
    transposed array fails loudly instead of yielding a plausible-looking number.
    """
    try:
        import torch  # noqa: PLC0415 - optional dependency

        if isinstance(x, torch.Tensor):
            x = x.detach().cpu().numpy()
    except ImportError:  # pragma: no cover - torch is installed wherever metrics run
        pass
    arr = np.asarray(x)
    if arr.ndim != 2:
        raise MetricError(f"{name} features must be a 2-D array (n_images x dim), got shape {arr.shape}")
    if not np.issubdtype(arr.dtype, np.number) or np.issubdtype(arr.dtype, np.complexfloating):
        raise MetricError(f"{name} features must be real numbers, got dtype {arr.dtype}")
    if not (keep_float32 and arr.dtype == np.float32):
        arr = arr.astype(np.float64, copy=False)
    if not np.isfinite(arr).all():
        bad = int((~np.isfinite(arr)).any(axis=1).sum())
        raise MetricError(f"{name} features contain NaN or inf in {bad} of {arr.shape[0]} rows")
    return arr


def check_pair(real: object, fake: object, keep_float32: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Validate a (real, generated) pair of feature sets and their shared dimension."""
    r = as_feature_matrix(real, "real", keep_float32)
    f = as_feature_matrix(fake, "generated", keep_float32)
    if r.shape[1] != f.shape[1]:
        raise MetricError(
            f"feature dimensions differ: real has {r.shape[1]}, generated has {f.shape[1]} "
            "(were both sets embedded with the same network and layer?)"
        )
    return r, f


def require_count(n: int, needed: int, name: str, metric: str, why: str) -> None:
    """Raise a ``MetricError`` naming how many images a metric needs and why."""
    if n < needed:
        raise MetricError(f"{metric} needs at least {needed} {name} images ({why}); got {n}")
