"""Toy detectors and images for tests and benchmarks: not part of the library.

``RegionModel`` decides from one region only (channel 0's top-left 8x8 mean), so Pixle can fool it
in a few queries and a forward pass costs microseconds; ``region_images`` / ``random_images`` put
that region near the decision boundary. The distributed command line takes the toy as
``--model tests.toys:RegionModel`` (a callable named by its import path), so the library ships no toy.
"""

from __future__ import annotations

import torch
from torch import nn


class RegionModel(nn.Module):
    """Class 1 if the mean of channel 0 in the top-left 8x8 region exceeds 0.5 (a fast toy detector)."""

    def __init__(self, scale: float = 30.0):
        super().__init__()
        self.scale = scale
        self.calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        m = x[:, 0, :8, :8].mean((1, 2))
        z = (m - 0.5) * self.scale
        return torch.stack([-z, z], 1)


def random_images(n: int, size: int = 32, channels: int = 3, seed: int = 0) -> torch.Tensor:
    """Seeded uniform images whose toy region lies near :class:`RegionModel`'s decision boundary."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, channels, size, size, generator=g)
    shift = (torch.rand(n, generator=g) - 0.5) * 0.12
    x[:, 0, :8, :8] = (x[:, 0, :8, :8] * 0.2 + 0.4 + shift[:, None, None]).clamp(0, 1)
    return x


def region_images(n: int = 16, seed: int = 0, size: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`random_images` labelled by :class:`RegionModel` (so every image starts correctly classified)."""
    x = random_images(n, size, 3, seed)
    return x, RegionModel()(x).argmax(1)


def save_toy_features(path, n: int, size: int = 16, seed: int = 0):
    """:func:`region_images` as a features file (what ``python -m helpers.distributed.ddp --features`` reads)."""
    from helpers.data.features import FeatureSet, save_features

    x, y = region_images(n, seed, size)
    save_features(path, FeatureSet(x, y, [f"T{i:05d}" for i in range(n)]))
    return path
