import numpy as np
import pytest
import torch

from hype.metrics import MetricError
from hype.metrics.prdc import prdc_from_features


def _feats(seed=0, n_real=300, n_fake=280, d=32):
    rng = np.random.default_rng(seed)
    real = rng.normal(size=(n_real, d))
    fake = rng.normal(size=(n_fake, d)) * 1.2 + 0.15
    return real, fake


@pytest.mark.parametrize("k", [3, 5])
def test_matches_prdc_package(k):
    prdc = pytest.importorskip("prdc", reason="pip install --no-deps prdc")
    real, fake = _feats(k)
    ref = prdc.compute_prdc(real_features=real, fake_features=fake, nearest_k=k)
    ours = prdc_from_features(real, fake, k_pr=k, k_dc=k)
    for key in ("precision", "recall", "density", "coverage"):
        assert ours[key] == pytest.approx(float(ref[key]), abs=1e-12), key


def test_default_ks_split_like_the_papers():
    prdc = pytest.importorskip("prdc")
    real, fake = _feats(11)
    ours = prdc_from_features(real, fake)  # k=3 for P/R, k=5 for D/C
    r3 = prdc.compute_prdc(real_features=real, fake_features=fake, nearest_k=3)
    r5 = prdc.compute_prdc(real_features=real, fake_features=fake, nearest_k=5)
    assert ours["precision"] == pytest.approx(r3["precision"], abs=1e-12)
    assert ours["recall"] == pytest.approx(r3["recall"], abs=1e-12)
    assert ours["density"] == pytest.approx(r5["density"], abs=1e-12)
    assert ours["coverage"] == pytest.approx(r5["coverage"], abs=1e-12)


def test_matches_torch_fidelity_precision_recall(reference_import):
    # torch-fidelity compares with <= instead of <; identical on continuous data
    prc = reference_import("torch_fidelity.metric_prc", "calculate_precision_recall_full")
    real, fake = _feats(5)
    p, r = prc(torch.as_tensor(fake), torch.as_tensor(real), neighborhood=3)  # (generated, real)
    ours = prdc_from_features(real, fake)
    assert ours["precision"] == pytest.approx(p, abs=1e-6)  # torch-fidelity averages in float32
    assert ours["recall"] == pytest.approx(r, abs=1e-6)


def test_blocking_does_not_change_results():
    real, fake = _feats(6)
    assert prdc_from_features(real, fake, block=37) == prdc_from_features(real, fake)


def test_identical_sets():
    real, _ = _feats(7)
    res = prdc_from_features(real, real.copy())
    assert res["precision"] == 1.0 and res["recall"] == 1.0 and res["coverage"] == 1.0
    assert res["density"] == pytest.approx(1.0, abs=0.2)


def test_errors():
    real, fake = _feats(8, n_real=5, n_fake=40)
    with pytest.raises(MetricError, match="at least 6 real"):
        prdc_from_features(real, fake)  # k_dc=5 needs 6 points
    prdc_from_features(real[:4], fake, k_pr=3, k_dc=3)
    with pytest.raises(MetricError, match="dimensions differ"):
        prdc_from_features(real, fake[:, :3], k_pr=1, k_dc=1)


def test_float32_distances_with_float64_rechecks_equal_float64():
    # large norms and small distances: float32's expansion ||a||^2 + ||b||^2 - 2ab rounds by far more
    # than the gaps between neighbours, so the rechecks near every radius must decide
    rng = np.random.default_rng(12)
    real = rng.normal(size=(400, 64)) * 0.05 + 30.0
    fake = rng.normal(size=(380, 64)) * 0.06 + 30.01
    exact = prdc_from_features(real, fake, dtype=torch.float64)
    assert prdc_from_features(real, fake) == exact
    assert prdc_from_features(real.astype(np.float32), fake.astype(np.float32)) == prdc_from_features(
        real.astype(np.float32).astype(np.float64), fake.astype(np.float32).astype(np.float64), dtype=torch.float64)
    prdc = pytest.importorskip("prdc")
    ref = prdc.compute_prdc(real_features=real, fake_features=fake, nearest_k=5)
    assert exact["density"] == pytest.approx(float(ref["density"]), abs=1e-12)
    assert exact["coverage"] == pytest.approx(float(ref["coverage"]), abs=1e-12)
