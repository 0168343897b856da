"""Precision and recall for distributions (Sajjadi et al., NeurIPS 2018).

A single FID number mixes "the samples look wrong" with "modes are missing".
PRD separates them: both feature sets are clustered jointly, each becomes a
histogram over clusters, and the PRD curve is

    alpha(lambda) = sum_w min(lambda * P_real(w), Q_gen(w))     (precision)
    beta(lambda)  = alpha(lambda) / lambda                      (recall)

over ``num_angles`` slopes lambda = tan(angle), angle in (0, pi/2), averaged
over ``num_runs`` independent clusterings. This follows the authors' reference
code (msmsajjadi/precision-recall-distributions, ``prd_score.py``) step by
step, except that the clustering is torch k-means (see ``kmeans.py``) instead
of scikit-learn's MiniBatchKMeans, and the runs share each pass over the data.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from .device import resolve_device
from .errors import MetricError, check_pair, require_count
from .kmeans import minibatch_kmeans_runs


def prd_from_histograms(
    eval_dist: Any, ref_dist: Any, num_angles: int = 1001, epsilon: float = 1e-10
) -> tuple[np.ndarray, np.ndarray]:
    """PRD curve (precision, recall arrays of length ``num_angles``) from two
    histograms over the same bins: ``eval_dist`` = generated, ``ref_dist`` = real.

    Angles run over ``linspace(epsilon, pi/2 - epsilon)`` as in the reference,
    so the middle angle (odd ``num_angles``) is lambda = 1.
    """
    if not 0 < epsilon < 0.1:
        raise MetricError("epsilon must be in (0, 0.1)")
    if not 3 <= num_angles <= 1_000_000:
        raise MetricError("num_angles must be in [3, 1e6]")
    q = np.asarray(eval_dist, dtype=np.float64).ravel()
    p = np.asarray(ref_dist, dtype=np.float64).ravel()
    if q.shape != p.shape:
        raise MetricError(f"histograms differ in length: {q.shape[0]} vs {p.shape[0]}")
    for name, h in (("eval_dist", q), ("ref_dist", p)):
        if not np.isfinite(h).all() or (h < 0).any():
            raise MetricError(f"{name} must be finite and non-negative")
        if not math.isclose(float(h.sum()), 1.0, rel_tol=0, abs_tol=1e-6):
            raise MetricError(f"{name} must sum to 1, sums to {h.sum():.6g}")
    angles = np.linspace(epsilon, math.pi / 2 - epsilon, num=num_angles)
    slopes = np.tan(angles)
    precision = np.minimum(p[None, :] * slopes[:, None], q[None, :]).sum(axis=1)
    recall = precision / slopes
    # The reference tolerates rounding just above 1 and rejects anything larger.
    if max(precision.max(), recall.max()) > 1.001:
        raise MetricError("PRD produced a value > 1.001; histograms are not distributions")
    return np.clip(precision, 0, 1), np.clip(recall, 0, 1)


def f_beta(precision: Any, recall: Any, beta: float = 1.0, epsilon: float = 1e-10) -> np.ndarray:
    """F_beta = (1 + beta^2) p r / (beta^2 p + r); beta > 1 weights recall.

    ``epsilon`` in the denominator (as in the reference) makes p = r = 0 give 0.
    """
    p = np.asarray(precision, dtype=np.float64)
    r = np.asarray(recall, dtype=np.float64)
    if ((p < 0) | (p > 1)).any() or ((r < 0) | (r > 1)).any():
        raise MetricError("precision and recall must lie in [0, 1]")
    if beta <= 0:
        raise MetricError("beta must be positive")
    b2 = beta**2
    return (1 + b2) * p * r / (b2 * p + r + epsilon)


def max_f_beta_pair(precision: Any, recall: Any, beta: float = 8.0) -> tuple[float, float]:
    """(max F_beta, max F_1/beta) over the curve: the reference's summary pair,
    (F_8, F_1/8) by default -- recall- and precision-weighted respectively."""
    return float(np.max(f_beta(precision, recall, beta))), float(np.max(f_beta(precision, recall, 1.0 / beta)))


@dataclass
class PRDResult:
    precision: np.ndarray
    recall: np.ndarray
    f_8: float
    f_1_8: float
    params: dict[str, Any] = field(default_factory=dict)
    #: per run, the cluster of every image (generated first, then real): what the bootstrap
    #: interval resamples; not part of ``to_dict``
    run_labels: list[np.ndarray] = field(default_factory=list, repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "precision": [float(v) for v in self.precision],
            "recall": [float(v) for v in self.recall],
            "f_8": self.f_8,
            "f_1_8": self.f_1_8,
            **({"params": self.params} if self.params else {}),
        }


def label_histograms(labels: np.ndarray, n_fake: int, num_clusters: int) -> tuple[np.ndarray, np.ndarray]:
    """(generated, real) histograms of one clustering of generated-then-real images, normalised to
    sum to 1 (the reference's ``np.histogram(density=True)`` on unit-width bins)."""
    eval_bins = np.bincount(labels[:n_fake], minlength=num_clusters) / n_fake
    ref_bins = np.bincount(labels[n_fake:], minlength=num_clusters) / (labels.shape[0] - n_fake)
    return eval_bins.astype(np.float64), ref_bins.astype(np.float64)


def prd_from_features(
    real: Any,
    fake: Any,
    *,
    num_clusters: int = 20,
    num_angles: int = 1001,
    num_runs: int = 10,
    n_init: int = 10,
    enforce_balance: bool = True,
    seed: int = 0,
    device: str | torch.device | None = None,
    cluster_dtype: torch.dtype = torch.float32,
) -> PRDResult:
    """PRD curve of generated (``fake``) against real features, with F_8 and
    F_1/8, averaged over ``num_runs`` clusterings seeded from ``seed``.

    Unequal set sizes are refused by default, as in the reference: the
    histograms are normalised, but k-means places more clusters where there are
    more points, which biases the curve towards the larger set.

    Clustering runs in ``cluster_dtype`` (float32 by default): it only decides
    an argmin per point, Inception features are float32 to begin with (the
    reference clusters them in float32 too), and on a CPU float32 Lloyd
    iterations are ~3x faster. Histograms and the curve are float64.
    """
    r, f = check_pair(real, fake)
    if enforce_balance and r.shape[0] != f.shape[0]:
        raise MetricError(
            f"PRD needs equally many real and generated images (got {r.shape[0]} real, {f.shape[0]} "
            "generated); subsample the larger set, or pass enforce_balance=False (not recommended)"
        )
    for name, x in (("real", r), ("generated", f)):
        require_count(x.shape[0], num_clusters, name, "PRD", f"one per cluster, num_clusters={num_clusters}")
    if num_runs < 1:
        raise MetricError("num_runs must be >= 1")
    dev = resolve_device(device)
    rt = torch.as_tensor(r, dtype=cluster_dtype, device=dev)
    ft = torch.as_tensor(f, dtype=cluster_dtype, device=dev)
    gen = torch.Generator().manual_seed(seed)
    runs = minibatch_kmeans_runs(torch.cat([ft, rt]), num_clusters, num_runs, generator=gen, n_init=n_init)
    run_labels = [res.labels.cpu().numpy() for res in runs]
    precisions, recalls = [], []
    for labels in run_labels:
        eval_dist, ref_dist = label_histograms(labels, f.shape[0], num_clusters)
        p, rc = prd_from_histograms(eval_dist, ref_dist, num_angles)
        precisions.append(p)
        recalls.append(rc)
    precision = np.mean(precisions, axis=0)
    recall = np.mean(recalls, axis=0)
    f8, f18 = max_f_beta_pair(precision, recall, 8.0)
    return PRDResult(
        precision=precision,
        recall=recall,
        f_8=f8,
        f_1_8=f18,
        params={"num_clusters": num_clusters, "num_angles": num_angles, "num_runs": num_runs, "seed": seed},
        run_labels=run_labels,
    )
