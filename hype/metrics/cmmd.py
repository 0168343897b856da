"""CMMD (Jayasumana et al., "Rethinking FID: Towards a Better Evaluation Metric for Image
Generation", CVPR 2024): MMD^2 between CLIP ViT-L/14 image embeddings with a Gaussian RBF kernel.

    k(x, y) = exp(-||x - y||^2 / (2 sigma^2)),  sigma = 10,  CMMD = 1000 * MMD^2

sigma and the scale of 1000 are the paper's (and its released code's ``_SIGMA`` / ``_SCALE``).
The estimator is the unbiased one (within-set sums over distinct pairs); the released JAX code
averages the full kernel matrices including the diagonal (the biased, minimum-variance form,
which exceeds the unbiased value by about (2 - mean off-diagonal kernel terms) / n). Pass
``estimator="biased"`` for the released code's number.

CLIP embeddings are unit vectors, so every kernel value lies in [exp(-0.02), 1] and MMD^2 is a
difference of means that agree to ~4 digits: everything here is float64.
"""

from __future__ import annotations

from typing import Any

import torch

from .device import resolve_device
from .errors import MetricError, check_pair

SIGMA = 10.0
SCALE = 1000.0


def rbf_kernel_sum(x: torch.Tensor, y: torch.Tensor, sigma: float = SIGMA, block: int = 2048) -> torch.Tensor:
    """Sum of k(x_i, y_j) over all pairs, float64, in row blocks so that 30k x 30k is never held."""
    gamma = 1.0 / (2.0 * sigma * sigma)
    x_sq = (x * x).sum(1)
    y_sq = (y * y).sum(1)
    total = torch.zeros((), dtype=torch.float64, device=x.device)
    for s in range(0, x.shape[0], block):
        d2 = torch.addmm(y_sq[None, :], x[s : s + block], y.T, alpha=-2.0).add_(x_sq[s : s + block, None]).clamp_min_(0)
        total += torch.exp(d2.mul_(-gamma)).sum(dtype=torch.float64)
    return total


def rbf_kernel_matrix(x: torch.Tensor, y: torch.Tensor, sigma: float = SIGMA) -> torch.Tensor:
    gamma = 1.0 / (2.0 * sigma * sigma)
    d2 = torch.addmm((y * y).sum(1)[None, :], x, y.T, alpha=-2.0).add_((x * x).sum(1)[:, None]).clamp_min_(0)
    return torch.exp(d2.mul_(-gamma))


def cmmd_from_features(
    real: Any,
    fake: Any,
    *,
    sigma: float = SIGMA,
    scale: float = SCALE,
    estimator: str = "unbiased",
    device: str | torch.device | None = None,
) -> float:
    """CMMD of generated against real CLIP embeddings (``scale`` x MMD^2, float64)."""
    if estimator not in ("unbiased", "biased"):
        raise MetricError("estimator must be 'unbiased' or 'biased'")
    r, f = check_pair(real, fake)
    m, n = r.shape[0], f.shape[0]
    if min(m, n) < 2:
        raise MetricError(f"CMMD needs at least 2 real and 2 generated images; got {m} real, {n} generated")
    dev = resolve_device(device)
    x = torch.as_tensor(r, device=dev)
    y = torch.as_tensor(f, device=dev)
    s_xx = rbf_kernel_sum(x, x, sigma)
    s_yy = rbf_kernel_sum(y, y, sigma)
    s_xy = rbf_kernel_sum(x, y, sigma)
    if estimator == "biased":
        mmd2 = s_xx / (m * m) + s_yy / (n * n) - 2 * s_xy / (m * n)
    else:  # k(x, x) = exp(0) = 1 on the diagonal
        mmd2 = (s_xx - m) / (m * (m - 1)) + (s_yy - n) / (n * (n - 1)) - 2 * s_xy / (m * n)
    return float(scale * mmd2)
