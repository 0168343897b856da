"""Automated metrics (FD on Inception = FID, on DINOv2 = FD_DINOv2; KID, PRD,
precision/recall/density/coverage; CMMD on CLIP) on the same images the HYPE
evaluators see, each with a bootstrap interval.

Attributes are imported lazily: torch is an optional dependency (the
``metrics`` extra), and the web application imports ``hype`` without it.
``from hype.metrics import MetricError`` never needs torch.
"""

from __future__ import annotations

import importlib
from typing import Any

from .errors import DeviceError, MetricError, WeightsNotFoundError

_LAZY = {
    "resolve_device": "device",
    "load_inception": "features",
    "InceptionFeatureExtractor": "features",
    "FeatureCache": "features",
    "pool_features": "features",
    "pool_key_from_hashes": "features",
    "tf1_resize_bilinear": "resize",
    "load_encoder": "encoders",
    "encoder_names": "encoders",
    "Encoder": "encoders",
    "cmmd_from_features": "cmmd",
    "fd_interval": "bootstrap",
    "kernel_interval": "bootstrap",
    "PREPROCESSING_VERSION": "features",
    "frechet_distance": "fid",
    "fid_from_features": "fid",
    "fid_bootstrap": "fid",
    "feature_statistics": "fid",
    "prd_from_features": "prd",
    "prd_from_histograms": "prd",
    "f_beta": "prd",
    "max_f_beta_pair": "prd",
    "PRDResult": "prd",
    "kid_from_features": "kid",
    "prdc_from_features": "prdc",
    "kmeans": "kmeans",
    "compute_all_metrics": "runner",
    "ALL_METRICS": "runner",
}

__all__ = ["DeviceError", "MetricError", "WeightsNotFoundError", *_LAZY]


def __getattr__(name: str) -> Any:
    mod = _LAZY.get(name)
    if mod is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{mod}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
