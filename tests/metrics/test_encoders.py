"""Encoders behind one interface, loaded from local snapshots through the real code: tiny randomly
initialised DINOv2 and CLIP models saved with ``save_pretrained`` (no published weights needed)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

pytest.importorskip("transformers")

from hype.metrics import MetricError, WeightsNotFoundError  # noqa: E402
from hype.metrics.encoders import load_encoder  # noqa: E402
from hype.metrics.encoders.snapshot import WeightsMismatchError  # noqa: E402
from hype.metrics.features import FeatureCache, pool_features, pool_key_from_hashes  # noqa: E402

from tiny_models import save_tiny_clip, save_tiny_dinov2  # noqa: E402

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)


@pytest.fixture(scope="module")
def snapshots(tmp_path_factory):
    root = tmp_path_factory.mktemp("weights")
    return {"dino": save_tiny_dinov2(root / "dino"), "dino2": save_tiny_dinov2(root / "dino2", seed=1),
            "clip": save_tiny_clip(root / "clip")}


@pytest.fixture(scope="module")
def dino(snapshots):
    with pytest.warns(UserWarning, match="not the published dinov2-vitl14"):
        return load_encoder("dinov2-vitl14", snapshots["dino"], "cpu")


@pytest.fixture(scope="module")
def clip(snapshots):
    return load_encoder("clip-vitl14", snapshots["clip"], "cpu")


def _images(n, h=64, w=48, seed=0):
    return np.random.default_rng(seed).integers(0, 256, size=(n, h, w, 3), dtype=np.uint8)


def test_dinov2_features_and_preprocessing(dino, snapshots):
    from transformers import Dinov2Model

    imgs = _images(3)
    feats = dino.extract(imgs, batch_size=2, progress=False)
    assert feats.shape == (3, 32) and feats.dtype == np.float32
    # dgm-eval's preprocessing, written out independently: PIL bicubic to 224 x 224, /255, ImageNet mean/std
    expected = np.stack([
        ((np.asarray(Image.fromarray(im).resize((224, 224), Image.BICUBIC), dtype=np.float32) / 255 - IMAGENET_MEAN) / IMAGENET_STD)
        .transpose(2, 0, 1) for im in imgs
    ])
    x = dino.preprocess([torch.from_numpy(im).permute(2, 0, 1) for im in imgs])
    np.testing.assert_allclose(x.numpy(), expected, rtol=0, atol=1e-6)
    # and the feature is the final-layer-norm CLS token of the network on that input
    model = Dinov2Model.from_pretrained(str(snapshots["dino"])).eval()
    with torch.no_grad():
        out = model(pixel_values=torch.from_numpy(expected))
    cls = out.last_hidden_state[:, 0]
    np.testing.assert_allclose(feats, cls.numpy(), rtol=1e-4, atol=1e-5)
    assert dino.info()["encoder"] == "dinov2-vitl14" and len(dino.weights_sha256) == 64


def test_clip_features_and_preprocessing(clip):
    imgs = _images(3, 56, 56, seed=1)  # at the model's resolution: no resize
    feats = clip.extract(imgs, progress=False)
    assert feats.shape == (3, 16)
    np.testing.assert_allclose(np.linalg.norm(feats, axis=1), 1.0, atol=1e-5)  # CMMD's unit embeddings
    x = clip.preprocess([torch.from_numpy(im).permute(2, 0, 1) for im in imgs]).numpy()
    mean = np.array([0.48145466, 0.4578275, 0.40821073], dtype=np.float32)[:, None, None]
    std = np.array([0.26862954, 0.26130258, 0.27577711], dtype=np.float32)[:, None, None]
    np.testing.assert_allclose(x, (imgs.transpose(0, 3, 1, 2) / np.float32(255) - mean) / std, atol=1e-6)
    # other sizes: bicubic in float (not on rounded uint8), to the snapshot's resolution
    big = _images(1, 100, 80, seed=2)[0]
    y = clip.preprocess([torch.from_numpy(big).permute(2, 0, 1)])[0].numpy()
    red = np.asarray(Image.fromarray(big[..., 0].astype(np.float32) / 255, mode="F").resize((56, 56), Image.BICUBIC))
    np.testing.assert_allclose(y[0], (red - mean[0]) / std[0], atol=1e-5)
    assert "float-bicubic-56" in clip.preprocessing


def test_cache_keys_bind_encoder_weights_and_preprocessing(dino, snapshots, tmp_path):
    with pytest.warns(UserWarning):
        other = load_encoder("dinov2-vitl14", snapshots["dino2"], "cpu")
    assert other.weights_sha256 != dino.weights_sha256
    pool = pool_key_from_hashes(["a", "b"])
    keys = {
        FeatureCache.key(pool, dino.weights_sha256, dino.preprocessing, dino.name),
        FeatureCache.key(pool, other.weights_sha256, other.preprocessing, other.name),
        FeatureCache.key(pool, dino.weights_sha256, "other-preprocessing", dino.name),
        FeatureCache.key(pool, dino.weights_sha256, dino.preprocessing, "dinov2-vitb14"),
    }
    assert len(keys) == 4
    cache = FeatureCache(tmp_path)
    imgs = _images(2, seed=3)
    first = pool_features(imgs, pool, dino, cache, progress=False)
    assert len(list(tmp_path.glob("*.npy"))) == 1
    np.testing.assert_array_equal(pool_features(imgs, pool, dino, cache, progress=False), first)
    pool_features(imgs, pool, other, cache, progress=False)
    assert len(list(tmp_path.glob("*.npy"))) == 2  # other weights: never the cached array


def test_missing_and_mismatched_weights_are_clear_errors(snapshots, tmp_path, monkeypatch):
    monkeypatch.delenv("HYPE_WEIGHTS_DINOV2_VITL14", raising=False)
    with pytest.raises(WeightsNotFoundError, match="hype weights fetch dinov2-vitl14"):
        load_encoder("dinov2-vitl14", None, "cpu")
    with pytest.raises(WeightsNotFoundError, match="does not exist"):
        load_encoder("dinov2-vitl14", tmp_path / "nope", "cpu")
    with pytest.raises(WeightsNotFoundError, match="no config.json"):
        load_encoder("dinov2-vitl14", tmp_path, "cpu")
    with pytest.raises(WeightsMismatchError, match="holds a dinov2 model, not clip-vitl14"):
        load_encoder("clip-vitl14", snapshots["dino"], "cpu")
    with pytest.raises(WeightsMismatchError, match="holds a clip_vision_model model, not dinov2"):
        load_encoder("dinov2-vitl14", snapshots["clip"], "cpu")
    with pytest.raises(MetricError, match="unknown encoder"):
        load_encoder("dinov3", None, "cpu")
    # the environment variable and <data dir>/weights/NAME are the fallbacks
    monkeypatch.setenv("HYPE_WEIGHTS_CLIP_VITL14", str(snapshots["clip"]))
    assert load_encoder("clip-vitl14", None, "cpu").weights_path == snapshots["clip"]
    monkeypatch.delenv("HYPE_WEIGHTS_CLIP_VITL14")
    (tmp_path / "weights").mkdir()
    (tmp_path / "weights" / "clip-vitl14").symlink_to(snapshots["clip"], target_is_directory=True)
    found = load_encoder("clip-vitl14", None, "cpu", search_dirs=[tmp_path / "weights"])
    assert found.weights_path == tmp_path / "weights" / "clip-vitl14"


def test_weights_fetch_puts_the_snapshot_where_metrics_look(snapshots, tmp_path, monkeypatch):
    """`hype weights fetch NAME` (network replaced by a copy of a tiny snapshot): the download goes to
    <data dir>/weights/NAME with only config, preprocessor and safetensors files, and the encoder then
    loads from there without --weights; a failed download is one line, not a traceback."""
    import shutil

    import huggingface_hub
    from click.testing import CliRunner

    from hype.cli import main
    from hype.metrics.encoders import get_spec

    calls = []

    def fake_download(repo_id, local_dir, allow_patterns):
        calls.append((repo_id, allow_patterns))
        shutil.copytree(snapshots["clip"], local_dir, dirs_exist_ok=True)
        return local_dir

    monkeypatch.delenv("HYPE_WEIGHTS_CLIP_VITL14", raising=False)
    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_download)
    runner = CliRunner()
    out = runner.invoke(main, ["--data-dir", str(tmp_path), "weights", "fetch", "clip-vitl14"])
    assert out.exit_code == 0, out.output
    assert calls == [(get_spec("clip-vitl14").hub_repo, ["config.json", "preprocessor_config.json", "*.safetensors"])]
    target = tmp_path / "weights" / "clip-vitl14"
    assert str(target) in out.output
    assert load_encoder("clip-vitl14", None, "cpu", search_dirs=[tmp_path / "weights"]).weights_path == target

    def offline(repo_id, local_dir, allow_patterns):
        raise OSError("Temporary failure in name resolution")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", offline)
    out = runner.invoke(main, ["--data-dir", str(tmp_path), "weights", "fetch", "dinov2-vitl14"])
    assert out.exit_code != 0
    assert "could not download facebook/dinov2-large" in out.output and "Traceback" not in out.output
    out = runner.invoke(main, ["--data-dir", str(tmp_path), "weights", "fetch", "inception"])
    assert out.exit_code != 0 and "ship with the metrics extra" in out.output
