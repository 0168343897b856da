"""DINOv2 ViT-S/B/L/g-14 (Oquab et al. 2023) through ``transformers``' ``Dinov2Model``.

FD_DINOv2 (Stein et al., NeurIPS 2023; EDM2 reports it beside FID) is the Fréchet distance of the
final-layer-norm CLS token of ViT-L/14. Preprocessing is dgm-eval's: PIL bicubic resize of the RGB
image to 224 x 224, to [0, 1], ImageNet mean/std normalisation.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable

import numpy as np
import torch

from ..device import resolve_device
from .base import Encoder
from .defaults import EncoderSpec
from .registry import register_encoder
from .snapshot import WeightsMismatchError, check_model_type, read_json, resolve_snapshot, snapshot_sha256

INPUT_SIZE = 224
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
PREPROCESSING = "pil-bicubic-224/255/imagenet-mean-std/v1"


class PILBicubicTransform:
    """uint8 3 x H x W -> float32 3 x size x size: PIL's bicubic resize of the uint8 image (as
    torchvision's ``Resize`` on a PIL image does), then /255 and mean/std normalisation."""

    def __init__(self, size: int, mean: tuple[float, ...], std: tuple[float, ...]) -> None:
        self.size = size
        self.mean = torch.tensor(mean, dtype=torch.float32).view(3, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32).view(3, 1, 1)

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        from PIL import Image  # noqa: PLC0415

        arr = image.permute(1, 2, 0).numpy()
        if arr.shape[:2] != (self.size, self.size):
            arr = np.asarray(Image.fromarray(arr).resize((self.size, self.size), Image.BICUBIC))
        x = torch.from_numpy(np.array(arr)).permute(2, 0, 1).to(torch.float32) / 255.0
        return (x - self.mean) / self.std


class DINOv2Encoder(Encoder):
    def __init__(self, model: torch.nn.Module, *, name: str, dim: int, **kw) -> None:
        super().__init__(name=name, **kw)
        self.model = model.eval().to(self.device)
        self.dim = dim
        self.preprocessing = PREPROCESSING

    @property
    def transform(self) -> Callable[[torch.Tensor], torch.Tensor]:
        return PILBicubicTransform(INPUT_SIZE, IMAGENET_MEAN, IMAGENET_STD)

    def embed_batch(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(pixel_values=x).pooler_output  # layer-normed CLS token


def load_dinov2(spec: EncoderSpec, weights: str | os.PathLike | None, device: object = None) -> DINOv2Encoder:
    directory, source = resolve_snapshot(spec, weights)
    config = read_json(directory / "config.json")
    check_model_type(spec, directory, config, ("dinov2",))
    if config.get("patch_size") != 14:
        raise WeightsMismatchError(f"{directory} has patch size {config.get('patch_size')}, not 14 as {spec.name} needs")
    dim = int(config.get("hidden_size", 0))
    if dim != spec.dim:
        warnings.warn(
            f"{directory} is not the published {spec.name} ({spec.dim}-d features): it gives {dim}-d "
            "features; its numbers are not comparable with published FD_DINOv2 values",
            stacklevel=3,
        )
    from transformers import Dinov2Model  # noqa: PLC0415 - heavy, and only this encoder needs it

    model = Dinov2Model.from_pretrained(str(directory), local_files_only=True)
    return DINOv2Encoder(
        model, name=spec.name, dim=dim, device=resolve_device(device), weights_path=directory,
        weights_sha256=snapshot_sha256(directory), weights_source=source,
    )


register_encoder("dinov2", load_dinov2)
