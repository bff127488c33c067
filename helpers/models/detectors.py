"""CIFAR-style ResNet-18 / ResNet-50 detectors (bonafide vs spoof), as in the thesis.

Built from the ResNet and its BasicBlock / Bottleneck blocks as torchvision builds them (He et al., CVPR
2016; :mod:`helpers.models.resnet`: the same weights for a seed, without importing torchvision) with the CIFAR stem
the thesis used: a 3x3 stride-1 convolution and no max-pool, then the four residual stages, average pooling
(global, which equals the thesis's 4x4 pooling at 32x32 and lets other sizes work), and a 2-way linear head. Input
normalisation is the model's first layer, so attacks and defenses work on images in [0, 1] as torchattacks expects.

The high-resolution front ends (``lfcc`` 60 x 301, ``loglin`` 257 x 301, :mod:`helpers.data.features`) get the
ImageNet stem of the same ResNet (He et al. 2016: a 7x7 stride-2 convolution and a 3x3 stride-2 max-pool, 4x
downsampling): at 60 x 301 the first residual stage then sees 15 x 76 positions, about as many as the CIFAR stem
gives a 32x32 image, so a LFCC detector costs about what a thesis detector costs per image.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator, Literal

import torch
from torch import nn

from helpers.models.resnet import BasicBlock, Bottleneck, ResNet

Arch = Literal["resnet18", "resnet50"]
ARCHS: tuple[str, ...] = ("resnet18", "resnet50")
Stem = Literal["cifar", "imagenet"]
STEMS: tuple[str, ...] = ("cifar", "imagenet")
# Bumped whenever the architecture or its initialisation changes; part of every checkpoint's
# identity, so a changed model is retrained instead of loading weights made for another one.
MODEL_VERSION = 2
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class Normalize(nn.Module):
    """(x - mean) / std per channel, as a layer (buffers move with the model)."""

    def __init__(self, mean: tuple[float, ...], std: tuple[float, ...]):
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std).view(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


class Detector(nn.Module):
    """``Normalize`` followed by a CIFAR-style ResNet; outputs 2 logits (0 = bonafide, 1 = spoof)."""

    def __init__(self, arch: Arch = "resnet18", in_channels: int = 3, num_classes: int = 2, stem: Stem = "cifar"):
        super().__init__()
        if arch not in ARCHS:
            raise ValueError(f"unknown architecture {arch!r}; choose from {ARCHS}")
        if stem not in STEMS:
            raise ValueError(f"unknown stem {stem!r}; choose from {STEMS}")
        block, layers = (BasicBlock, [2, 2, 2, 2]) if arch == "resnet18" else (Bottleneck, [3, 4, 6, 3])
        # ResNet-50 starts each residual branch at zero (torchvision's zero_init_residual, Goyal et
        # al. 2017): with the thesis's SGD lr 1e-3, batch 16, it otherwise diverges early on small
        # data (measured on the demo corpus: epoch-1 train loss 1.15 vs 0.72, test accuracy after
        # 3 epochs 59% vs 62%, after 6 epochs 72% with it). ResNet-18 trains well without it.
        net = ResNet(block, layers, num_classes=num_classes, zero_init_residual=arch == "resnet50")
        if stem == "cifar":
            net.conv1 = nn.Conv2d(in_channels, 64, kernel_size=3, stride=1, padding=1, bias=False)
            net.maxpool = nn.Identity()
        else:   # torchvision's own ImageNet stem (7x7 stride 2, max-pool stride 2) for in_channels
            net.conv1 = nn.Conv2d(in_channels, 64, kernel_size=7, stride=2, padding=3, bias=False)
            nn.init.kaiming_normal_(net.conv1.weight, mode="fan_out", nonlinearity="relu")
        # torchvision's ResNet already ends in AdaptiveAvgPool2d(1): 4x4 pooling at 32x32 inputs.
        if in_channels == 3:
            norm = Normalize(IMAGENET_MEAN, IMAGENET_STD)
        else:
            norm = Normalize((0.5,) * in_channels, (0.25,) * in_channels)
        self.arch, self.in_channels, self.stem = arch, in_channels, stem
        self.normalize = norm
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(self.normalize(x))


def build_model(arch: Arch, in_channels: int = 3, seed: int | None = None, stem: Stem = "cifar") -> Detector:
    """A freshly initialised detector (seeded initialisation when ``seed`` is given); ``stem`` as the feature
    asks (``FeatureConfig.stem``)."""
    if seed is not None:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return Detector(arch, in_channels, stem=stem)
    return Detector(arch, in_channels, stem=stem)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@contextmanager
def eval_mode(module: nn.Module) -> Iterator[nn.Module]:
    """Every submodule in eval mode inside the block, each put back into its *own* mode afterwards.

    Restoring only the top module's flag is wrong for wrappers: a freshly built wrapper (an audio pipeline,
    a blur-defended model) is in training mode by default, and ``wrapper.train()`` on the way out would
    switch the detector inside it into training mode, whose BatchNorm then uses batch statistics and
    overwrites its running averages on the next plain forward pass.
    """
    modes = [(m, m.training) for m in module.modules()]
    module.eval()
    try:
        yield module
    finally:
        for m, training in modes:
            m.training = training


@torch.inference_mode()
def predict(model: nn.Module, x: torch.Tensor, batch_size: int = 64, device: torch.device | str | None = None,
            preprocess: nn.Module | None = None) -> torch.Tensor:
    """Logits for ``x`` in eval mode, batched; ``preprocess`` (e.g. a blur) is applied per batch."""
    device = device or next(model.parameters()).device
    out = []
    with eval_mode(model):
        for i in range(0, len(x), batch_size):
            xb = x[i:i + batch_size].to(device)
            if preprocess is not None:
                xb = preprocess(xb)
            out.append(model(xb.contiguous(memory_format=torch.channels_last)).float().cpu())
    return torch.cat(out) if out else torch.empty(0, 2)
