"""Kernel Inception Distance (Bińkowski et al., ICLR 2018).

Unlike FID, the unbiased MMD^2 estimator has no small-sample bias, which
matters for HYPE pools of a few thousand images. Conventions are
torch-fidelity's (themselves from the authors' MMD-GAN code): cubic polynomial
kernel k(x, y) = (x.y / d + 1)^3, unbiased MMD^2 with the cross term over all
m^2 pairs, mean and population standard deviation over 100 random subsets of
1000 images drawn without replacement. The subsets are drawn with
``numpy.random.RandomState(seed).choice`` in torch-fidelity's order, so the
same seed reproduces torch-fidelity's number.
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
    """(gamma x.y + coef0)^degree with gamma = 1/d by default."""
    g = 1.0 / x.shape[1] if gamma is None else gamma
    return (x @ y.T * g + coef0) ** degree


def mmd2_unbiased(k_xx: torch.Tensor, k_xy: torch.Tensor, k_yy: torch.Tensor) -> torch.Tensor:
    """Unbiased MMD^2: within-set sums exclude the diagonal (self-similarity),
    the cross term keeps all m^2 pairs (torch-fidelity's ``mmd_est='unbiased'``)."""
    m = k_xx.shape[0]
    sum_xx = k_xx.sum() - torch.diagonal(k_xx).sum()
    sum_yy = k_yy.sum() - torch.diagonal(k_yy).sum()
    return (sum_xx + sum_yy) / (m * (m - 1)) - 2.0 * k_xy.sum() / (m * m)


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
) -> dict[str, Any]:
    """KID mean and std over subsets, in float64 on the device.

    The subset size is ``min(subset_size, n_real, n_fake)`` so small pools still
    get a value; the size used is returned because KID's variance (not its
    mean) depends on it. Note torch-fidelity's default seed is 2020.
    """
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
    rt = torch.as_tensor(r, device=dev)
    ft = torch.as_tensor(f, device=dev)
    rng = np.random.RandomState(seed)
    values = np.empty(num_subsets)
    for i in range(num_subsets):
        # Same draw order as torch-fidelity: the first set's subset, then the second's.
        ir = torch.as_tensor(rng.choice(r.shape[0], m, replace=False), device=dev)
        jf = torch.as_tensor(rng.choice(f.shape[0], m, replace=False), device=dev)
        x = rt[ir]
        y = ft[jf]
        k = lambda a, b: polynomial_kernel(a, b, degree, gamma, coef0)  # noqa: E731
        values[i] = float(mmd2_unbiased(k(x, x), k(x, y), k(y, y)))
    return {
        "kid_mean": float(values.mean()),
        "kid_std": float(values.std()),
        "subset_size": m,
        "num_subsets": num_subsets,
    }
