"""Choice of compute device for the metrics."""

from __future__ import annotations

import torch

from .errors import DeviceError


def resolve_device(name: str | torch.device | None = None) -> torch.device:
    """Turn a user's device request into a ``torch.device``.

    ``None`` means "the best available" (CUDA if present, else CPU) so that the
    same call works on a laptop and on a GPU server. An explicit CUDA request on
    a machine without CUDA is an error rather than a silent CPU fallback: the
    caller asked for something specific and a 100x slowdown should not be a
    surprise.
    """
    if name is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(name)
    except (RuntimeError, TypeError) as exc:
        raise DeviceError(f"unknown device {name!r}: {exc}") from exc
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise DeviceError(
                f"device {name!r} requested but CUDA is not available on this machine "
                "(torch build: " + torch.__version__ + "); pass device=None or 'cpu'"
            )
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise DeviceError(
                f"device {name!r} requested but only {torch.cuda.device_count()} CUDA device(s) exist"
            )
    elif dev.type != "cpu":
        # The metrics do float64 linear algebra, which e.g. MPS lacks; refusing
        # here beats a cryptic dtype error deep inside an eigendecomposition.
        raise DeviceError(f"device {name!r} is not supported; use 'cpu' or 'cuda'")
    return dev
