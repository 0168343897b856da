"""CMMD against a direct O(n^2) computation of the paper's formula."""

import numpy as np
import pytest

from hype.metrics import MetricError
from hype.metrics.cmmd import cmmd_from_features


def direct_mmd2(x, y, sigma=10.0, unbiased=True):
    """Gaussian-RBF MMD^2 pair by pair, in numpy, from the definition."""
    def k(a, b):
        return np.exp(-((a[:, None, :] - b[None, :, :]) ** 2).sum(-1) / (2 * sigma**2))

    kxx, kyy, kxy = k(x, x), k(y, y), k(x, y)
    m, n = len(x), len(y)
    if unbiased:
        return (kxx.sum() - np.trace(kxx)) / (m * (m - 1)) + (kyy.sum() - np.trace(kyy)) / (n * (n - 1)) - 2 * kxy.mean()
    return kxx.mean() + kyy.mean() - 2 * kxy.mean()


def _unit(rng, n, d, shift=0.0):
    x = rng.normal(size=(n, d)) + shift
    return x / np.linalg.norm(x, axis=1, keepdims=True)  # CLIP embeddings are unit vectors


@pytest.mark.parametrize("unbiased", [True, False])
def test_matches_direct_computation(unbiased):
    rng = np.random.default_rng(0)
    x, y = _unit(rng, 150, 24), _unit(rng, 130, 24, shift=0.3)
    ours = cmmd_from_features(x, y, estimator="unbiased" if unbiased else "biased")
    assert ours == pytest.approx(1000 * direct_mmd2(x, y, unbiased=unbiased), rel=1e-9)
    assert ours > 0


def test_identical_distribution_is_near_zero_and_unbiased_can_go_negative():
    rng = np.random.default_rng(1)
    x, y = _unit(rng, 200, 16), _unit(rng, 200, 16)
    assert abs(cmmd_from_features(x, y)) < 0.05 * cmmd_from_features(x, _unit(rng, 200, 16, shift=0.5))
    assert cmmd_from_features(x, x.copy()) < 0  # exactly the same set: -2/n-ish, the U-statistic's signature


def test_errors():
    with pytest.raises(MetricError, match="at least 2"):
        cmmd_from_features(np.ones((1, 4)), np.ones((5, 4)))
    with pytest.raises(MetricError, match="estimator"):
        cmmd_from_features(np.ones((3, 4)), np.ones((3, 4)), estimator="v")
