import math

import numpy as np
import pytest

from hype.metrics import MetricError
from hype.metrics.kmeans import kmeans, kmeans_plusplus, minibatch_kmeans_runs
from hype.metrics.prd import f_beta, label_histograms, max_f_beta_pair, prd_from_features, prd_from_histograms


def reference_run_curves(eval_data, ref_data, runs, seed, num_clusters=20, num_angles=1001):
    """One PRD precision curve per clustering, as Sajjadi et al. 2018 describe it (and their
    prd_score.py computes it): scikit-learn's MiniBatchKMeans(n_clusters=20, n_init=10) on the
    union, unit-bin density histograms, 1001 angles in (0, pi/2), alpha = sum min(lambda P_ref,
    Q_eval). Written from the description, numpy/sklearn only."""
    from sklearn.cluster import MiniBatchKMeans

    rng = np.random.RandomState(seed)
    data = np.vstack([eval_data, ref_data])
    slopes = np.tan(np.linspace(1e-10, math.pi / 2 - 1e-10, num_angles))
    curves = []
    for _ in range(runs):
        km = MiniBatchKMeans(n_clusters=num_clusters, n_init=10, random_state=rng.randint(2**31))
        labels = km.fit(data).labels_
        q = np.histogram(labels[: len(eval_data)], bins=num_clusters, range=[0, num_clusters], density=True)[0]
        p = np.histogram(labels[len(eval_data) :], bins=num_clusters, range=[0, num_clusters], density=True)[0]
        curves.append(np.clip(np.minimum(p[None, :] * slopes[:, None], q[None, :]).sum(axis=1), 0, 1))
    return np.array(curves)


def test_known_histogram():
    # eval (generated) spreads over two bins, reference (real) is all in the first
    p, r = prd_from_histograms([0.5, 0.5], [1.0, 0.0], num_angles=1001)
    assert p[500] == pytest.approx(0.5, abs=1e-9)  # middle angle is lambda = 1
    assert r[500] == pytest.approx(0.5, abs=1e-9)
    assert p.max() == pytest.approx(0.5, abs=1e-9)  # half the generated mass is off-support
    assert r.max() == pytest.approx(1.0, abs=1e-6)  # all real mass is covered


def test_identical_distributions_pass_through_one_one():
    h = np.array([0.1, 0.2, 0.3, 0.4])
    p, r = prd_from_histograms(h, h, num_angles=1001)
    assert p[500] == pytest.approx(1.0, abs=1e-9)
    assert r[500] == pytest.approx(1.0, abs=1e-9)
    assert max_f_beta_pair(p, r) == pytest.approx((1.0, 1.0), abs=1e-8)


def test_disjoint_distributions_are_zero():
    p, r = prd_from_histograms([1.0, 0.0], [0.0, 1.0])
    assert p.max() == 0 and r.max() == 0


@pytest.mark.parametrize(
    "p,r,beta,expected",
    [
        (1.0, 1.0, 8, 1.0),
        (1.0, 0.5, 1, 2 / 3),
        (1.0, 0.5, 8, 65 * 0.5 / (64 + 0.5)),
        (0.5, 1.0, 1 / 8, (1 + 1 / 64) * 0.5 / (0.5 / 64 + 1)),
        (0.2, 0.8, 8, 65 * 0.16 / (64 * 0.2 + 0.8)),
        (0.0, 0.0, 8, 0.0),
    ],
)
def test_f_beta_known_values(p, r, beta, expected):
    assert float(f_beta(p, r, beta)) == pytest.approx(expected, rel=1e-8, abs=1e-9)


def test_f8_favours_recall():
    # high recall, low precision -> F_8 high, F_1/8 low
    f8, f18 = max_f_beta_pair(np.array([0.2]), np.array([1.0]))
    assert f8 > 0.9 and f18 < 0.3


def _mixture(seed=0, n=500, d=32, k=10):
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(k, d)) * 4
    real = centers[rng.integers(0, k, n)] + rng.normal(size=(n, d))
    fake = centers[rng.integers(0, 6, n)] + rng.normal(size=(n, d)) * 1.3  # drops 4 modes
    return real, fake


def test_curve_within_reference_run_spread():
    """hype's PRD curve is a draw from the same distribution as the reference's: over 40
    clusterings each, the mean precision curves differ by less than 3.5 standard errors of
    their run-to-run spread at every angle. Lloyd k-means run to convergence from a single
    seeding (hype before) separated real from generated sharper than MiniBatchKMeans does:
    its mean curve sat 4.5 standard errors (0.019) from the reference's here."""
    rng = np.random.default_rng(0)
    centers = rng.normal(size=(20, 32)) * 2
    n = 3000
    real = (centers[rng.integers(0, 20, n)] + rng.normal(size=(n, 32))).astype(np.float32)
    fake = (centers[rng.integers(0, 14, n)] + rng.normal(size=(n, 32)) * 1.2 + 0.3).astype(np.float32)
    runs = 40
    ref = reference_run_curves(fake, real, runs, seed=0)
    res = prd_from_features(real, fake, num_runs=runs, seed=0)
    ours = np.array([prd_from_histograms(*label_histograms(lab, n, 20))[0] for lab in res.run_labels])
    diff = ours.mean(axis=0) - ref.mean(axis=0)
    se = np.sqrt(ours.var(axis=0, ddof=1) / runs + ref.var(axis=0, ddof=1) / runs) + 1e-12
    assert np.abs(diff / se).max() < 3.5, (np.abs(diff).max(), np.abs(diff / se).max())
    # and the spread itself is the reference's (one seeding per run doubles it)
    assert 0.5 < ours.std(axis=0).max() / ref.std(axis=0).max() < 1.5
    # mode dropping shows as low recall, good precision
    assert res.f_8 < res.f_1_8


def test_seeded_and_shape():
    real, fake = _mixture(1, n=200, d=8)
    a = prd_from_features(real, fake, seed=3, num_angles=101)
    b = prd_from_features(real, fake, seed=3, num_angles=101)
    assert a.precision.shape == (101,)
    np.testing.assert_array_equal(a.precision, b.precision)
    d = a.to_dict()
    assert set(d) >= {"precision", "recall", "f_8", "f_1_8"}


def test_same_set_scores_near_one():
    real, _ = _mixture(2, n=300, d=8)
    res = prd_from_features(real, real.copy())
    assert res.f_8 > 0.99 and res.f_1_8 > 0.99


def test_errors():
    real, fake = _mixture(3, n=100, d=8)
    with pytest.raises(MetricError, match="equally many"):
        prd_from_features(real, fake[:90])
    prd_from_features(real, fake[:90], enforce_balance=False, num_runs=1)
    with pytest.raises(MetricError, match="at least 20"):
        prd_from_features(real[:10], fake[:10])
    with pytest.raises(MetricError, match="sum to 1"):
        prd_from_histograms([0.5, 0.6], [0.5, 0.5])
    with pytest.raises(MetricError, match="differ in length"):
        prd_from_histograms([1.0], [0.5, 0.5])


def test_kmeans_recovers_separated_clusters():
    import torch

    rng = np.random.default_rng(0)
    centers = rng.normal(size=(5, 4)) * 20
    truth = np.repeat(np.arange(5), 40)
    x = torch.as_tensor(centers[truth] + rng.normal(size=(200, 4)))
    res = kmeans(x, 5, seed=0)
    labels = res.labels.numpy()
    # each true cluster maps to exactly one label
    assert all(len(set(labels[truth == c])) == 1 for c in range(5))
    assert len(set(labels)) == 5


def test_minibatch_kmeans_recovers_separated_clusters():
    import torch

    rng = np.random.default_rng(1)
    centers = rng.normal(size=(5, 4)) * 20
    truth = np.repeat(np.arange(5), 600)  # more points than one batch of 1024
    x = torch.as_tensor(centers[truth] + rng.normal(size=(3000, 4)), dtype=torch.float32)
    for res in minibatch_kmeans_runs(x, 5, 3, generator=torch.Generator().manual_seed(0)):
        labels = res.labels.numpy()
        assert all(len(set(labels[truth == c])) == 1 for c in range(5))
        assert len(set(labels)) == 5
        assert 1 < res.n_iter < 100 * 3000 // 1024  # stopped early, not at max_iter


def test_kmeans_plusplus_seedings_are_independent_points():
    import torch

    x = torch.as_tensor(np.random.default_rng(2).normal(size=(200, 3)))
    seeds = kmeans_plusplus(x, 7, torch.Generator().manual_seed(0), n_init=4)
    assert seeds.shape == (4, 7, 3)
    for s in seeds:  # every centre is a data point, no point twice
        idx = [int(torch.cdist(c[None], x).argmin()) for c in s]
        assert len(set(idx)) == 7 and all(torch.equal(x[i], c) for i, c in zip(idx, s))
    assert not torch.equal(seeds[0], seeds[1])
