"""Seeded k-means in torch for PRD's clustering step: mini-batch (what PRD is defined with) and
full-batch Lloyd, many independent runs sharing each pass over the data.

The PRD reference runs scikit-learn's MiniBatchKMeans(n_clusters=20, n_init=10) ten times on
~20k x 2048 points. The curve depends on that algorithm, not only on the data: mini-batch
k-means stops (no improvement of its smoothed batch inertia for 10 batches) after a few dozen
batches of 1024, well before Lloyd's fixed point, and starts from the best of ten k-means++
seedings. A fully converged Lloyd separates real from generated images more sharply and puts
PRD's F_8 ~0.01 below the reference's seed spread, and one seeding per run doubles the spread.
So ``minibatch_kmeans_runs`` follows scikit-learn's algorithm step by step (seeding, validation
choice, learning rates, low-count reassignment, early stop); it is cheaper than Lloyd because
the batches are small, and the runs share the one pass that labels every point at the end.
Everything runs on whichever device the features are on.
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


def kmeans_plusplus(x: torch.Tensor, k: int, generator: torch.Generator, n_init: int = 1) -> torch.Tensor:
    """``n_init`` independent greedy k-means++ seedings of ``x`` (Arthur & Vassilvitskii 2007,
    with scikit-learn's 2 + log k local trials per centre), as an n_init x k x d tensor.

    The seedings advance together: each step scores every seeding's candidates in one matmul,
    so ten seedings read the points once per centre, not ten times."""
    n = x.shape[0]
    x_sq = (x * x).sum(dim=1)
    trials = 2 + int(math.log(k))
    first = torch.randint(n, (n_init,), generator=generator).to(x.device)
    chosen = [first]
    closest = _sq_dists(x, x_sq, x[first]).T.contiguous()  # n_init x n
    for _ in range(1, k):
        pot = closest.sum(dim=1, keepdim=True)
        probs = (closest / pot.clamp_min(torch.finfo(closest.dtype).tiny)).to("cpu", torch.float64)
        # fewer distinct points than clusters leaves no potential: any point will do
        probs[pot[:, 0].cpu() <= 0] = 1.0
        cand = torch.multinomial(probs, trials, replacement=True, generator=generator).to(x.device)
        d_cand = _sq_dists(x, x_sq, x[cand.reshape(-1)]).T.reshape(n_init, trials, n)
        d_cand = torch.minimum(closest[:, None, :], d_cand)
        best = d_cand.sum(dim=2).argmin(dim=1)  # n_init
        rows = torch.arange(n_init, device=x.device)
        chosen.append(cand[rows, best])
        closest = d_cand[rows, best]
    return x[torch.stack(chosen, dim=1)]


def best_seeding(x: torch.Tensor, k: int, generator: torch.Generator, n_init: int, subsample: int) -> torch.Tensor:
    """The best of ``n_init`` k-means++ seedings (k x d), as scikit-learn's MiniBatchKMeans
    chooses its start: seeded on a random subsample of ``subsample`` points, judged by inertia
    on another random sample of that size. Picking the best start is what keeps the PRD
    reference's runs close to each other; one start per run spreads PRD curves ~2x wider."""
    n = x.shape[0]
    m = min(n, max(subsample, k))
    # drawn with replacement, as scikit-learn draws its init and validation samples
    sub = torch.randint(n, (m,), generator=generator).to(x.device) if m < n else torch.arange(n, device=x.device)
    seeds = kmeans_plusplus(x[sub], k, generator, n_init)  # n_init x k x d
    if n_init == 1:
        return seeds[0]
    val = x[torch.randint(n, (m,), generator=generator).to(x.device)]
    d = _sq_dists(val, (val * val).sum(dim=1), seeds.reshape(n_init * k, -1))
    inertia = d.reshape(m, n_init, k).amin(dim=2).sum(dim=0, dtype=torch.float64)
    return seeds[int(inertia.argmin())]


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
    n_init: int = 1,
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
    centers = [best_seeding(x, k, generator, n_init, seed_subsample) for _ in range(runs)]
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
    return _final_assignment(x, x_sq, centers, n_iter, k)


def _minibatch_fit(
    x: torch.Tensor,
    x_sq: torch.Tensor,
    centers: torch.Tensor,
    generator: torch.Generator,
    *,
    batch_size: int,
    max_iter: int,
    max_no_improvement: int,
    reassignment_ratio: float,
) -> tuple[torch.Tensor, int]:
    """Sculley's mini-batch k-means from ``centers`` with scikit-learn's conventions: batches
    drawn with replacement; per-centre learning rate 1 / (points seen); centres lighter than
    ``reassignment_ratio`` x the heaviest moved to random batch points (checked once 10 k points
    have passed since the last check, or when a centre is still empty); stop when the
    exponentially weighted batch inertia has not improved for ``max_no_improvement`` batches."""
    n, k = x.shape[0], centers.shape[0]
    b = min(batch_size, n)
    centers = centers.clone()
    counts = torch.zeros(k, dtype=torch.float64, device=x.device)
    alpha = min(1.0, 2.0 * b / (n + 1))
    ewa = ewa_min = None
    no_improvement = 0
    since_reassign = 0
    n_steps = max_iter * n // b
    step = 0
    for step in range(1, n_steps + 1):
        since_reassign += b
        check = bool((counts == 0).any()) or since_reassign >= 10 * k
        if check:
            since_reassign = 0
        idx = torch.randint(n, (b,), generator=generator).to(x.device)
        xb = x.index_select(0, idx)
        d = _sq_dists(xb, x_sq.index_select(0, idx), centers)
        best, lab = d.min(dim=1)
        batch_inertia = float(best.sum(dtype=torch.float64)) / b
        seen = torch.bincount(lab, minlength=k).to(torch.float64)
        sums = torch.zeros_like(centers).index_add_(0, lab, xb)
        hit = seen > 0
        total = counts + seen
        upd = (centers * counts.to(x.dtype)[:, None] + sums) / total.clamp_min(1).to(x.dtype)[:, None]
        centers = torch.where(hit[:, None], upd, centers)
        counts = total
        if check and reassignment_ratio > 0:
            low = counts < reassignment_ratio * counts.max()
            if int(low.sum()) > b // 2:  # at most half a batch of new centres
                keep = counts.argsort()[b // 2 :]
                low[keep] = False
            n_low = int(low.sum())
            if n_low:
                pick = torch.randperm(b, generator=generator)[:n_low].to(x.device)
                centers[low] = xb[pick]
                counts[low] = counts[~low].min()
        if step == 1:  # the first batch measures the seeding, not progress
            continue
        ewa = batch_inertia if ewa is None else ewa * (1 - alpha) + batch_inertia * alpha
        if ewa_min is None or ewa < ewa_min:
            ewa_min, no_improvement = ewa, 0
        else:
            no_improvement += 1
            if no_improvement >= max_no_improvement:
                break
    return centers, step


def minibatch_kmeans_runs(
    x: torch.Tensor,
    k: int,
    runs: int,
    *,
    generator: torch.Generator,
    n_init: int = 10,
    batch_size: int = 1024,
    max_iter: int = 100,
    max_no_improvement: int = 10,
    reassignment_ratio: float = 0.01,
) -> list[KMeansResult]:
    """``runs`` independent mini-batch k-means clusterings of ``x`` (n x d), each as
    ``MiniBatchKMeans(n_clusters=k, n_init=n_init)`` with scikit-learn's defaults computes
    it: best of ``n_init`` k-means++ seedings on 3 x ``batch_size`` points, mini-batch updates,
    then every point labelled by its nearest final centre (one pass for all runs)."""
    n = x.shape[0]
    if k < 1 or n < k:
        raise ValueError(f"k-means with k={k} needs at least k points, got {n}")
    init_size = min(n, max(3 * min(batch_size, n), 3 * k))
    x_sq = (x * x).sum(dim=1)
    centers, n_iter = [], []
    for _ in range(runs):
        start = best_seeding(x, k, generator, n_init, init_size)
        c, steps = _minibatch_fit(
            x, x_sq, start, generator, batch_size=batch_size, max_iter=max_iter,
            max_no_improvement=max_no_improvement, reassignment_ratio=reassignment_ratio,
        )
        centers.append(c)
        n_iter.append(steps)
    return _final_assignment(x, x_sq, centers, n_iter, k)


def _final_assignment(x: torch.Tensor, x_sq: torch.Tensor, centers: list[torch.Tensor], n_iter: list[int],
                      k: int) -> list[KMeansResult]:
    """Every run's labels and inertia against its final centres, all runs in one distance pass."""
    d_all = _sq_dists(x, x_sq, torch.cat(centers))
    results = []
    for r, (c, steps) in enumerate(zip(centers, n_iter)):
        best, lab = d_all[:, r * k : (r + 1) * k].min(dim=1)
        results.append(KMeansResult(centers=c, labels=lab, inertia=float(best.sum(dtype=torch.float64)), n_iter=steps))
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
