import json

import numpy as np
import pytest
import torch

from hype.metrics import DeviceError, MetricError, compute_all_metrics, resolve_device


def _feats(n=120, d=16, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, d)), rng.normal(size=(n, d)) + 0.3


def test_all_metrics_json_serialisable():
    real, fake = _feats()
    res = compute_all_metrics(real, fake, kid_subset_size=50, feature_info={"weights_sha256": "abc"})
    json.dumps(res, allow_nan=False)
    for key in ("fid", "kid_mean", "kid_std", "precision", "recall", "density", "coverage", "n_real", "n_fake"):
        assert res[key] is not None, key
    assert set(res["prd"]) == {"precision", "recall", "f_8", "f_1_8"}
    assert len(res["prd"]["precision"]) == 1001
    assert res["n_real"] == res["n_fake"] == 120
    assert res["features"]["weights_sha256"] == "abc"
    assert res["errors"] == {}


def test_seeded_reproducible():
    real, fake = _feats(seed=1)
    a = compute_all_metrics(real, fake, kid_subset_size=50, seed=5)
    b = compute_all_metrics(real, fake, kid_subset_size=50, seed=5)
    a.pop("timings_s"), b.pop("timings_s")
    assert a == b


def test_error_modes():
    real, fake = _feats()
    with pytest.raises(MetricError, match="equally many"):
        compute_all_metrics(real, fake[:100], kid_subset_size=50)
    res = compute_all_metrics(real, fake[:100], kid_subset_size=50, errors="record")
    assert res["prd"] is None and "prd" in res["errors"]
    assert res["fid"] is not None
    only = compute_all_metrics(real, fake, metrics=("fid",))
    assert only["kid_mean"] is None and only["fid"] is not None
    with pytest.raises(ValueError, match="unknown metrics"):
        compute_all_metrics(real, fake, metrics=("is",))


def test_resolve_device():
    assert resolve_device("cpu") == torch.device("cpu")
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device(None).type == expected
    if not torch.cuda.is_available():
        with pytest.raises(DeviceError, match="CUDA is not available"):
            resolve_device("cuda")
    with pytest.raises(DeviceError):
        resolve_device("mps")
    with pytest.raises(DeviceError, match="unknown device"):
        resolve_device("nonsense")


def test_package_import_is_light():
    import subprocess
    import sys

    code = "import sys, hype.metrics; from hype.metrics import MetricError; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
