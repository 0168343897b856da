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
def test_routes_match_numpy_formula_across_blocks(route, monkeypatch):
    # 2500 images span three 1024-blocks: diagonal blocks, mirrored upper blocks, a ragged edge;
    # strips of two blocks: a strip with the diagonal block and one right of it, then a lone block
    import hype.metrics.kid as kid

    monkeypatch.setattr(kid, "POOL_STRIP", 2)
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


def test_float32_kernel_sums_are_exact_where_float32_accumulation_is_not():
    """The pool route sums float32 kernels without a float64 copy of each block (a high part on a
    grid whose sums float32 holds exactly, plus a small remainder). Integer features with
    gamma = 1 make every kernel value an integer exact in float32 ((x.y + 1)^3 < 2^24), while the
    subsets' sums (~1e9) are far past float32's 2^24: summed in float32 they would be off by
    hundreds; exact summation must reproduce the float64 formula to rounding of the final ratio."""
    rng = np.random.default_rng(8)
    real = rng.integers(0, 4, size=(1500, 12)).astype(np.float32)
    fake = (rng.integers(0, 4, size=(1300, 12)) + (rng.random((1300, 12)) < 0.1)).astype(np.float32)
    assert ((real @ fake.T).max() + 1) ** 3 < 2**24 and ((real @ real.T).max() + 1) ** 3 < 2**24

    def reference(x, y, s, m, seed):
        r = np.random.RandomState(seed)
        k = lambda a, b: (a @ b.T + 1.0) ** 3  # noqa: E731
        vals = []
        for _ in range(s):
            a = x[r.choice(len(x), m, replace=False)].astype(np.float64)
            b = y[r.choice(len(y), m, replace=False)].astype(np.float64)
            kxx, kyy, kxy = k(a, a), k(b, b), k(a, b)
            vals.append((kxx.sum() - np.trace(kxx) + kyy.sum() - np.trace(kyy)) / (m * (m - 1)) - 2 * kxy.sum() / m**2)
        return np.asarray(vals)

    ref = reference(real, fake, 5, 1000, seed=4)
    ours = kid_from_features(real, fake, num_subsets=5, subset_size=1000, seed=4, gamma=1.0, route="pools")
    np.testing.assert_allclose(ours["values"], ref, rtol=1e-12, atol=0)


def test_float64_summing_fallback_agrees_with_the_split(monkeypatch):
    """Where float32 products are not IEEE (TF32 or bf16 switched on), the pool route sums each
    float32 block in float64 instead of the exact split; both give the same values."""
    import hype.metrics.kid as kid

    real, fake = (x.astype(np.float32) for x in _feats(9, n=1200, d=16))
    split = kid_from_features(real, fake, num_subsets=4, subset_size=500, seed=1, route="pools")
    monkeypatch.setattr(kid, "_exact_float32_matmul", lambda device: False)
    plain = kid_from_features(real, fake, num_subsets=4, subset_size=500, seed=1, route="pools")
    np.testing.assert_allclose(plain["values"], split["values"], rtol=1e-9)
