"""Images in, cached features out: reading images for any encoder, and the feature cache.

The encoders themselves live in ``hype.metrics.encoders``; the Inception names are re-exported
here because the FID literature (and older callers) look for them in one place.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import warnings
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Union

import numpy as np
import torch

from .encoders.base import Encoder
from .encoders.inception import (  # noqa: F401 - re-exported
    ENV_VAR,
    FEATURE_DIM,
    INPUT_SIZE,
    PACKAGED_WEIGHTS_SHA256,
    PREPROCESSING_VERSION,
    PYTORCH_FID_WEIGHTS_NAME,
    InceptionFeatureExtractor,
    load_inception,
    locate_weights,
    normalize,
    sha256_file,
)
from .errors import MetricError
from .resize import tf1_resize_bilinear  # noqa: F401 - re-exported

if TYPE_CHECKING:
    import PIL.Image

ImageLike = Union[str, os.PathLike, np.ndarray, "PIL.Image.Image"]


# --------------------------------------------------------------------------- images


def load_image(item: ImageLike) -> torch.Tensor:
    """Return one image as a uint8 3 x H x W tensor (CPU).

    Arrays must already be uint8 RGB H x W x 3: guessing the range of a float
    array or the meaning of a fourth channel would silently change the
    features. Files and PIL images are converted to RGB, as every FID tool does.
    """
    if isinstance(item, (str, os.PathLike)):
        from PIL import Image  # noqa: PLC0415 - only needed for paths

        with Image.open(item) as im:
            arr = np.asarray(im.convert("RGB"))
    elif isinstance(item, np.ndarray):
        arr = item
        if arr.dtype != np.uint8:
            raise MetricError(f"image arrays must be uint8 RGB (H x W x 3), got dtype {arr.dtype}")
        if arr.ndim != 3 or arr.shape[2] != 3:
            raise MetricError(f"image arrays must be H x W x 3 RGB, got shape {arr.shape}")
    elif hasattr(item, "convert") and hasattr(item, "size"):  # PIL.Image without importing PIL
        arr = np.asarray(item.convert("RGB"))
    else:
        raise MetricError(f"cannot read an image from {type(item).__name__}; give a path, PIL image or uint8 array")
    if not arr.flags.writeable:  # PIL-backed arrays are read-only; torch wants to own writable memory
        arr = arr.copy()
    return torch.from_numpy(np.ascontiguousarray(arr)).permute(2, 0, 1)


def as_image_sequence(images: Any) -> Sequence[Any]:
    if isinstance(images, np.ndarray):
        if images.ndim == 4:
            return images  # N x H x W x 3: indexing yields the images
        if images.ndim == 3:
            raise MetricError("got a single H x W x 3 array; pass a list or an N x H x W x 3 array")
        raise MetricError(f"image batch array must be N x H x W x 3, got shape {images.shape}")
    if isinstance(images, (str, os.PathLike)):
        raise MetricError("got a single path; pass a list of image paths")
    if isinstance(images, Sequence):
        return images
    return list(images)


# --------------------------------------------------------------------------- cache


def pool_key_from_hashes(image_hashes: Iterable[str]) -> str:
    """Content key for a pool from its per-image hashes, in the given order.

    Order matters because cached rows come back in stored order; sort both the
    hashes and the images if order should not matter.
    """
    h = hashlib.sha256()
    for ih in image_hashes:
        h.update(ih.encode("ascii"))
        h.update(b"\n")
    return h.hexdigest()


class FeatureCache:
    """Directory of ``<key>.npy`` feature arrays.

    The key binds the pool's content, the exact weights (sha256) and the
    preprocessing version, so changing any of them can never serve stale
    features. Writes go to a temporary file that is renamed into place, so a
    crash or a concurrent writer never leaves a truncated array behind.
    """

    def __init__(self, directory: str | os.PathLike) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)

    @staticmethod
    def key(pool_key: str, weights_sha256: str, preprocessing: str = PREPROCESSING_VERSION, encoder: str = "inception") -> str:
        payload = json.dumps(
            {"pool": pool_key, "encoder": encoder, "weights_sha256": weights_sha256, "preprocessing": preprocessing},
            sort_keys=True,
        )
        return hashlib.sha256(payload.encode("utf-8")).hexdigest()

    def path(self, key: str) -> Path:
        return self.directory / f"{key}.npy"

    def load(self, key: str) -> np.ndarray | None:
        p = self.path(key)
        if not p.is_file():
            return None
        try:
            return np.load(p, allow_pickle=False)
        except (OSError, ValueError) as exc:
            warnings.warn(f"ignoring unreadable feature cache file {p}: {exc}", stacklevel=2)
            return None

    def save(self, key: str, features: np.ndarray) -> Path:
        p = self.path(key)
        fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=f".{key}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as fh:
                np.save(fh, np.ascontiguousarray(features), allow_pickle=False)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, p)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return p


def pool_features(
    images: Sequence[ImageLike] | np.ndarray,
    pool_key: str,
    extractor: Encoder,
    cache: FeatureCache | None = None,
    batch_size: int = 64,
    progress: bool = True,
    on_batch: Callable[[int], None] | None = None,
) -> np.ndarray:
    """Features of an image pool, embedded at most once per (content, encoder, weights,
    preprocessing): a 5000-image pool takes minutes on CPU and every metric
    and every re-run needs the same array."""
    n = len(images)
    key = FeatureCache.key(pool_key, extractor.weights_sha256, extractor.preprocessing, extractor.name) if cache else None
    if cache is not None and key is not None:
        cached = cache.load(key)
        if cached is not None:
            if cached.shape == (n, extractor.dim):
                return cached
            warnings.warn(
                f"cached features {cache.path(key)} have shape {cached.shape}, expected {(n, extractor.dim)}; "
                "recomputing (is the pool key really a content hash?)",
                stacklevel=2,
            )
    feats = extractor.extract(images, batch_size=batch_size, progress=progress, on_batch=on_batch)
    if cache is not None and key is not None:
        cache.save(key, feats)
    return feats
