"""Kernel Inception Distance (Bińkowski et al., ICLR 2018), on any encoder's features.

Unlike FD, the unbiased MMD^2 estimator has no small-sample bias, which matters for HYPE pools of
a few thousand images. Conventions are torch-fidelity's (themselves from the authors' MMD-GAN
code): cubic polynomial kernel k(x, y) = (x.y / d + 1)^3, unbiased MMD^2 with the cross term over
all m^2 pairs, mean and population standard deviation over 100 random subsets of 1000 images drawn
without replacement. The subsets are drawn with ``numpy.random.RandomState(seed).choice`` in
torch-fidelity's order, so the same seed reproduces torch-fidelity's number.

Precision: float32 features (what every encoder produces) get float32 Gram matrices and kernels,
as torch-fidelity computes them, but every *sum* is accumulated in float64: MMD^2 is a small
difference of large kernel means, and it is the accumulation over 10^6 terms, not the single
products, where float32 would lose digits. float64 features are computed in float64 throughout.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import torch

from .device import resolve_device
from .errors import MetricError, check_pair


def polynomial_kernel(
    x: torch.Tensor, y: torch.Tensor, degree: int = 3, gamma: float | None = None, coef0: float = 1.0
) -> torch.Tensor:
    """(gamma x.y + coef0)^degree with gamma = 1/d by default, in the inputs' dtype."""
    g = 1.0 / x.shape[1] if gamma is None else gamma
    k = x @ y.T
    k.mul_(g).add_(coef0)
    if degree == 3:  # torch's pow_ is ~6x slower than two multiplies on CPU
        return k * k * k
    return k.pow_(degree)


def mmd2_unbiased(k_xx: torch.Tensor, k_xy: torch.Tensor, k_yy: torch.Tensor) -> torch.Tensor:
    """Unbiased MMD^2 in float64: within-set sums exclude the diagonal (self-similarity), the
    cross term keeps all m^2 pairs (torch-fidelity's ``mmd_est='unbiased'``)."""
    m = k_xx.shape[0]
    n = k_yy.shape[0]
    f64 = torch.float64
    sum_xx = k_xx.sum(dtype=f64) - torch.diagonal(k_xx).sum(dtype=f64)
    sum_yy = k_yy.sum(dtype=f64) - torch.diagonal(k_yy).sum(dtype=f64)
    return sum_xx / (m * (m - 1)) + sum_yy / (n * (n - 1)) - 2.0 * k_xy.sum(dtype=f64) / (m * n)


def feature_dtype(*arrays: Any) -> torch.dtype:
    """float32 when every input is float32 (as encoders produce), else float64."""
    ok = all(
        (isinstance(a, torch.Tensor) and a.dtype == torch.float32)
        or (isinstance(a, np.ndarray) and a.dtype == np.float32)
        for a in arrays
    )
    return torch.float32 if ok else torch.float64


def kid_from_features(
    real: Any,
    fake: Any,
    *,
    num_subsets: int = 100,
    subset_size: int = 1000,
    degree: int = 3,
    gamma: float | None = None,
    coef0: float = 1.0,
    seed: int = 0,
    device: str | torch.device | None = None,
    dtype: torch.dtype | None = None,
) -> dict[str, Any]:
    """KID mean and std over subsets on the device (``dtype``: see the module docstring; None
    follows the inputs).

    The subset size is ``min(subset_size, n_real, n_fake)`` so small pools still get a value;
    the size used is returned because KID's variance (not its mean) depends on it. Note
    torch-fidelity's default seed is 2020.
    """
    dtype = dtype or feature_dtype(real, fake)
    r, f = check_pair(real, fake)
    if num_subsets < 1:
        raise MetricError("KID needs num_subsets >= 1")
    m = min(subset_size, r.shape[0], f.shape[0])
    if m < 2:
        raise MetricError(
            f"KID needs at least 2 real and 2 generated images per subset (the unbiased estimator "
            f"averages over pairs of distinct images); got {r.shape[0]} real, {f.shape[0]} generated"
        )
    if m < subset_size:
        warnings.warn(
            f"KID subset size reduced from {subset_size} to {m} (pool sizes {r.shape[0]} real, "
            f"{f.shape[0]} generated); kid_std is not comparable across subset sizes"
            + (" and is ~0 here because every subset is the whole pool" if m == min(r.shape[0], f.shape[0]) == max(r.shape[0], f.shape[0]) else ""),
            RuntimeWarning,
            stacklevel=2,
        )
    dev = resolve_device(device)
    rt = torch.as_tensor(r, device=dev, dtype=dtype)
    ft = torch.as_tensor(f, device=dev, dtype=dtype)
    rng = np.random.RandomState(seed)
    draws = []
    for _ in range(num_subsets):
        # Same draw order as torch-fidelity: the first set's subset, then the second's.
        draws.append((rng.choice(r.shape[0], m, replace=False), rng.choice(f.shape[0], m, replace=False)))
    values = torch.empty(num_subsets, dtype=torch.float64, device=dev)
    with torch.inference_mode():
        for i, (ir, jf) in enumerate(draws):
            x = rt[torch.as_tensor(ir, device=dev)]
            y = ft[torch.as_tensor(jf, device=dev)]
            k = lambda a, b: polynomial_kernel(a, b, degree, gamma, coef0)  # noqa: E731
            values[i] = mmd2_unbiased(k(x, x), k(x, y), k(y, y))
    vals = values.cpu().numpy()
    return {
        "kid_mean": float(vals.mean()),
        "kid_std": float(vals.std()),
        "subset_size": m,
        "num_subsets": num_subsets,
        "values": vals,
    }
