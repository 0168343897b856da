import numpy as np
import pytest
import torch

from hype.metrics import MetricError
from hype.metrics.kid import _per_subset_cost, _union_cost, kid_from_features


def numpy_kid(real, fake, num_subsets, subset_size, seed):
    """torch-fidelity's documented formula, written out in numpy: cubic kernel
    (x.y/d + 1)^3, unbiased MMD^2, RandomState(seed).choice draws, population std."""
    rng = np.random.RandomState(seed)
    d = real.shape[1]
    k = lambda a, b: (a @ b.T / d + 1) ** 3  # noqa: E731
    m = subset_size
    vals = []
    for _ in range(num_subsets):
        x = real[rng.choice(len(real), m, replace=False)]
        y = fake[rng.choice(len(fake), m, replace=False)]
        kxx, kyy, kxy = k(x, x), k(y, y), k(x, y)
        vals.append(
            (kxx.sum() - np.trace(kxx) + kyy.sum() - np.trace(kyy)) / (m * (m - 1)) - 2 * kxy.sum() / m**2
        )
    return np.mean(vals), np.std(vals)


def _feats(seed=0, n=300, d=64):
    rng = np.random.default_rng(seed)
    real = np.abs(rng.normal(size=(n, d)))  # non-negative like pool3 activations
    fake = np.abs(rng.normal(size=(n + 20, d)) * 1.1 + 0.05)
    return real, fake


def test_matches_torch_fidelity(reference_import):
    kid_tf = reference_import("torch_fidelity.metric_kid", "kid_features_to_metric")
    real, fake = _feats()
    # float64 inputs so torch-fidelity's numpy kernels run in double like ours
    ref = kid_tf(
        torch.as_tensor(real), torch.as_tensor(fake),
        kid_subsets=20, kid_subset_size=100, rng_seed=7, verbose=False,
    )
    ours = kid_from_features(real, fake, num_subsets=20, subset_size=100, seed=7)
    assert ours["kid_mean"] == pytest.approx(ref["kernel_inception_distance_mean"], rel=1e-9)
    assert ours["kid_std"] == pytest.approx(ref["kernel_inception_distance_std"], rel=1e-7)
    # and with torch-fidelity's native float32 features, to float32 accuracy
    ref32 = kid_tf(
        torch.as_tensor(real, dtype=torch.float32), torch.as_tensor(fake, dtype=torch.float32),
        kid_subsets=20, kid_subset_size=100, rng_seed=7, verbose=False,
    )
    ours32 = kid_from_features(real.astype(np.float32), fake.astype(np.float32), num_subsets=20, subset_size=100, seed=7)
    assert ours32["kid_mean"] == pytest.approx(ref32["kernel_inception_distance_mean"], rel=1e-3)


def test_matches_numpy_formula():
    real, fake = _feats(1)
    m, s = numpy_kid(real, fake, 15, 120, seed=3)
    ours = kid_from_features(real, fake, num_subsets=15, subset_size=120, seed=3)
    assert ours["kid_mean"] == pytest.approx(m, rel=1e-10)
    assert ours["kid_std"] == pytest.approx(s, rel=1e-8)


def test_same_distribution_near_zero_and_unbiased():
    rng = np.random.default_rng(2)
    a = rng.normal(size=(400, 16))
    b = rng.normal(size=(400, 16))
    res = kid_from_features(a, b, num_subsets=30, subset_size=100)
    assert abs(res["kid_mean"]) < 3 * res["kid_std"] + 1e-3
    shifted = kid_from_features(a, b + 0.5, num_subsets=30, subset_size=100)
    assert shifted["kid_mean"] > 10 * abs(res["kid_mean"])


def test_subset_size_capped_with_warning():
    real, fake = _feats(3, n=50)
    with pytest.warns(RuntimeWarning, match="reduced from 1000 to 50"):
        res = kid_from_features(real, fake, num_subsets=5)
    assert res["subset_size"] == 50


def test_errors():
    real, fake = _feats(4, n=10)
    with pytest.raises(MetricError, match="at least 2"):
        kid_from_features(real[:1], fake)
    with pytest.raises(MetricError, match="dimensions differ"):
        kid_from_features(real, fake[:, :5])
    bad = fake.copy()
    bad[0, 0] = np.inf
    with pytest.raises(MetricError, match="NaN or inf"):
        kid_from_features(real, bad)


@pytest.mark.parametrize("route", ["pools", "subsets"])
def test_routes_match_numpy_formula_across_blocks(route):
    # 2500 images span three 1024-blocks: diagonal blocks, mirrored upper blocks, a ragged edge
    rng = np.random.default_rng(5)
    real = np.abs(rng.normal(size=(2500, 24)))
    fake = np.abs(rng.normal(size=(2300, 24)) * 1.05 + 0.02)
    m, s = numpy_kid(real, fake, 6, 1000, seed=11)
    ours = kid_from_features(real, fake, num_subsets=6, subset_size=1000, seed=11, route=route)
    assert ours["kid_mean"] == pytest.approx(m, rel=1e-10)
    assert ours["kid_std"] == pytest.approx(s, rel=1e-8)
    # float32 features: float32 kernels, float64 sums -- within 1e-6 of the float64 value
    ours32 = kid_from_features(real.astype(np.float32), fake.astype(np.float32), num_subsets=6, subset_size=1000, seed=11, route=route)
    assert ours32["kid_mean"] == pytest.approx(m, rel=1e-6)


def test_pool_route_is_chosen_where_it_saves_work():
    # the default 100 subsets x 1000 of 10k Inception features, and a HYPE pool of 3000
    assert _union_cost(10_000, 10_000, 2048, 100) < _per_subset_cost(1000, 100)
    assert _union_cost(3000, 3000, 2048, 100) * 10 < _per_subset_cost(1000, 100)
    # a pool far larger than the subsets cover keeps one Gram matrix per subset
    assert _union_cost(100_000, 100_000, 2048, 100) > _per_subset_cost(1000, 100)
    with pytest.raises(MetricError, match="unknown KID route"):
        kid_from_features(*_feats(6, n=20), route="fast")
