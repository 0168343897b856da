"""End-to-end sanity check: real photo crops vs the same kind of crops blurred
at increasing strength ("models" of decreasing quality). Every metric must rank
the models in the order of degradation. Small (48 images per pool) so it runs
on a CPU in ~30 s; the ranking margins at this size are wide (see the report)."""

import warnings

import numpy as np
import pytest

SIGMAS = (1.0, 2.0, 4.0)
N = 48
CROP = 128


def _crops(n: int, seed: int) -> np.ndarray:
    import skimage.data as sd

    names = ["astronaut", "coffee", "chelsea", "rocket", "hubble_deep_field", "immunohistochemistry", "retina", "cat"]
    photos = [getattr(sd, name)() for name in names]
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        p = photos[i % len(photos)]
        y = rng.integers(0, p.shape[0] - CROP)
        x = rng.integers(0, p.shape[1] - CROP)
        out.append(p[y : y + CROP, x : x + CROP])
    return np.stack(out)


def _blur(a: np.ndarray, sigma: float) -> np.ndarray:
    from scipy.ndimage import gaussian_filter

    b = gaussian_filter(a.astype(np.float64), sigma=(0, sigma, sigma, 0))
    return np.clip(np.round(b), 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def pools(inception):
    pytest.importorskip("skimage")
    real = inception.extract(_crops(N, seed=1), progress=False)  # disjoint crops from the models'
    base = _crops(N, seed=2)
    models = [inception.extract(_blur(base, s), progress=False) for s in SIGMAS]
    return real, models


@pytest.mark.slow
def test_metrics_rank_blur_levels(pools):
    from hype.metrics import compute_all_metrics

    real, models = pools
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # rank-deficient covariance, small KID subsets
        results = [compute_all_metrics(real, fake, seed=0) for fake in models]
    fid = [r["fid"] for r in results]
    f8 = [r["prd"]["f_8"] for r in results]
    f18 = [r["prd"]["f_1_8"] for r in results]
    kid = [r["kid_mean"] for r in results]
    assert fid[0] < fid[1] < fid[2], fid
    assert f8[0] > f8[1] > f8[2], f8
    assert f18[0] > f18[1] > f18[2], f18
    assert kid[0] < kid[1] < kid[2], kid
    assert results[0]["precision"] > results[2]["precision"]
    assert results[0]["coverage"] > results[2]["coverage"]
