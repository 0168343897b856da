"""The encoders hype knows by name, and where each one's weights come from.

One place for these facts: the registry builds encoders from it, ``hype weights fetch`` downloads
from it, and the error for missing weights quotes it.
"""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_ENCODER = "inception"
#: Sub-directory of the data dir where ``hype weights fetch NAME`` puts snapshot NAME.
WEIGHTS_SUBDIR = "weights"


@dataclass(frozen=True)
class EncoderSpec:
    name: str
    family: str  # "inception" | "dinov2" | "clip"
    description: str
    dim: int  # feature width of the published weights
    hub_repo: str | None  # Hugging Face repository that `hype weights fetch` downloads
    env_var: str  # the environment variable naming a local weights file / snapshot dir

    @property
    def fd_name(self) -> str:
        """How the Fréchet distance on this encoder is called in the literature."""
        return {"inception": "FID", "dinov2": "FD_DINOv2", "clip": "FD_CLIP"}[self.family]


def _env(name: str) -> str:
    return "HYPE_WEIGHTS_" + name.upper().replace("-", "_")


SPECS: dict[str, EncoderSpec] = {
    spec.name: spec
    for spec in [
        EncoderSpec("inception", "inception", "Inception-v3 pool3, TF 2015-12-05 FID graph", 2048, None, "HYPE_INCEPTION_WEIGHTS"),
        EncoderSpec("dinov2-vits14", "dinov2", "DINOv2 ViT-S/14 CLS token", 384, "facebook/dinov2-small", _env("dinov2-vits14")),
        EncoderSpec("dinov2-vitb14", "dinov2", "DINOv2 ViT-B/14 CLS token", 768, "facebook/dinov2-base", _env("dinov2-vitb14")),
        EncoderSpec("dinov2-vitl14", "dinov2", "DINOv2 ViT-L/14 CLS token (FD_DINOv2 of Stein et al. 2023)", 1024, "facebook/dinov2-large", _env("dinov2-vitl14")),
        EncoderSpec("dinov2-vitg14", "dinov2", "DINOv2 ViT-g/14 CLS token", 1536, "facebook/dinov2-giant", _env("dinov2-vitg14")),
        EncoderSpec("clip-vitl14", "clip", "CLIP ViT-L/14 @336px image embedding (CMMD of Jayasumana et al. 2024)", 768, "openai/clip-vit-large-patch14-336", _env("clip-vitl14")),
    ]
}
