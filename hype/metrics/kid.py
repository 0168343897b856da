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

At the default size this does as many multiply-adds as torch-fidelity's numpy (whose ``x @ x.T``
is a BLAS syrk, half the work), so the margin comes from around the GEMM: no float64 copies of
the pools or the blocks, kernels computed in place in buffers allocated once, and the subsets'
sums read with float32 products that are nonetheless exact (``_BlockSums``).

Precision: float32 features (what every encoder produces) get float32 Gram matrices and kernels,
as torch-fidelity computes them, but every *sum* is exact to float64 accuracy: MMD^2 is a small
difference of large kernel means, and it is the accumulation over 10^6 terms, not the single
products, where float32 would lose digits (torch-fidelity float32: ~1e-5 from the float64 value;
hype: ~1e-8). float64 features are computed in float64 throughout.
"""

from __future__ import annotations

import math
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
        return (k * k).mul_(k)
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
#: Blocks of one row computed by one GEMM and one set of elementwise passes (``_BlockSums.sums``).
POOL_STRIP = 4


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


def _exact_float32_matmul(device: torch.device) -> bool:
    """Whether float32 products are IEEE float32 (not TF32 / bf16, which a user may switch on);
    the exact split summation of the pool route needs that, else it sums in float64."""
    if torch.get_float32_matmul_precision() != "highest":
        return False
    backend = torch.backends.cuda.matmul if device.type == "cuda" else torch.backends.mkldnn.matmul
    precision = getattr(backend, "fp32_precision", None)
    if precision is None:  # torch before 2.9
        return not (device.type == "cuda" and torch.backends.cuda.matmul.allow_tf32)
    return precision in ("none", "ieee")


class _BlockSums:
    """Per-subset kernel sums over one pair of pools, a block of the kernel matrix at a time.

    For every subset s (a column of the 0/1 membership matrices over ``a``'s and ``b``'s rows) it
    computes the sum over members i of s in ``a`` and j of s in ``b`` of k(a_i, b_j); for a
    ``symmetric`` pair (a is b) over pairs i != j only, from the upper block triangle (a lower
    block is the transpose of an upper one, so it counts twice).

    Everything around the GEMM works in place in buffers allocated once: a fresh 4 MB tensor per
    block costs page faults, and with two threads on busy cores every extra parallel pass can wait
    a time slice for a descheduled thread. gamma is folded into the GEMM (``addmm(alpha=gamma)``),
    the cube is two in-place multiplies.

    Float32 kernels are summed to float64 accuracy without a float64 copy of any block: each block
    is split into a "high" part rounded to a grid of step h (``(k + M) - M`` with
    M = 1.5 * 2^23 * h) and the remainder ``k - high`` (exact in float32, |.| <= h/2). h comes from
    a bound on |k| such that every partial sum of high parts a subset can collect over a whole row
    of blocks (at most 2 x its members x the bound) is a multiple of h below 2^24 * h: exact in
    float32. The remainders' float32 sums err by ~1e-7 of h/2 per term, i.e. ~1e-11 of the sum.
    Both parts (stacked) go through one float32 product with the membership columns,
    accumulated over the row of blocks in float32 by ``addmm`` and turned into float64 once per row.
    float64 kernels use float64 products."""

    def __init__(self, a: torch.Tensor, b: torch.Tensor, wa: torch.Tensor, wb: torch.Tensor,
                 degree: int, gamma: float, coef0: float, symmetric: bool) -> None:
        self.a, self.b, self.wa = a, b, wa
        self.degree, self.gamma, self.coef0, self.symmetric = degree, gamma, coef0, symmetric
        dt, dev = a.dtype, a.device
        self.split = dt == torch.float32 and _exact_float32_matmul(dev)
        if self.split:
            # |k| <= (gamma |a_i| |b_j| + |coef0|)^degree (Cauchy-Schwarz); float32 norms, their
            # rounding covered by the 1.001
            na = float(torch.linalg.vector_norm(a, dim=1).max()) * 1.001
            nb = na if symmetric else float(torch.linalg.vector_norm(b, dim=1).max()) * 1.001
            bound = (abs(gamma) * na * nb + abs(coef0)) ** degree
            members = float(wb.sum(dim=0).max())
            h = 2.0 ** math.ceil(math.log2(max(bound, 1e-30) * max(members, 1.0) * 2.0 ** -21))
            if not math.isfinite(h) or h * 2.0 ** 25 > torch.finfo(torch.float32).max:
                self.split = False  # kernels near float32 overflow: sum in float64
            else:
                self.magic = 1.5 * 2.0 ** 23 * h
        self.acc_dtype = dt if self.split else torch.float64
        self.wb = wb.to(self.acc_dtype)
        self.k_buf = torch.empty(POOL_BLOCK * POOL_BLOCK * POOL_STRIP, dtype=dt, device=dev)
        self.parts = torch.empty(2 * POOL_BLOCK * POOL_BLOCK * POOL_STRIP, dtype=dt, device=dev)

    def _kernel(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """k(x_i, y_j) into the block buffer, in place."""
        k = self.k_buf[: x.shape[0] * y.shape[0]].view(x.shape[0], y.shape[0])
        torch.addmm(k, x, y.T, beta=0, alpha=self.gamma, out=k)
        k.add_(self.coef0)
        if self.degree == 3:
            sq = self.parts[: k.numel()].view_as(k)
            torch.mul(k, k, out=sq)
            k.mul_(sq)
        elif self.degree != 1:
            k.pow_(self.degree)
        return k

    def _add_strip(self, acc: torch.Tensor, k: torch.Tensor, pieces: list[tuple[int, int, torch.Tensor, float]]) -> None:
        """acc += factor * k[:, c0:c1] @ w for each (c0, c1, w, factor); with the split, acc holds
        the high parts' sums over the low parts' (class docstring)."""
        if not self.split:
            k64 = k.to(torch.float64)
            for c0, c1, w, factor in pieces:
                acc.addmm_(k64[:, c0:c1], w, alpha=factor)
            return
        rows = k.shape[0]
        parts = self.parts[: 2 * k.numel()].view(2 * rows, k.shape[1])
        high, low = parts[:rows], parts[rows:]
        torch.add(k, self.magic, out=low)
        torch.sub(low, self.magic, out=high)
        torch.sub(k, high, out=low)
        for c0, c1, w, factor in pieces:
            acc.addmm_(parts[:, c0:c1], w, alpha=factor)

    def sums(self) -> torch.Tensor:
        """Row block by row block; each row's blocks POOL_STRIP at a time, so that one GEMM and one
        set of elementwise passes cover several blocks (fewer parallel regions for two threads to
        meet at, which is what stalls when other processes hold the cores)."""
        a, b, wa, wb = self.a, self.b, self.wa, self.wb
        s = wa.shape[1]
        edges = list(range(0, a.shape[0], POOL_BLOCK)) + [a.shape[0]]
        edges_b = edges if self.symmetric else list(range(0, b.shape[0], POOL_BLOCK)) + [b.shape[0]]
        nb = len(edges_b) - 1
        total = torch.zeros(s, dtype=torch.float64, device=a.device)
        stack = 2 if self.split else 1
        acc_buf = torch.empty(stack * POOL_BLOCK * s, dtype=self.acc_dtype, device=a.device)
        for i in range(len(edges) - 1):
            ia = slice(edges[i], edges[i + 1])
            rows = ia.stop - ia.start
            acc = acc_buf[: stack * rows * s].view(stack * rows, s)
            acc.zero_()
            for j in range(i if self.symmetric else 0, nb, POOL_STRIP):
                c0, c1 = edges_b[j], edges_b[min(j + POOL_STRIP, nb)]
                k = self._kernel(a[ia], b[c0:c1])
                if self.symmetric and j == i:
                    k[:, :rows].diagonal().zero_()  # pairs i != j only
                    pieces = [(0, rows, wb[c0 : c0 + rows], 1.0)]
                    if c1 - c0 > rows:  # blocks right of the diagonal stand for their mirror images too
                        pieces.append((rows, c1 - c0, wb[c0 + rows : c1], 2.0))
                else:
                    pieces = [(0, c1 - c0, wb[c0:c1], 2.0 if self.symmetric else 1.0)]
                self._add_strip(acc, k, pieces)
            row_sums = acc.to(torch.float64)
            if self.split:
                row_sums = row_sums[:rows] + row_sums[rows:]
            total += (wa[ia] * row_sums).sum(dim=0)
        return total


def _mmd2_from_pools(rt: torch.Tensor, ft: torch.Tensor, draws: list[tuple[np.ndarray, np.ndarray]],
                     degree: int, gamma: float, coef0: float) -> torch.Tensor:
    """Unbiased MMD^2 of every drawn subset pair, from block passes over the whole pools."""
    s = len(draws)
    m = len(draws[0][0])
    wr = torch.zeros((rt.shape[0], s), dtype=torch.float64, device=rt.device)
    wf = torch.zeros((ft.shape[0], s), dtype=torch.float64, device=ft.device)
    for col, (ir, jf) in enumerate(draws):
        wr[torch.as_tensor(ir, device=rt.device), col] = 1.0
        wf[torch.as_tensor(jf, device=ft.device), col] = 1.0
    kw = {"degree": degree, "gamma": gamma, "coef0": coef0}
    sum_xx = _BlockSums(rt, rt, wr, wr, symmetric=True, **kw).sums()
    sum_yy = _BlockSums(ft, ft, wf, wf, symmetric=True, **kw).sums()
    sum_xy = _BlockSums(rt, ft, wr, wf, symmetric=False, **kw).sums()
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
    r, f = check_pair(real, fake, keep_float32=dtype == torch.float32)  # no float64 copy of float32 pools
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
            g = 1.0 / rt.shape[1] if gamma is None else gamma
            values = _mmd2_from_pools(rt, ft, draws, degree, g, coef0)
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
