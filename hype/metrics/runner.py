"""All automated metrics for one model in one call, as a JSON-ready dict.

The platform stores this dict per model beside the HYPE scores, so it carries
the parameters and the weights' provenance (docs/protocol.md: "the report names
which weights produced each number"), not just the numbers.
"""

from __future__ import annotations

import math
import time
import warnings
from typing import Any

import numpy as np
import torch

from .device import resolve_device
from .errors import MetricError, check_pair
from .fid import fid_from_features
from .kid import kid_from_features
from .prd import prd_from_features
from .prdc import prdc_from_features

ALL_METRICS = ("fid", "kid", "prd", "prdc")


def _finite_or_none(v: float) -> float | None:
    return float(v) if math.isfinite(v) else None


def compute_all_metrics(
    real_feats: Any,
    fake_feats: Any,
    *,
    seed: int = 0,
    device: str | torch.device | None = None,
    kid_subset_size: int = 1000,
    kid_subsets: int = 100,
    prd_num_clusters: int = 20,
    prd_num_angles: int = 1001,
    prd_num_runs: int = 10,
    prd_enforce_balance: bool = True,
    k_pr: int = 3,
    k_dc: int = 5,
    metrics: tuple[str, ...] = ALL_METRICS,
    errors: str = "raise",
    feature_info: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """FID, KID, PRD and precision/recall/density/coverage of generated
    features against real ones.

    ``errors="record"`` stores a metric's ``MetricError`` message under
    ``"errors"`` and sets its values to None instead of raising, so that one
    metric that cannot be computed (e.g. PRD on unequal pools) does not lose the
    others. ``feature_info`` (e.g. ``extractor.info()``) is copied into the
    result so stored numbers name their weights.
    """
    if errors not in ("raise", "record"):
        raise ValueError("errors must be 'raise' or 'record'")
    unknown = set(metrics) - set(ALL_METRICS)
    if unknown:
        raise ValueError(f"unknown metrics {sorted(unknown)}; choose from {ALL_METRICS}")
    real, fake = check_pair(real_feats, fake_feats)
    dev = resolve_device(device)
    out: dict[str, Any] = {
        "n_real": int(real.shape[0]),
        "n_fake": int(fake.shape[0]),
        "feature_dim": int(real.shape[1]),
        "fid": None,
        "kid_mean": None,
        "kid_std": None,
        "prd": None,
        "precision": None,
        "recall": None,
        "density": None,
        "coverage": None,
        "params": {
            "seed": seed,
            "kid_subset_size": kid_subset_size,
            "kid_subsets": kid_subsets,
            "prd_num_clusters": prd_num_clusters,
            "prd_num_angles": prd_num_angles,
            "prd_num_runs": prd_num_runs,
            "k_pr": k_pr,
            "k_dc": k_dc,
            "device": str(dev),
            "torch": torch.__version__,
        },
        "warnings": [],
        "errors": {},
        "timings_s": {},
    }
    if feature_info:
        out["features"] = {str(k): str(v) for k, v in feature_info.items()}

    def run(name: str, fn: Any) -> None:
        t0 = time.perf_counter()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                fn()
            except MetricError as exc:
                if errors == "raise":
                    raise
                out["errors"][name] = str(exc)
        for w in caught:
            msg = f"{name}: {w.message}"
            if msg not in out["warnings"]:
                out["warnings"].append(msg)
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
        out["timings_s"][name] = round(time.perf_counter() - t0, 4)

    def do_fid() -> None:
        out["fid"] = _finite_or_none(fid_from_features(real, fake, device=dev))

    def do_kid() -> None:
        kid = kid_from_features(real, fake, num_subsets=kid_subsets, subset_size=kid_subset_size, seed=seed, device=dev)
        out["kid_mean"] = kid["kid_mean"]
        out["kid_std"] = kid["kid_std"]
        out["params"]["kid_subset_size_used"] = kid["subset_size"]

    def do_prd() -> None:
        res = prd_from_features(
            real,
            fake,
            num_clusters=prd_num_clusters,
            num_angles=prd_num_angles,
            num_runs=prd_num_runs,
            enforce_balance=prd_enforce_balance,
            seed=seed,
            device=dev,
        )
        d = res.to_dict()
        d.pop("params", None)
        out["prd"] = d

    def do_prdc() -> None:
        out.update(prdc_from_features(real, fake, k_pr=k_pr, k_dc=k_dc, device=dev))

    steps = {"fid": do_fid, "kid": do_kid, "prd": do_prd, "prdc": do_prdc}
    for name in ALL_METRICS:
        if name in metrics:
            run(name, steps[name])
    return out


def to_jsonable(obj: Any) -> Any:
    """numpy scalars/arrays -> plain Python, for callers that add their own fields."""
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    return obj
