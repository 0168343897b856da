"""Seeded full-batch k-means in torch, for PRD's clustering step: many independent runs share
each pass over the data.

The PRD reference runs scikit-learn's MiniBatchKMeans (n_init=10) ten times on ~20k x 2048
points. Here the ten runs advance together: one matmul gives every point's distance to every
run's centres, so the 164 MB matrix is read once per Lloyd iteration instead of once per run.
Each run starts from greedy k-means++ (scikit-learn's seeding) on a random subsample, as
MiniBatchKMeans seeds from ``init_size`` points, then Lloyd runs on all points until its centres
stop moving. Everything runs on whichever device the features are on.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

#: Points k-means++ seeds from. MiniBatchKMeans uses 3 x its batch of 1024; seeding is
#: O(points x k x trials x d), so seeding on everything would cost more than Lloyd itself.
SEED_SUBSAMPLE = 3072


@dataclass
class KMeansResult:
    centers: torch.Tensor  # k x d
    labels: torch.Tensor  # n, int64
    inertia: float  # sum of squared distances to the assigned centre
    n_iter: int


def _sq_dists(x: torch.Tensor, x_sq: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    """Squared Euclidean distances n x k via ||x||^2 - 2 x.c + ||c||^2, clamped at 0
    (the expansion can go slightly negative; one matmul is what makes this fast)."""
    d = torch.addmm((c * c).sum(dim=1)[None, :], x, c.T, alpha=-2.0)
    d.add_(x_sq[:, None])
    return d.clamp_min_(0)


def kmeans_plusplus(x: torch.Tensor, k: int, generator: torch.Generator) -> torch.Tensor:
    """Greedy k-means++ seeding (Arthur & Vassilvitskii 2007, with scikit-learn's
    2 + log k local trials per centre), which avoids most bad local optima."""
    n = x.shape[0]
    x_sq = (x * x).sum(dim=1)
    trials = 2 + int(math.log(k))
    first = int(torch.randint(n, (1,), generator=generator))
    centers = [x[first]]
    closest = _sq_dists(x, x_sq, x[first : first + 1])[:, 0]
    for _ in range(1, k):
        pot = closest.sum()
        if float(pot) <= 0:  # fewer distinct points than clusters: any point will do
            cand = torch.randint(n, (trials,), generator=generator)
        else:
            probs = (closest / pot).to("cpu", torch.float64)
            cand = torch.multinomial(probs, trials, replacement=True, generator=generator)
        cand = cand.to(x.device)
        d_cand = torch.minimum(closest[:, None], _sq_dists(x, x_sq, x[cand]))  # n x trials
        best = int(torch.argmin(d_cand.sum(dim=0)))
        centers.append(x[cand[best]])
        closest = d_cand[:, best]
    return torch.stack(centers)


def mean_feature_variance(x: torch.Tensor, x_sq: torch.Tensor) -> float:
    """Mean per-feature variance in closed form from the row norms already at hand:
    sum_j var_j = (sum_i ||x_i||^2 - n ||mean||^2) / (n - 1), with no pass building centred
    data (``x.var(dim=0)`` cost as much as the seeding)."""
    n, d = x.shape
    if n < 2:
        return 0.0
    mu = x.mean(dim=0, dtype=torch.float64)
    total = float(x_sq.sum(dtype=torch.float64)) - n * float(mu @ mu)
    return max(total, 0.0) / (n - 1) / d


def kmeans_runs(
    x: torch.Tensor,
    k: int,
    runs: int,
    *,
    generator: torch.Generator,
    max_iter: int = 300,
    tol: float = 1e-4,
    seed_subsample: int = SEED_SUBSAMPLE,
) -> list[KMeansResult]:
    """``runs`` independent k-means clusterings of ``x`` (n x d), advanced together.

    ``tol`` follows scikit-learn: a run stops when the summed squared shift of its centres falls
    below ``tol`` times the mean per-feature variance. Empty clusters are re-seeded at the points
    farthest from their centres, as scikit-learn does, so exactly ``k`` clusters always exist.
    """
    n = x.shape[0]
    if k < 1 or n < k:
        raise ValueError(f"k-means with k={k} needs at least k points, got {n}")
    x_sq = (x * x).sum(dim=1)
    threshold = tol * mean_feature_variance(x, x_sq)
    m = min(n, max(seed_subsample, k))
    centers = []
    for _ in range(runs):
        sub = torch.randperm(n, generator=generator)[:m].to(x.device) if m < n else torch.arange(n, device=x.device)
        centers.append(kmeans_plusplus(x[sub], k, generator))
    n_iter = [0] * runs
    active = list(range(runs))
    labels = torch.zeros((runs, n), dtype=torch.int64, device=x.device)
    for it in range(1, max_iter + 1):
        if not active:
            break
        stacked = torch.cat([centers[r] for r in active])  # (active * k) x d
        d_all = _sq_dists(x, x_sq, stacked)
        still = []
        for j, r in enumerate(active):
            d = d_all[:, j * k : (j + 1) * k]
            lab = d.argmin(dim=1)
            labels[r] = lab
            counts = torch.bincount(lab, minlength=k)
            sums = torch.zeros_like(centers[r]).index_add_(0, lab, x)
            new = sums / counts.clamp_min(1)[:, None].to(x.dtype)
            empty = counts == 0
            if bool(empty.any()):
                far = d.gather(1, lab[:, None])[:, 0].argsort(descending=True)
                new[empty] = x[far[: int(empty.sum())]]
            shift = float(((new - centers[r]) ** 2).sum(dtype=torch.float64))
            centers[r] = new
            n_iter[r] = it
            if shift > threshold:
                still.append(r)
        active = still
    # Final assignment to the final centres, all runs in one pass.
    d_all = _sq_dists(x, x_sq, torch.cat(centers))
    results = []
    for r in range(runs):
        best, lab = d_all[:, r * k : (r + 1) * k].min(dim=1)
        results.append(KMeansResult(centers=centers[r], labels=lab, inertia=float(best.sum(dtype=torch.float64)), n_iter=n_iter[r]))
    return results


def kmeans(
    x: torch.Tensor,
    k: int,
    *,
    generator: torch.Generator | None = None,
    seed: int = 0,
    n_init: int = 1,
    max_iter: int = 300,
    tol: float = 1e-4,
) -> KMeansResult:
    """Lloyd's k-means on ``x`` (n x d, on any device), best of ``n_init`` starts (run together)."""
    if generator is None:
        generator = torch.Generator().manual_seed(seed)
    results = kmeans_runs(x, k, n_init, generator=generator, max_iter=max_iter, tol=tol)
    return min(results, key=lambda r: r.inertia)
