"""Kernel Inception Distance (Bińkowski et al., ICLR 2018), on any encoder's features.

Unlike FD, the unbiased MMD^2 estimator has no small-sample bias, which matters for HYPE pools of
a few thousand images. Conventions are torch-fidelity's (themselves from the authors' MMD-GAN
code): cubic polynomial kernel k(x, y) = (x.y / d + 1)^3, unbiased MMD^2 with the cross term over
all m^2 pairs, mean and population standard deviation over 100 random subsets of 1000 images drawn
without replacement. The subsets are drawn with ``numpy.random.RandomState(seed).choice`` in
torch-fidelity's order, so the same seed reproduces torch-fidelity's number.

Speed: the kernel sums of all subsets come from one pass over the Gram matrices of the whole
pools when that costs fewer multiply-adds than one Gram matrix per subset (always at the default
100 x 1000 of 10k images; ten times fewer for a pool of 3000): the pools are cut into blocks of
~1000 images, each block's kernel is computed once (only the upper triangle of the symmetric
real-real and generated-generated matrices), and every subset's sum over that block is read off
one product with the subsets' 0/1 membership matrix. Per-subset matrices remain the route for
pools much larger than the subsets cover.

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


#: Block edge of the pool route: big enough for an efficient GEMM, small enough that the wasted
#: lower half of the diagonal blocks costs little.
POOL_BLOCK = 1024


def _per_subset_cost(m: int, num_subsets: int) -> float:
    """Multiply-adds / d of one x.x, x.y and y.y Gram matrix per subset."""
    return 3.0 * num_subsets * m * m


def _union_cost(n_real: int, n_fake: int, d: int, num_subsets: int) -> float:
    """Multiply-adds / d of the pool route: the upper block triangles of both symmetric pools'
    Gram matrices and the whole cross matrix, plus the float64 products with the membership
    matrix (num_subsets columns, at ~2x the cost per multiply-add)."""
    def tri(n: int) -> float:
        return n * (n + min(n, POOL_BLOCK)) / 2.0

    grams = tri(n_real) + tri(n_fake) + n_real * n_fake
    return grams * (1.0 + 2.0 * num_subsets / d)


def _block_sums(a: torch.Tensor, b: torch.Tensor, wa: torch.Tensor, wb: torch.Tensor, kernel: Any, symmetric: bool) -> torch.Tensor:
    """For every subset s (a column of the 0/1 membership matrices ``wa`` over ``a``'s rows and
    ``wb`` over ``b``'s rows), the float64 sum of kernel(a_i, b_j) over members i of s in ``a``
    and j of s in ``b``; with ``symmetric`` (a is b, wa is wb) over pairs i != j only.

    Each block of the kernel matrix is computed once and summed for all subsets with one float64
    matrix product; a symmetric matrix's lower blocks are the transposes of its upper ones."""
    edges = list(range(0, a.shape[0], POOL_BLOCK)) + [a.shape[0]]
    edges_b = edges if symmetric else list(range(0, b.shape[0], POOL_BLOCK)) + [b.shape[0]]
    total = torch.zeros(wa.shape[1], dtype=torch.float64, device=a.device)
    for i in range(len(edges) - 1):
        ia = slice(edges[i], edges[i + 1])
        for j in range(i if symmetric else 0, len(edges_b) - 1):
            jb = slice(edges_b[j], edges_b[j + 1])
            kij = kernel(a[ia], b[jb])
            part = (wa[ia] * (kij.to(torch.float64) @ wb[jb])).sum(dim=0)
            if symmetric and i == j:
                part -= (wa[ia] * torch.diagonal(kij).to(torch.float64)[:, None]).sum(dim=0)
            elif symmetric:
                part *= 2.0
            total += part
    return total


def _mmd2_from_pools(rt: torch.Tensor, ft: torch.Tensor, draws: list[tuple[np.ndarray, np.ndarray]], kernel: Any) -> torch.Tensor:
    """Unbiased MMD^2 of every drawn subset pair, from block passes over the whole pools."""
    s = len(draws)
    m = len(draws[0][0])
    wr = torch.zeros((rt.shape[0], s), dtype=torch.float64, device=rt.device)
    wf = torch.zeros((ft.shape[0], s), dtype=torch.float64, device=ft.device)
    for col, (ir, jf) in enumerate(draws):
        wr[torch.as_tensor(ir, device=rt.device), col] = 1.0
        wf[torch.as_tensor(jf, device=ft.device), col] = 1.0
    sum_xx = _block_sums(rt, rt, wr, wr, kernel, symmetric=True)
    sum_yy = _block_sums(ft, ft, wf, wf, kernel, symmetric=True)
    sum_xy = _block_sums(rt, ft, wr, wf, kernel, symmetric=False)
    return (sum_xx + sum_yy) / (m * (m - 1)) - 2.0 * sum_xy / (m * m)


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
    route: str = "auto",
) -> dict[str, Any]:
    """KID mean and std over subsets on the device (``dtype``: see the module docstring; None
    follows the inputs).

    The subset size is ``min(subset_size, n_real, n_fake)`` so small pools still get a value;
    the size used is returned because KID's variance (not its mean) depends on it. Note
    torch-fidelity's default seed is 2020. ``route``: "pools" or "subsets" (see the module
    docstring); "auto" takes the one with fewer multiply-adds. Both give the same value.
    """
    if route not in ("auto", "pools", "subsets"):
        raise MetricError(f"unknown KID route {route!r}; use auto, pools or subsets")
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
    k = lambda a, b: polynomial_kernel(a, b, degree, gamma, coef0)  # noqa: E731
    with torch.inference_mode():
        if route == "pools" or (
            route == "auto" and _union_cost(r.shape[0], f.shape[0], rt.shape[1], num_subsets) < _per_subset_cost(m, num_subsets)
        ):
            values = _mmd2_from_pools(rt, ft, draws, k)
        else:
            values = torch.empty(num_subsets, dtype=torch.float64, device=dev)
            for i, (ir, jf) in enumerate(draws):
                x = rt[torch.as_tensor(ir, device=dev)]
                y = ft[torch.as_tensor(jf, device=dev)]
                values[i] = mmd2_unbiased(k(x, x), k(x, y), k(y, y))
    vals = values.cpu().numpy()
    return {
        "kid_mean": float(vals.mean()),
        "kid_std": float(vals.std()),
        "subset_size": m,
        "num_subsets": num_subsets,
        "values": vals,
    }
