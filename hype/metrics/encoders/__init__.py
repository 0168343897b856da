"""Feature encoders behind one interface (``Encoder``), built by name from local weights:
Inception (FID), DINOv2 ViT-S/B/L/g-14 (FD_DINOv2), CLIP ViT-L/14 (CMMD).

Attributes load lazily, so the CLI can read the names in ``defaults`` without importing torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "Encoder": "base",
    "DEFAULT_ENCODER": "defaults",
    "SPECS": "defaults",
    "WEIGHTS_SUBDIR": "defaults",
    "EncoderSpec": "defaults",
    "encoder_names": "registry",
    "get_spec": "registry",
    "load_encoder": "registry",
    "register_encoder": "registry",
}

__all__ = list(_LAZY)


def __getattr__(name: str) -> Any:
    mod = _LAZY.get(name)
    if mod is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{mod}", __name__), name)
    globals()[name] = value
    return value
