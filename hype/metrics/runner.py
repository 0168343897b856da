"""All automated metrics for one model on one encoder's features in one call, as a JSON-ready dict.

The platform stores this dict per model and encoder beside the HYPE scores, so it carries the
parameters, the encoder and the weights' provenance (docs/protocol.md: "the report names which weights
produced each number") and a seeded bootstrap interval for every number, not just the numbers.
The Fréchet distance is stored under ``"fid"`` whatever the encoder; ``"fd_name"`` says what the
literature calls it there (FID on Inception, FD_DINOv2 on DINOv2).
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
from . import bootstrap
from .cmmd import SCALE as CMMD_SCALE
from .cmmd import SIGMA as CMMD_SIGMA
from .cmmd import cmmd_from_features, rbf_kernel_matrix
from .fid import fid_from_features
from .kid import feature_dtype, kid_from_features, polynomial_kernel
from .prd import prd_from_features
from .prdc import prdc_terms

ALL_METRICS = ("fid", "kid", "prd", "prdc", "cmmd")
#: What runs when the caller does not choose: CMMD only on CLIP embeddings, where it is defined.
DEFAULT_METRICS = ("fid", "kid", "prd", "prdc")
#: Sub-seeds of the bootstrap per metric, so adding a metric never moves another's interval.
_CI_SEEDS = {"fid": 1, "kid": 2, "prd": 3, "prdc": 4, "cmmd": 5}


def default_metrics(encoder_family: str | None) -> tuple[str, ...]:
    return DEFAULT_METRICS + (("cmmd",) if encoder_family == "clip" else ())


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
    metrics: tuple[str, ...] | None = None,
    errors: str = "raise",
    feature_info: dict[str, Any] | None = None,
    ci: bool = True,
    n_boot: int = bootstrap.DEFAULT_N_BOOT,
    confidence: float = bootstrap.DEFAULT_CONFIDENCE,
) -> dict[str, Any]:
    """FD, KID, PRD, precision/recall/density/coverage (and CMMD on CLIP features) of generated
    features against real ones, each with a percentile bootstrap interval under ``"ci"`` (seeded
    from ``seed``; ``hype.metrics.bootstrap`` says what each interval resamples).

    ``errors="record"`` stores a metric's ``MetricError`` message under
    ``"errors"`` and sets its values to None instead of raising, so that one
    metric that cannot be computed (e.g. PRD on unequal pools) does not lose the
    others. ``feature_info`` (e.g. ``extractor.info()``) is copied into the
    result so stored numbers name their weights.
    """
    if errors not in ("raise", "record"):
        raise ValueError("errors must be 'raise' or 'record'")
    info = {str(k): str(v) for k, v in (feature_info or {}).items()}
    encoder = info.get("encoder")
    family = _family(encoder)
    if metrics is None:
        metrics = default_metrics(family)
    unknown = set(metrics) - set(ALL_METRICS)
    if unknown:
        raise ValueError(f"unknown metrics {sorted(unknown)}; choose from {ALL_METRICS}")
    dtype = feature_dtype(real_feats, fake_feats)
    real, fake = check_pair(real_feats, fake_feats)
    dev = resolve_device(device)
    out: dict[str, Any] = {
        "n_real": int(real.shape[0]),
        "n_fake": int(fake.shape[0]),
        "feature_dim": int(real.shape[1]),
        "encoder": encoder,
        "fd_name": _fd_name(encoder),
        "fid": None,
        "kid_mean": None,
        "kid_std": None,
        "prd": None,
        "precision": None,
        "recall": None,
        "density": None,
        "coverage": None,
        "cmmd": None,
        "ci": {},
        "params": {
            "seed": seed,
            "kid_subset_size": kid_subset_size,
            "kid_subsets": kid_subsets,
            "prd_num_clusters": prd_num_clusters,
            "prd_num_angles": prd_num_angles,
            "prd_num_runs": prd_num_runs,
            "k_pr": k_pr,
            "k_dc": k_dc,
            "ci": {"method": "percentile bootstrap over images", "n_boot": n_boot, "confidence": confidence} if ci else None,
            "cmmd_sigma": CMMD_SIGMA,
            "cmmd_scale": CMMD_SCALE,
            "device": str(dev),
            "torch": torch.__version__,
        },
        "warnings": [],
        "errors": {},
        "timings_s": {},
    }
    if info:
        out["features"] = info
    boot = {"n_boot": n_boot, "confidence": confidence}

    def ci_seed(name: str) -> int:
        return seed * 100 + _CI_SEEDS[name]

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
        value = fid_from_features(real, fake, device=dev)
        out["fid"] = _finite_or_none(value)
        if ci:
            out["ci"]["fid"] = bootstrap.fd_interval(real, fake, seed=ci_seed("fid"), device=dev, point=value, **boot)

    def do_kid() -> None:
        kid = kid_from_features(real, fake, num_subsets=kid_subsets, subset_size=kid_subset_size, seed=seed,
                                device=dev, dtype=dtype)
        out["kid_mean"] = kid["kid_mean"]
        out["kid_std"] = kid["kid_std"]
        out["params"]["kid_subset_size_used"] = kid["subset_size"]
        if ci:
            out["ci"]["kid_mean"] = bootstrap.kernel_interval(
                real, fake, polynomial_kernel, point=kid["kid_mean"], seed=ci_seed("kid"), device=dev, dtype=dtype, **boot)

    def do_cmmd() -> None:
        value = cmmd_from_features(real, fake, device=dev)
        out["cmmd"] = value
        if ci:
            out["ci"]["cmmd"] = bootstrap.kernel_interval(
                real, fake, rbf_kernel_matrix, point=value, scale=CMMD_SCALE, seed=ci_seed("cmmd"), device=dev, **boot)

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
        if ci:
            out["ci"].update(bootstrap.prd_interval(
                res.run_labels, fake.shape[0], prd_num_clusters, prd_num_angles, point=(res.f_8, res.f_1_8),
                seed=ci_seed("prd"), **boot))

    def do_prdc() -> None:
        terms = prdc_terms(real, fake, k_pr=k_pr, k_dc=k_dc, device=dev)
        out.update(terms.values())
        if ci:
            out["ci"].update(bootstrap.prdc_interval(terms, seed=ci_seed("prdc"), **boot))

    steps = {"fid": do_fid, "kid": do_kid, "prd": do_prd, "prdc": do_prdc, "cmmd": do_cmmd}
    for name in ALL_METRICS:
        if name in metrics:
            run(name, steps[name])
    return out


def _family(encoder: str | None) -> str | None:
    from .encoders.defaults import SPECS  # noqa: PLC0415

    spec = SPECS.get(encoder or "")
    return spec.family if spec else None


def _fd_name(encoder: str | None) -> str:
    from .encoders.defaults import SPECS  # noqa: PLC0415

    spec = SPECS.get(encoder or "")
    return spec.fd_name if spec else "FD"


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
