"""k-NN manifold metrics: improved precision/recall (Kynkäänniemi et al., NeurIPS 2019) and
density/coverage (Naeem et al., ICML 2020).

Each real (generated) sample gets a ball whose radius is the distance to its k-th nearest
neighbour within its own set (self excluded). Then

    precision = share of generated samples inside at least one real ball
    recall    = share of real samples inside at least one generated ball
    density   = (1/k) * mean over generated samples of the number of real balls containing it
    coverage  = share of real samples whose nearest generated sample lies inside its ball

Conventions follow the ``prdc`` package (strict ``<`` against the radius, radius = (k+1)-th
smallest distance including the zero self-distance). That package uses one k for all four;
Kynkäänniemi et al. recommend k = 3 for P/R and Naeem et al. k = 5 for D/C, so the two are
separate parameters here.

Precision: every distance is first computed in float32 (one float32 matmul per block, the bulk of
the cost), and only the pairs whose float32 squared distance lies within a rounding band of the
radius they are compared against are recomputed in float64. The float32 expansion
||a||^2 + ||b||^2 - 2 a.b errs by at most a few ulps of ||a||^2 + ||b||^2, far inside the band,
so every comparison, and so every count, equals the float64 computation's. k-NN radii are
float64 too (see ``knn_radii``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from .device import resolve_device
from .errors import check_pair, require_count

#: Half-width of the band (relative to ||a||^2 + ||b||^2) inside which a float32 comparison is
#: rechecked in float64: ~300 float32 ulps, against a worst-case rounding of a few ulps.
RECHECK_RTOL = 2e-5


def _sq_pairwise(a: torch.Tensor, a_sq: torch.Tensor, b: torch.Tensor, b_sq: torch.Tensor) -> torch.Tensor:
    d2 = torch.addmm(b_sq[None, :], a, b.T, alpha=-2.0)
    return d2.add_(a_sq[:, None]).clamp_min_(0)


def _exact_sq(a64: torch.Tensor, b64: torch.Tensor, ia: torch.Tensor, ib: torch.Tensor) -> torch.Tensor:
    """float64 squared distances of the pairs (ia[t], ib[t]), by the same expansion the float64
    path (and the prdc package) uses."""
    out = torch.empty(ia.shape[0], dtype=torch.float64, device=a64.device)
    step = 1024
    for s in range(0, ia.shape[0], step):
        x, y = a64[ia[s : s + step]], b64[ib[s : s + step]]
        out[s : s + step] = (torch.einsum("ij,ij->i", x, x) + torch.einsum("ij,ij->i", y, y)
                             - 2.0 * torch.einsum("ij,ij->i", x, y)).clamp_min(0)
    return out


def _less(d2: torch.Tensor, rad2: torch.Tensor, band: float, a64: torch.Tensor, b64: torch.Tensor, row0: int) -> torch.Tensor:
    """``d2 < rad2`` (broadcast) decided in float64 wherever float32 rounding could flip it:
    entries within ``band`` of the radius are recomputed from the float64 features."""
    r = rad2.to(d2.dtype)
    less = d2 < r
    if d2.dtype == torch.float64:
        return less
    unsure = (d2 - r).abs_() <= band
    if bool(unsure.any()):
        ii, jj = unsure.nonzero(as_tuple=True)
        exact = _exact_sq(a64, b64, ii + row0, jj)
        less[ii, jj] = exact < rad2.expand_as(d2)[ii, jj]
    return less


def knn_radii(x: torch.Tensor, ks: list[int], block: int = 1024, x64: torch.Tensor | None = None) -> dict[int, torch.Tensor]:
    """float64 distance from each row to its k-th nearest other row, for every k in ``ks``
    (``x`` float32 or float64; ``x64`` its float64 copy when ``x`` is float32).

    In float32, the k-th neighbour is taken from the float32 ranking wherever its distance is
    separated from the (k-1)-th and (k+1)-th by more than the rounding band (then the ranking
    cannot differ in float64), and only that one pair is recomputed in float64. Rows where the
    neighbours are too close to call are ranked entirely in float64.
    """
    n = x.shape[0]
    kmax = max(ks)
    x_sq = (x * x).sum(dim=1)
    exact = x.dtype == torch.float64
    x64 = x if exact else (x64 if x64 is not None else x.double())
    x64_sq = (x64 * x64).sum(dim=1)
    ncand = min(n, kmax + 2)
    out = {k: torch.empty(n, dtype=torch.float64, device=x.device) for k in ks}
    for s in range(0, n, block):
        e = min(s + block, n)
        rows = torch.arange(e - s, device=x.device)
        d2 = _sq_pairwise(x[s:e], x_sq[s:e], x, x_sq)
        d2[rows, rows + s] = 0.0  # exact self-distance; the expansion leaves rounding there
        cand_d, cand_i = torch.topk(d2, ncand, dim=1, largest=False)  # sorted ascending
        if exact:
            for k in ks:
                out[k][s:e] = cand_d[:, k].sqrt()  # index 0 is the point itself
            continue
        band = (x64_sq[s:e] + x64_sq.max()) * RECHECK_RTOL  # per row: ||x_i||^2 + max ||x_j||^2
        cd = cand_d.double()
        for k in ks:
            close = (cd[:, k] - cd[:, k - 1] <= band)
            if k + 1 < ncand:
                close |= cd[:, k + 1] - cd[:, k] <= band
            radius2 = _exact_sq(x64, x64, rows + s, cand_i[:, k])
            tied = close.nonzero()[:, 0]  # a few rows: neighbours within rounding of each other
            if tied.numel():
                full = _sq_pairwise(x64[s + tied], x64_sq[s + tied], x64, x64_sq)
                full[torch.arange(tied.numel(), device=x.device), s + tied] = 0.0
                radius2[tied] = torch.kthvalue(full, k + 1, dim=1).values
            out[k][s:e] = radius2.sqrt()
    return out


@dataclass
class PRDCTerms:
    """Per-image terms whose means are the four metrics (what the bootstrap resamples)."""

    fake_in_real_ball: torch.Tensor  # n_fake bool: precision
    density_count: torch.Tensor  # n_fake float64: real balls containing it (density * k_dc)
    real_in_fake_ball: torch.Tensor  # n_real bool: recall
    covered: torch.Tensor  # n_real bool: coverage
    k_dc: int

    def values(self) -> dict[str, float]:
        return {
            "precision": float(self.fake_in_real_ball.double().mean()),
            "recall": float(self.real_in_fake_ball.double().mean()),
            "density": float(self.density_count.mean() / self.k_dc),
            "coverage": float(self.covered.double().mean()),
        }


def prdc_terms(
    real: Any,
    fake: Any,
    *,
    k_pr: int = 3,
    k_dc: int = 5,
    device: str | torch.device | None = None,
    block: int = 1024,
    dtype: torch.dtype = torch.float32,
) -> PRDCTerms:
    """The per-image indicators behind precision, recall (k = ``k_pr``), density and coverage
    (k = ``k_dc``). ``dtype`` is the bulk distance precision (module docstring); the result
    is the float64 one either way."""
    r, f = check_pair(real, fake)
    if k_pr < 1 or k_dc < 1:
        raise ValueError("k must be >= 1")
    kmax = max(k_pr, k_dc)
    for name, x in (("real", r), ("generated", f)):
        require_count(
            x.shape[0], kmax + 1, name, "precision/recall/density/coverage",
            f"the k-th nearest neighbour other than the point itself, k={kmax}",
        )
    dev = resolve_device(device)
    r64 = torch.as_tensor(r, device=dev)
    f64 = torch.as_tensor(f, device=dev)
    rt, ft = r64.to(dtype), f64.to(dtype)
    ks = sorted({k_pr, k_dc})
    real_radii = knn_radii(rt, ks, block, r64)
    fake_radii_pr = knn_radii(ft, [k_pr], block, f64)[k_pr]
    r_pr2, r_dc2 = real_radii[k_pr] ** 2, real_radii[k_dc] ** 2
    f_pr2 = fake_radii_pr**2

    r_sq = (rt * rt).sum(dim=1)
    f_sq = (ft * ft).sum(dim=1)
    n_real, n_fake = rt.shape[0], ft.shape[0]
    fake_in_real_ball = torch.zeros(n_fake, dtype=torch.bool, device=dev)
    density_count = torch.zeros(n_fake, dtype=torch.float64, device=dev)
    real_in_fake_ball = torch.zeros(n_real, dtype=torch.bool, device=dev)
    covered = torch.zeros(n_real, dtype=torch.bool, device=dev)
    # ||a||^2 + ||b||^2 bounds the float32 rounding of every entry (module docstring)
    band = RECHECK_RTOL * float(r_sq.max() + f_sq.max())
    for s in range(0, n_real, block):
        e = min(s + block, n_real)
        d2 = _sq_pairwise(rt[s:e], r_sq[s:e], ft, f_sq)  # real block x fake
        in_pr = _less(d2, r_pr2[s:e, None], band, r64, f64, s)
        in_dc = in_pr if k_dc == k_pr else _less(d2, r_dc2[s:e, None], band, r64, f64, s)
        fake_in_real_ball |= in_pr.any(dim=0)
        density_count += in_dc.sum(dim=0).to(torch.float64)
        real_in_fake_ball[s:e] = _less(d2, f_pr2[None, :], band, r64, f64, s).any(dim=1)
        covered[s:e] = in_dc.any(dim=1)  # nearest generated inside the ball <=> any inside
    return PRDCTerms(fake_in_real_ball, density_count, real_in_fake_ball, covered, k_dc)


def prdc_from_features(
    real: Any,
    fake: Any,
    *,
    k_pr: int = 3,
    k_dc: int = 5,
    device: str | torch.device | None = None,
    block: int = 1024,
    dtype: torch.dtype = torch.float32,
) -> dict[str, float]:
    """Precision, recall (k = ``k_pr``), density and coverage (k = ``k_dc``)."""
    return prdc_terms(real, fake, k_pr=k_pr, k_dc=k_dc, device=device, block=block, dtype=dtype).values()
