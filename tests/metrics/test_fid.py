import warnings

import numpy as np
import pytest

from hype.metrics import MetricError
from hype.metrics.fid import feature_statistics, fid_bootstrap, fid_from_features, frechet_distance


def _pair(rng, n=400, d=48):
    a = rng.normal(size=(n, d))
    b = rng.normal(size=(n, d)) @ rng.normal(size=(d, d)) * 0.4 + 0.3
    return a, b


def test_identical_sets_give_zero():
    rng = np.random.default_rng(1)
    a, _ = _pair(rng)
    assert abs(fid_from_features(a, a)) < 1e-6


def test_identical_rank_deficient_sets_give_zero():
    # n < d: singular covariance; the null space must not leak into the trace
    a = np.random.default_rng(2).normal(size=(30, 64)) * 5
    with pytest.warns(RuntimeWarning, match="rank-deficient"):
        assert abs(fid_from_features(a, a)) < 1e-6


def test_closed_form_commuting_covariances():
    rng = np.random.default_rng(3)
    d = 10
    q, _ = np.linalg.qr(rng.normal(size=(d, d)))  # shared eigenbasis -> S1, S2 commute
    l1 = rng.uniform(0.1, 4, d)
    l2 = rng.uniform(0.1, 4, d)
    s1 = q @ np.diag(l1) @ q.T
    s2 = q @ np.diag(l2) @ q.T
    mu1 = rng.normal(size=d)
    mu2 = rng.normal(size=d)
    expected = np.sum((mu1 - mu2) ** 2) + np.sum(l1 + l2 - 2 * np.sqrt(l1 * l2))
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(expected, rel=1e-10)
    # diagonal special case
    expected_diag = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(l1) - np.sqrt(l2)) ** 2)
    assert frechet_distance(mu1, np.diag(l1), mu2, np.diag(l2)) == pytest.approx(expected_diag, rel=1e-10)


def test_singular_covariance_closed_form():
    # one zero variance in each, different axes: tr sqrt(S1 S2) = sum sqrt(l1 l2) still
    l1 = np.array([0.0, 2.0, 3.0])
    l2 = np.array([1.0, 0.0, 5.0])
    mu = np.zeros(3)
    expected = np.sum(l1 + l2 - 2 * np.sqrt(l1 * l2))
    assert frechet_distance(mu, np.diag(l1), mu, np.diag(l2)) == pytest.approx(expected, rel=1e-12)


@pytest.mark.filterwarnings("ignore:The `disp` argument:DeprecationWarning")
@pytest.mark.parametrize("n,d", [(400, 48), (1500, 256)])
def test_matches_pytorch_fid(reference_import, n, d):
    calc = reference_import("pytorch_fid.fid_score", "calculate_frechet_distance")
    a, b = _pair(np.random.default_rng(n), n, d)
    mu1, s1 = a.mean(0), np.cov(a, rowvar=False)
    mu2, s2 = b.mean(0), np.cov(b, rowvar=False)
    ref = calc(mu1, s1, mu2, s2)
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(ref, rel=1e-6)
    assert fid_from_features(a, b) == pytest.approx(ref, rel=1e-6)


def test_statistics_match_numpy():
    a = np.random.default_rng(4).normal(size=(50, 7)).astype(np.float32)
    mu, s = feature_statistics(a)
    np.testing.assert_allclose(mu, a.astype(np.float64).mean(0), rtol=1e-12)
    np.testing.assert_allclose(s, np.cov(a.astype(np.float64), rowvar=False), rtol=1e-10, atol=1e-14)


def test_errors():
    rng = np.random.default_rng(5)
    a = rng.normal(size=(20, 8))
    with pytest.raises(MetricError, match="at least 2"):
        fid_from_features(a[:1], a)
    with pytest.raises(MetricError, match="dimensions differ"):
        fid_from_features(a, a[:, :4])
    bad = a.copy()
    bad[3, 2] = np.nan
    with pytest.raises(MetricError, match="NaN"):
        fid_from_features(a, bad)
    with pytest.raises(MetricError, match="2-D"):
        fid_from_features(a[0], a)
    not_psd = np.diag([1.0, -1.0, 2.0])
    with pytest.raises(MetricError, match="negative eigenvalue"):
        frechet_distance(np.zeros(3), not_psd, np.zeros(3), np.eye(3))


def test_rank_deficiency_warning_and_no_warning_when_enough():
    rng = np.random.default_rng(6)
    with pytest.warns(RuntimeWarning, match="rank-deficient"):
        fid_from_features(rng.normal(size=(10, 16)), rng.normal(size=(10, 16)))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fid_from_features(rng.normal(size=(40, 16)), rng.normal(size=(40, 16)))


def test_bootstrap_interval():
    a, b = _pair(np.random.default_rng(7), 300, 8)
    res = fid_bootstrap(a, b, n_boot=40, seed=1)
    assert res["fid"] == pytest.approx(fid_from_features(a, b))
    assert res["ci_low"] <= res["boot_mean"] <= res["ci_high"]
    assert res["boot_std"] > 0
    assert res == fid_bootstrap(a, b, n_boot=40, seed=1)  # seeded


# ---------------------------------------------------------------- fast path vs scipy sqrtm


def _scipy_fd(mu1, s1, mu2, s2):
    """pytorch-fid's formula with scipy's general matrix square root."""
    import scipy.linalg

    covmean = scipy.linalg.sqrtm(s1 @ s2)
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean.real))


def _cov(rng, eigenvalues):
    q, _ = np.linalg.qr(rng.normal(size=(len(eigenvalues), len(eigenvalues))))
    return (q * eigenvalues) @ q.T


@pytest.mark.parametrize("case", ["well", "ill", "singular", "both-singular"])
def test_fast_path_matches_scipy_sqrtm(case):
    rng = np.random.default_rng(11)
    d = 64
    eig = {
        "well": (rng.uniform(1, 2, d), rng.uniform(1, 2, d)),
        "ill": (np.logspace(-10, 0, d), np.logspace(-8, 1, d)),  # condition numbers 1e10, 1e9
        "singular": (np.r_[np.zeros(20), rng.uniform(0.5, 2, d - 20)], rng.uniform(0.5, 2, d)),
        "both-singular": (np.r_[np.zeros(20), rng.uniform(0.5, 2, d - 20)], np.r_[rng.uniform(0.5, 2, d - 10), np.zeros(10)]),
    }[case]
    s1, s2 = _cov(rng, eig[0]), _cov(rng, eig[1])
    mu1, mu2 = rng.normal(size=d), rng.normal(size=d)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        expected = _scipy_fd(mu1, s1, mu2, s2)
    assert frechet_distance(mu1, s1, mu2, s2, device="cpu") == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("n", [300, 1500])
def test_fd_dinov2_sized_features_match_the_closed_form(n):
    """FD_DINOv2 is FD on 1024-d ViT-L/14 features: fewer images than dimensions takes the Gram route,
    more the Cholesky route; both equal the formula with scipy's sqrtm of the sample covariances."""
    rng = np.random.default_rng(n)
    d = 1024
    mix = rng.normal(size=(d, d)) / np.sqrt(d)
    a = rng.normal(size=(n, d)) @ mix
    b = rng.normal(size=(n + 7, d)) @ mix * 1.1 + 0.05
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours = fid_from_features(a.astype(np.float32), b.astype(np.float32))
        a64, b64 = a.astype(np.float32).astype(np.float64), b.astype(np.float32).astype(np.float64)
        expected = _scipy_fd(a64.mean(0), np.cov(a64, rowvar=False), b64.mean(0), np.cov(b64, rowvar=False))
    assert ours == pytest.approx(expected, rel=1e-6)
