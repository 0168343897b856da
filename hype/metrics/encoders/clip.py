"""CLIP ViT-L/14 image embeddings through ``transformers``' ``CLIPVisionModelWithProjection``, as
CMMD (Jayasumana et al., CVPR 2024) computes them.

CMMD's reference resizes the [0, 1] float image bicubically (``jax.image.resize``: Keys cubic,
a = -0.5, antialiased when shrinking) to the model's resolution (336 for ViT-L/14@336px), applies
CLIP's mean/std, and L2-normalises the projected embedding. PIL's bicubic filter on float ('F')
channels is the same kernel with the same antialiasing, so it is used here on each channel.
Resolution and mean/std come from the snapshot (its config and ``preprocessor_config.json``).
"""

from __future__ import annotations

import os
from collections.abc import Callable

import numpy as np
import torch

from ..device import resolve_device
from .base import Encoder
from .defaults import EncoderSpec
from .registry import register_encoder
from .snapshot import WeightsMismatchError, check_model_type, read_json, resolve_snapshot, snapshot_sha256

#: OpenAI CLIP's normalisation, used when a snapshot has no preprocessor_config.json.
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


class FloatBicubicTransform:
    """uint8 3 x H x W -> float32 3 x size x size: to [0, 1], bicubic resize in float (PIL 'F'
    mode, per channel), mean/std normalisation."""

    def __init__(self, size: int, mean: tuple[float, ...], std: tuple[float, ...]) -> None:
        self.size = size
        self.mean = torch.tensor(mean, dtype=torch.float32).view(3, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32).view(3, 1, 1)

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        from PIL import Image  # noqa: PLC0415

        x = image.to(torch.float32) / 255.0
        if tuple(x.shape[1:]) != (self.size, self.size):
            chans = [
                np.asarray(Image.fromarray(c.numpy(), mode="F").resize((self.size, self.size), Image.BICUBIC))
                for c in x
            ]
            x = torch.from_numpy(np.stack(chans))
        return (x - self.mean) / self.std


class CLIPEncoder(Encoder):
    def __init__(self, model: torch.nn.Module, *, name: str, dim: int, size: int,
                 mean: tuple[float, ...], std: tuple[float, ...], **kw) -> None:
        super().__init__(name=name, **kw)
        self.model = model.eval().to(self.device)
        self.dim = dim
        self.size, self.mean, self.std = size, mean, std
        self.preprocessing = f"float-bicubic-{size}/clip-mean-std{list(mean)}{list(std)}/l2-normalised/v1"

    @property
    def transform(self) -> Callable[[torch.Tensor], torch.Tensor]:
        return FloatBicubicTransform(self.size, self.mean, self.std)

    def embed_batch(self, x: torch.Tensor) -> torch.Tensor:
        emb = self.model(pixel_values=x).image_embeds
        return emb / torch.linalg.vector_norm(emb, dim=-1, keepdim=True)


def load_clip(spec: EncoderSpec, weights: str | os.PathLike | None, device: object = None) -> CLIPEncoder:
    directory, source = resolve_snapshot(spec, weights)
    config = read_json(directory / "config.json")
    check_model_type(spec, directory, config, ("clip", "clip_vision_model"))
    vision = config.get("vision_config", config) if config.get("model_type") == "clip" else config
    size = int(vision.get("image_size", 224))
    if vision.get("patch_size", 14) != 14:
        raise WeightsMismatchError(f"{directory} has patch size {vision.get('patch_size')}, not 14 as {spec.name} needs")
    mean, std = CLIP_MEAN, CLIP_STD
    proc = directory / "preprocessor_config.json"
    if proc.is_file():
        pc = read_json(proc)
        mean = tuple(float(v) for v in pc.get("image_mean", mean))
        std = tuple(float(v) for v in pc.get("image_std", std))
    from transformers import CLIPVisionModelWithProjection  # noqa: PLC0415 - heavy

    model = CLIPVisionModelWithProjection.from_pretrained(str(directory), local_files_only=True)
    dim = int(model.config.projection_dim)
    return CLIPEncoder(
        model, name=spec.name, dim=dim, size=size, mean=mean, std=std, device=resolve_device(device),
        weights_path=directory, weights_sha256=snapshot_sha256(directory), weights_source=source,
    )


register_encoder("clip", load_clip)
