"""Spatial smoothing defenses and the ``Defended`` wrapper.

- :class:`GaussianBlur`: the thesis's ``torchvision.transforms.GaussianBlur(kernel_size=5,
  sigma=(0.1, 5.0))``. torchvision draws one sigma per call, which in the thesis meant one per
  batch (``per="batch"``); ``per="image"`` draws one per image; a float ``sigma`` fixes it. The
  kernel and reflect padding are torchvision's, and a seed gives the defense its own generator.
- :class:`MedianFilter`: median smoothing, the variant used by ART's ``SpatialSmoothing`` and by
  Wu et al. (ICASSP 2020) for spoofing countermeasures.
- :class:`Defended`: ``model(preprocess(x))`` as one classifier, so an attack can query the whole
  defended pipeline (the adaptive evaluation of Carlini et al. 2019 / Tramer et al. 2020). With
  ``eot > 1`` it averages the class probabilities over several draws of a randomised defense
  (expectation over transformation, Athalye et al. 2018) and returns their log as logits.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn


def gaussian_kernel1d(sigma: torch.Tensor, kernel_size: int) -> torch.Tensor:
    """torchvision's kernel: exp(-x^2 / 2 sigma^2) on linspace(-(k-1)/2, (k-1)/2, k), normalised. (B, k)."""
    half = (kernel_size - 1) * 0.5
    x = torch.linspace(-half, half, kernel_size, device=sigma.device, dtype=torch.float32)
    pdf = torch.exp(-0.5 * (x[None, :] / sigma[:, None].float()) ** 2)
    return pdf / pdf.sum(1, keepdim=True)


def gaussian_blur(x: torch.Tensor, sigma: torch.Tensor | float, kernel_size: int = 5) -> torch.Tensor:
    """Blur each image with its own sigma (scalar or (B,)), reflect padding as in torchvision."""
    b, c, h, w = x.shape
    sig = torch.as_tensor(sigma, dtype=torch.float32, device=x.device).reshape(-1)
    if sig.numel() == 1:
        sig = sig.expand(b)
    k1 = gaussian_kernel1d(sig, kernel_size).to(x.dtype)              # (B, k)
    pad = kernel_size // 2
    xp = F.pad(x.reshape(1, b * c, h, w), (pad, pad, pad, pad), mode="reflect")
    kh = k1.repeat_interleave(c, 0)[:, None, None, :]                 # (B*C, 1, 1, k)
    kv = k1.repeat_interleave(c, 0)[:, None, :, None]                 # (B*C, 1, k, 1)
    out = F.conv2d(F.conv2d(xp, kh, groups=b * c), kv, groups=b * c)
    return out.reshape(b, c, h, w)


class GaussianBlur(nn.Module):
    """Gaussian smoothing with a random (range) or fixed sigma; seeded, its own generator."""

    def __init__(self, kernel_size: int = 5, sigma: float | tuple[float, float] = (0.1, 5.0),
                 per: Literal["batch", "image"] = "batch", seed: int = 0):
        super().__init__()
        self.kernel_size, self.sigma, self.per = kernel_size, sigma, per
        self.generator = torch.Generator().manual_seed(seed)
        self.calls = 0

    def reseed(self, seed: int) -> "GaussianBlur":
        self.generator.manual_seed(seed)
        return self

    def draw(self, n: int) -> torch.Tensor:
        if isinstance(self.sigma, (int, float)):
            return torch.full((n,), float(self.sigma))
        lo, hi = self.sigma
        m = n if self.per == "image" else 1
        s = torch.empty(m).uniform_(lo, hi, generator=self.generator)
        return s.expand(n) if m == 1 else s

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return gaussian_blur(x, self.draw(x.shape[0]).to(x.device), self.kernel_size).clamp(0, 1)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, sigma={self.sigma}, per={self.per}"


class MedianFilter(nn.Module):
    """k x k median smoothing with reflect padding."""

    def __init__(self, kernel_size: int = 3):
        super().__init__()
        self.kernel_size = kernel_size
        self.calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        k, p = self.kernel_size, self.kernel_size // 2
        b, c, h, w = x.shape
        xp = F.pad(x, (p, p, p, p), mode="reflect")
        patches = F.unfold(xp, k).reshape(b, c, k * k, h * w)
        return patches.median(dim=2).values.reshape(b, c, h, w)


class Defended(nn.Module):
    """``model(preprocess(x))`` as one classifier; ``eot`` draws averaged in probability space."""

    def __init__(self, model: nn.Module, preprocess: nn.Module, eot: int = 1):
        super().__init__()
        self.model, self.preprocess, self.eot = model, preprocess, max(1, int(eot))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.eot == 1:
            return self.model(self.preprocess(x))
        probs = torch.stack([torch.softmax(self.model(self.preprocess(x)).float(), 1) for _ in range(self.eot)])
        return probs.mean(0).clamp_min(1e-12).log()


def make_smoothing(kind: Literal["gaussian", "median"] = "gaussian", sigma: float | tuple[float, float] = (0.1, 5.0),
                   kernel_size: int = 5, per: Literal["batch", "image"] = "batch", seed: int = 0) -> nn.Module:
    if kind == "gaussian":
        return GaussianBlur(kernel_size, sigma, per, seed)
    if kind == "median":
        return MedianFilter(kernel_size)
    raise ValueError(f"unknown smoothing {kind!r}; choose 'gaussian' or 'median'")
