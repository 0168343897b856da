"""Tiny randomly initialised DINOv2 and CLIP snapshots (``save_pretrained``), loaded by the tests
through the real encoder code: no published weights are needed, or could be downloaded."""

from __future__ import annotations

from pathlib import Path


def save_tiny_dinov2(directory: Path, seed: int = 0) -> Path:
    import torch
    from transformers import Dinov2Config, Dinov2Model

    torch.manual_seed(seed)
    config = Dinov2Config(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64,
                          patch_size=14, image_size=224)
    Dinov2Model(config).save_pretrained(directory)
    return directory


def save_tiny_clip(directory: Path, seed: int = 0, image_size: int = 56) -> Path:
    import torch
    from transformers import CLIPImageProcessor, CLIPVisionConfig, CLIPVisionModelWithProjection

    torch.manual_seed(seed)
    config = CLIPVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
                              patch_size=14, image_size=image_size, projection_dim=16)
    CLIPVisionModelWithProjection(config).save_pretrained(directory)
    CLIPImageProcessor(crop_size={"height": image_size, "width": image_size}, size={"shortest_edge": image_size}).save_pretrained(directory)
    return directory
