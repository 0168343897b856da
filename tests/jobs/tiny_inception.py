"""A small TorchScript network with the packaged Inception's interface ((x-128)/128, N x 3 x 299 x 299
in, N x 2048 out), so job tests run real feature extraction and metrics in seconds, not minutes.
`depth` sets how much work an image costs, so a test can make a job last long enough to watch."""

from __future__ import annotations

from pathlib import Path

import torch


class _Tiny(torch.nn.Module):
    def __init__(self, depth: int) -> None:
        super().__init__()
        self.stem = torch.nn.Conv2d(3, 16, kernel_size=7, stride=4, padding=3)
        self.body = torch.nn.Sequential(*[torch.nn.Conv2d(16, 16, kernel_size=3, padding=1) for _ in range(depth)])
        self.pool = torch.nn.AdaptiveAvgPool2d(4)
        self.head = torch.nn.Linear(16 * 4 * 4, 2048)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.stem(x))
        for layer in self.body:
            x = torch.relu(layer(x))
        return self.head(self.pool(x).flatten(1))


def write_tiny_inception(path: Path, depth: int = 2, seed: int = 0) -> Path:
    torch.manual_seed(seed)
    torch.jit.script(_Tiny(depth).eval()).save(str(path))
    return path
