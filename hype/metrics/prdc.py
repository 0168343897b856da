"""k-NN manifold metrics: improved precision/recall (Kynkäänniemi et al.,
NeurIPS 2019) and density/coverage (Naeem et al., ICML 2020).

Each real (generated) sample gets a ball whose radius is the distance to its
k-th nearest neighbour within its own set (self excluded). Then

    precision = share of generated samples inside at least one real ball
    recall    = share of real samples inside at least one generated ball
    density   = (1/k) * mean over generated samples of the number of real balls containing it
    coverage  = share of real samples whose nearest generated sample lies inside its ball

Conventions follow the ``prdc`` package (strict ``<`` against the radius,
radius = (k+1)-th smallest distance including the zero self-distance). That
package uses one k for all four; Kynkäänniemi et al. recommend k = 3 for P/R
and Naeem et al. k = 5 for D/C, so the two are separate parameters here.

Distances are computed in float64 on the device in row blocks, so 10k x 10k
never has to be held at once.
"""

from __future__ import annotations

from typing import Any

import torch

from .device import resolve_device
from .errors import check_pair, require_count


def _pairwise(a: torch.Tensor, a_sq: torch.Tensor, b: torch.Tensor, b_sq: torch.Tensor) -> torch.Tensor:
    d2 = a_sq[:, None] + b_sq[None, :] - 2.0 * (a @ b.T)
    return d2.clamp_min_(0).sqrt_()


def knn_radii(x: torch.Tensor, ks: list[int], block: int = 1024) -> dict[int, torch.Tensor]:
    """Distance from each row to its k-th nearest other row, for every k in ``ks``."""
    n = x.shape[0]
    kmax = max(ks)
    x_sq = (x * x).sum(dim=1)
    out = {k: torch.empty(n, dtype=x.dtype, device=x.device) for k in ks}
    for s in range(0, n, block):
        e = min(s + block, n)
        d = _pairwise(x[s:e], x_sq[s:e], x, x_sq)
        rows = torch.arange(e - s, device=x.device)
        d[rows, rows + s] = 0.0  # exact self-distance; the expansion leaves ~1e-8 there
        smallest = torch.topk(d, kmax + 1, dim=1, largest=False).values  # sorted ascending
        for k in ks:
            out[k][s:e] = smallest[:, k]  # index 0 is the point itself
    return out


def prdc_from_features(
    real: Any,
    fake: Any,
    *,
    k_pr: int = 3,
    k_dc: int = 5,
    device: str | torch.device | None = None,
    block: int = 1024,
) -> dict[str, float]:
    """Precision, recall (k = ``k_pr``), density and coverage (k = ``k_dc``)."""
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
    rt = torch.as_tensor(r, device=dev)
    ft = torch.as_tensor(f, device=dev)
    ks = sorted({k_pr, k_dc})
    real_radii = knn_radii(rt, ks, block)
    fake_radii_pr = knn_radii(ft, [k_pr], block)[k_pr]
    r_pr, r_dc = real_radii[k_pr], real_radii[k_dc]

    r_sq = (rt * rt).sum(dim=1)
    f_sq = (ft * ft).sum(dim=1)
    n_real, n_fake = rt.shape[0], ft.shape[0]
    fake_in_real_ball = torch.zeros(n_fake, dtype=torch.bool, device=dev)
    density_count = torch.zeros(n_fake, dtype=torch.float64, device=dev)
    real_in_fake_ball = torch.zeros(n_real, dtype=torch.bool, device=dev)
    covered = torch.zeros(n_real, dtype=torch.bool, device=dev)
    for s in range(0, n_real, block):
        e = min(s + block, n_real)
        d = _pairwise(rt[s:e], r_sq[s:e], ft, f_sq)  # real block x fake
        fake_in_real_ball |= (d < r_pr[s:e, None]).any(dim=0)
        density_count += (d < r_dc[s:e, None]).sum(dim=0).to(torch.float64)
        real_in_fake_ball[s:e] = (d < fake_radii_pr[None, :]).any(dim=1)
        covered[s:e] = d.min(dim=1).values < r_dc[s:e]
    return {
        "precision": float(fake_in_real_ball.double().mean()),
        "recall": float(real_in_fake_ball.double().mean()),
        "density": float(density_count.mean() / k_dc),
        "coverage": float(covered.double().mean()),
    }
