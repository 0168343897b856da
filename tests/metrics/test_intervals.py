"""Bootstrap intervals: seeded, and covering the true value on synthetic Gaussians in about 95% of
repeats for the metrics that have a population value in closed form (FD, KID's cubic-kernel MMD^2,
CMMD's Gaussian-RBF MMD^2)."""

import numpy as np
import pytest

from hype.metrics import compute_all_metrics
from hype.metrics.bootstrap import fd_interval, kernel_interval, mmd2_replicates
from hype.metrics.cmmd import SIGMA, rbf_kernel_matrix
from hype.metrics.kid import polynomial_kernel

D = 2
MU_A, MU_B = np.zeros(D), np.array([1.0, -0.5])
COV_A, COV_B = np.diag([1.0, 0.5]), np.array([[1.5, 0.3], [0.3, 0.8]])


def true_fd():
    import scipy.linalg

    diff = MU_A - MU_B
    return float(diff @ diff + np.trace(COV_A) + np.trace(COV_B) - 2 * np.trace(scipy.linalg.sqrtm(COV_A @ COV_B).real))


def _third_moment(mu, cov):
    """E[x_i x_j x_k] of N(mu, cov)."""
    return (np.einsum("i,j,k->ijk", mu, mu, mu) + np.einsum("i,jk->ijk", mu, cov)
            + np.einsum("j,ik->ijk", mu, cov) + np.einsum("k,ij->ijk", mu, cov))


def _poly_expectation(mu1, c1, mu2, c2):
    """E (g x.y + 1)^3 for independent x ~ N(mu1, c1), y ~ N(mu2, c2), g = 1/d, from the moments of u = x.y."""
    g = 1.0 / D
    e1 = mu1 @ mu2
    e2 = np.trace((c1 + np.outer(mu1, mu1)) @ (c2 + np.outer(mu2, mu2)))
    e3 = float((_third_moment(mu1, c1) * _third_moment(mu2, c2)).sum())
    return g**3 * e3 + 3 * g**2 * e2 + 3 * g * e1 + 1


def true_kid():
    return (_poly_expectation(MU_A, COV_A, MU_A, COV_A) + _poly_expectation(MU_B, COV_B, MU_B, COV_B)
            - 2 * _poly_expectation(MU_A, COV_A, MU_B, COV_B))


def _rbf_expectation(mu1, c1, mu2, c2, sigma):
    """E exp(-||x - y||^2 / (2 sigma^2)): x - y ~ N(mu1 - mu2, c1 + c2)."""
    s = c1 + c2
    delta = mu1 - mu2
    return float(np.linalg.det(np.eye(D) + s / sigma**2) ** -0.5
                 * np.exp(-0.5 * delta @ np.linalg.solve(s + sigma**2 * np.eye(D), delta)))


def true_cmmd(sigma):
    return 1000 * (_rbf_expectation(MU_A, COV_A, MU_A, COV_A, sigma) + _rbf_expectation(MU_B, COV_B, MU_B, COV_B, sigma)
                   - 2 * _rbf_expectation(MU_A, COV_A, MU_B, COV_B, sigma))


def test_weighted_replicate_of_unit_counts_is_the_unbiased_estimate():
    import torch

    rng = np.random.default_rng(0)
    x, y = torch.as_tensor(rng.normal(size=(30, 3))), torch.as_tensor(rng.normal(size=(25, 3)) + 0.4)
    k = polynomial_kernel
    ones_x, ones_y = torch.ones(1, 30, dtype=torch.float64), torch.ones(1, 25, dtype=torch.float64)
    kxx, kyy, kxy = k(x, x).numpy(), k(y, y).numpy(), k(x, y).numpy()
    direct = (kxx.sum() - np.trace(kxx)) / (30 * 29) + (kyy.sum() - np.trace(kyy)) / (25 * 24) - 2 * kxy.mean()
    assert float(mmd2_replicates(k(x, x), k(x, y), k(y, y), ones_x, ones_y)[0]) == pytest.approx(direct, rel=1e-12)
    # a replicate that draws image 0 twice never pairs the two copies
    cx = ones_x.clone()
    cx[0, 0], cx[0, 1] = 2, 0
    xr = x[[0, 0, *range(2, 30)]]
    kr = k(xr, xr).numpy()
    pairs = [(i, j) for i in range(30) for j in range(30) if i != j and not (i < 2 and j < 2)]
    within = np.mean([kr[i, j] for i, j in pairs])
    expected = within + (kyy.sum() - np.trace(kyy)) / (25 * 24) - 2 * k(xr, y).numpy().mean()
    assert float(mmd2_replicates(k(x, x), k(x, y), k(y, y), cx, ones_y)[0]) == pytest.approx(expected, rel=1e-12)


def test_every_metric_gets_a_seeded_interval():
    rng = np.random.default_rng(3)
    real, fake = rng.normal(size=(80, 6)), rng.normal(size=(80, 6)) + 0.4
    res = compute_all_metrics(real, fake, kid_subset_size=40, n_boot=50, seed=2, metrics=("fid", "kid", "prd", "prdc", "cmmd"))
    for key in ("fid", "kid_mean", "f_8", "f_1_8", "precision", "recall", "density", "coverage", "cmmd"):
        ci = res["ci"][key]
        assert ci["low"] <= ci["high"] and ci["n_boot"] == 50, key
        assert ci["low"] <= ci["boot_mean"] <= ci["high"], key
    again = compute_all_metrics(real, fake, kid_subset_size=40, n_boot=50, seed=2, metrics=("fid", "kid", "prd", "prdc", "cmmd"))
    assert again["ci"] == res["ci"]
    assert compute_all_metrics(real, fake, kid_subset_size=40, n_boot=50, seed=3, metrics=("fid",))["ci"]["fid"] != res["ci"]["fid"]


@pytest.mark.slow
def test_intervals_cover_the_true_value_about_95_percent():
    repeats, n = 100, 300
    truths = {"fd": true_fd(), "kid": true_kid(), "cmmd": true_cmmd(2.0)}
    assert all(t > 0 for t in truths.values())
    hits = {k: 0 for k in truths}
    rng = np.random.default_rng(2024)
    la, lb = np.linalg.cholesky(COV_A), np.linalg.cholesky(COV_B)
    for r in range(repeats):
        a = MU_A + rng.normal(size=(n, D)) @ la.T
        b = MU_B + rng.normal(size=(n, D)) @ lb.T
        fd = fd_interval(a, b, n_boot=200, seed=r, device="cpu")
        kid = kernel_interval(a, b, polynomial_kernel, point=None, n_boot=200, seed=r, device="cpu")
        # CMMD's sigma = 10 suits unit CLIP vectors; on these unit-variance Gaussians sigma = 2 plays that role
        cmmd = kernel_interval(a, b, lambda x, y: rbf_kernel_matrix(x, y, 2.0), point=None, scale=1000,
                               n_boot=200, seed=r, device="cpu")
        for key, ci in (("fd", fd), ("kid", kid), ("cmmd", cmmd)):
            hits[key] += ci["low"] <= truths[key] <= ci["high"]
    coverage = {k: v / repeats for k, v in hits.items()}
    assert all(0.88 <= c <= 0.995 for c in coverage.values()), coverage
    assert SIGMA == 10.0


def test_fd_interval_holds_its_own_value_where_duplicates_inflate_the_replicates():
    """d = 16 at n = 300: the resampled pairs' FD sat at 0.54–0.85 around a value of 0.16, so the
    plain percentile interval left out the number it was printed beside."""
    rng = np.random.default_rng(7)
    a = rng.normal(size=(300, 16))
    b = rng.normal(size=(300, 16)) + 0.05
    ci = fd_interval(a, b, n_boot=100, seed=1, device="cpu")
    assert ci["boot_mean"] > ci["value"] + 0.2  # the replicates really are inflated here
    assert ci["low"] <= ci["value"] <= ci["high"]
    assert ci["low"] >= 0.0
