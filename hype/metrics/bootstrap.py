"""Seeded percentile bootstrap intervals for every automated metric (95% by default).

Images are resampled with replacement, the real and the generated set independently. How a
replicate is evaluated depends on what the metric can survive:

* **FD** (FID, FD_DINOv2): the full Fréchet distance of each resampled pair. Duplicates lower the
  covariance rank, so the replicates sit above the point estimate, far above it when the dimension
  is large against n (d = 16, n = 300: value 0.16, replicates 0.54–0.85). The interval is therefore
  the percentile interval moved down by that bootstrap bias (mean replicate − value), so it is
  centred where the estimate is and never leaves out its own value for this reason; no lower than 0.
* **KID, CMMD** (kernel U-statistics): a replicate is the unbiased MMD^2 of the resampled sets,
  with pairs of copies of the *same* image left out, as the unbiased estimator leaves out the
  diagonal. With multiplicities c, the within-set sum is c^T K c - sum_i c_i^2 K_ii over
  n^2 - sum_i c_i^2 pairs, so every replicate is a quadratic form in the kernel matrices computed
  once: no replicate recomputes a kernel. KID's interval is computed on all images of a pool up to
  ``kernel_cap`` (a random subset beyond), the KID point value on torch-fidelity's subsets: both
  estimate the same MMD^2.
* **PRD, precision/recall/density/coverage**: conditional on the fitted clusters and k-NN balls.
  Resampling the images that *define* a k-NN ball would put zero-distance duplicates into the
  radii and shrink every ball, so the interval resamples the per-image terms instead (cluster
  labels; "inside a ball" indicators and ball counts). It describes the sampling variability of
  the evaluated images, not of the manifold estimate.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import torch

from .fid import fd_tensors
from .prd import max_f_beta_pair
from .prdc import PRDCTerms

DEFAULT_N_BOOT = 200
DEFAULT_CONFIDENCE = 0.95
#: Images per pool whose kernel matrices the KID/CMMD intervals hold (3 x cap^2 float64).
KERNEL_CAP = 3000


def summarise(point: float | None, values: np.ndarray, confidence: float) -> dict[str, Any]:
    """Point value, percentile interval and bootstrap spread, JSON-ready."""
    alpha = (1 - confidence) / 2
    vals = values[np.isfinite(values)]
    if vals.size < 2:
        return {"value": point, "low": None, "high": None, "confidence": confidence, "n_boot": int(values.size)}
    lo, hi = np.quantile(vals, [alpha, 1 - alpha])
    return {
        "value": point,
        "low": float(lo),
        "high": float(hi),
        "boot_mean": float(vals.mean()),
        "boot_std": float(vals.std(ddof=1)),
        "confidence": confidence,
        "n_boot": int(values.size),
    }


def _check(n_boot: int, confidence: float) -> None:
    from .errors import MetricError  # noqa: PLC0415

    if n_boot < 2:
        raise MetricError("a bootstrap interval needs n_boot >= 2")
    if not 0 < confidence < 1:
        raise MetricError("confidence must be in (0, 1)")


def fd_interval(
    real: np.ndarray, fake: np.ndarray, *, n_boot: int = DEFAULT_N_BOOT, confidence: float = DEFAULT_CONFIDENCE,
    seed: int = 0, device: Any = None, eps: float = 1e-6, point: float | None = None,
) -> dict[str, Any]:
    """Percentile interval of the Fréchet distance (``point`` if already computed)."""
    from .device import resolve_device  # noqa: PLC0415

    _check(n_boot, confidence)
    dev = resolve_device(device)
    rt = torch.as_tensor(real, dtype=torch.float64, device=dev)
    ft = torch.as_tensor(fake, dtype=torch.float64, device=dev)
    if point is None:
        point = fd_tensors(rt, ft, eps=eps)
    rng = np.random.default_rng(seed)
    values = np.empty(n_boot)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        for b in range(n_boot):
            ir = torch.as_tensor(rng.integers(0, rt.shape[0], rt.shape[0]), device=dev)
            jf = torch.as_tensor(rng.integers(0, ft.shape[0], ft.shape[0]), device=dev)
            values[b] = fd_tensors(rt[ir], ft[jf], eps=eps)
    return recentred_on_point(summarise(point, values, confidence), lower_bound=0.0)


def recentred_on_point(summary: dict[str, Any], *, lower_bound: float | None = None) -> dict[str, Any]:
    """Move a percentile interval by the bootstrap's own bias estimate (mean replicate − value).

    For a statistic whose resamples are biased in one direction (FD with duplicated images), the
    plain percentile interval measures the spread of a shifted quantity; the shift is what the
    bootstrap says the estimator's bias is, so removing it keeps the spread and puts it back around
    the estimate. For an unbiased replicate distribution it changes nothing."""
    if summary.get("low") is None or summary.get("value") is None:
        return summary
    bias = summary["boot_mean"] - summary["value"]
    low, high = summary["low"] - bias, summary["high"] - bias
    if lower_bound is not None:
        low, high = max(low, lower_bound), max(high, lower_bound)
    return {**summary, "low": float(low), "high": float(high), "boot_bias": float(bias)}


def _counts(rng: np.random.Generator, n: int, n_boot: int, device: torch.device) -> torch.Tensor:
    return torch.as_tensor(rng.multinomial(n, np.full(n, 1.0 / n), size=n_boot), dtype=torch.float64, device=device)


def mmd2_replicates(k_xx: torch.Tensor, k_xy: torch.Tensor, k_yy: torch.Tensor, cx: torch.Tensor, cy: torch.Tensor) -> torch.Tensor:
    """Unbiased MMD^2 of every resampled pair given multiplicities ``cx`` (B x m), ``cy`` (B x n):
    copies of one image never pair with each other (module docstring)."""
    m, n = k_xx.shape[0], k_yy.shape[0]
    k_xx, k_xy, k_yy = k_xx.double(), k_xy.double(), k_yy.double()

    def within(k: torch.Tensor, c: torch.Tensor, size: int) -> torch.Tensor:
        quad = ((c @ k) * c).sum(1) - (c * c) @ torch.diagonal(k)
        return quad / (size * size - (c * c).sum(1))

    cross = ((cx @ k_xy) * cy).sum(1) / (m * n)
    return within(k_xx, cx, m) + within(k_yy, cy, n) - 2 * cross


def kernel_interval(
    real: np.ndarray, fake: np.ndarray, kernel: Any, *, point: float, scale: float = 1.0,
    n_boot: int = DEFAULT_N_BOOT, confidence: float = DEFAULT_CONFIDENCE, seed: int = 0,
    device: Any = None, cap: int = KERNEL_CAP, dtype: torch.dtype = torch.float64,
) -> dict[str, Any]:
    """Percentile interval of ``scale`` x unbiased MMD^2 under ``kernel(a, b) -> matrix``."""
    from .device import resolve_device  # noqa: PLC0415

    _check(n_boot, confidence)
    dev = resolve_device(device)
    rng = np.random.default_rng(seed)
    if real.shape[0] > cap:
        real = real[np.sort(rng.choice(real.shape[0], cap, replace=False))]
    if fake.shape[0] > cap:
        fake = fake[np.sort(rng.choice(fake.shape[0], cap, replace=False))]
    x = torch.as_tensor(real, dtype=dtype, device=dev)
    y = torch.as_tensor(fake, dtype=dtype, device=dev)
    k_xx, k_xy, k_yy = kernel(x, x), kernel(x, y), kernel(y, y)
    values = np.empty(n_boot)
    chunk = 50
    for s in range(0, n_boot, chunk):
        b = min(chunk, n_boot - s)
        cx = _counts(rng, x.shape[0], b, dev)
        cy = _counts(rng, y.shape[0], b, dev)
        values[s : s + b] = (scale * mmd2_replicates(k_xx, k_xy, k_yy, cx, cy)).cpu().numpy()
    return summarise(point, values, confidence)


def prd_interval(
    run_labels: list[np.ndarray], n_fake: int, num_clusters: int, num_angles: int, *,
    point: tuple[float, float], n_boot: int = DEFAULT_N_BOOT, confidence: float = DEFAULT_CONFIDENCE, seed: int = 0,
    epsilon: float = 1e-10,
) -> dict[str, dict[str, Any]]:
    """Intervals of F_8 and F_1/8 with every run's clustering held fixed (module docstring): per
    replicate, the histograms of all runs at once, their PRD curves, the curve averaged over runs
    and its (F_8, F_1/8), as ``prd_from_features`` does."""
    _check(n_boot, confidence)
    rng = np.random.default_rng(seed)
    labels = np.stack(run_labels)  # runs x (n_fake + n_real), generated first
    runs, total = labels.shape
    n_real = total - n_fake
    offset = (np.arange(runs) * num_clusters)[:, None]
    slopes = np.tan(np.linspace(epsilon, np.pi / 2 - epsilon, num_angles))
    f8 = np.empty(n_boot)
    f18 = np.empty(n_boot)
    for b in range(n_boot):
        jf = rng.integers(0, n_fake, n_fake)
        ir = n_fake + rng.integers(0, n_real, n_real)
        q = np.bincount((labels[:, jf] + offset).ravel(), minlength=runs * num_clusters).reshape(runs, num_clusters) / n_fake
        p = np.bincount((labels[:, ir] + offset).ravel(), minlength=runs * num_clusters).reshape(runs, num_clusters) / n_real
        precision = np.minimum(p[:, None, :] * slopes[None, :, None], q[:, None, :]).sum(axis=2)  # runs x angles
        recall = precision / slopes[None, :]
        f8[b], f18[b] = max_f_beta_pair(np.clip(precision, 0, 1).mean(0), np.clip(recall, 0, 1).mean(0))
    return {"f_8": summarise(point[0], f8, confidence), "f_1_8": summarise(point[1], f18, confidence)}


def prdc_interval(
    terms: PRDCTerms, *, n_boot: int = DEFAULT_N_BOOT, confidence: float = DEFAULT_CONFIDENCE, seed: int = 0
) -> dict[str, dict[str, Any]]:
    """Intervals of precision, recall, density and coverage, balls held fixed (module docstring)."""
    _check(n_boot, confidence)
    rng = np.random.default_rng(seed)
    point = terms.values()
    fake_terms = torch.stack([terms.fake_in_real_ball.double(), terms.density_count / terms.k_dc]).cpu().numpy()
    real_terms = torch.stack([terms.real_in_fake_ball.double(), terms.covered.double()]).cpu().numpy()
    n_fake, n_real = fake_terms.shape[1], real_terms.shape[1]
    cf = rng.multinomial(n_fake, np.full(n_fake, 1.0 / n_fake), size=n_boot) / n_fake
    cr = rng.multinomial(n_real, np.full(n_real, 1.0 / n_real), size=n_boot) / n_real
    fake_means = cf @ fake_terms.T  # n_boot x 2: precision, density
    real_means = cr @ real_terms.T  # n_boot x 2: recall, coverage
    return {
        "precision": summarise(point["precision"], fake_means[:, 0], confidence),
        "density": summarise(point["density"], fake_means[:, 1], confidence),
        "recall": summarise(point["recall"], real_means[:, 0], confidence),
        "coverage": summarise(point["coverage"], real_means[:, 1], confidence),
    }
