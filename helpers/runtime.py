"""Seeding, device choice and the version banner every notebook prints after its parameters."""

from __future__ import annotations

import os
import platform
import random
from importlib.metadata import PackageNotFoundError, version

import numpy as np
import torch

KEY_PACKAGES = ("torch", "torchvision", "torchaudio", "torchattacks", "numpy", "librosa",
                "soundfile", "pyworld", "scikit-learn", "pandas", "seaborn", "papermill")


def get_device(prefer: str | None = None) -> torch.device:
    """The one place that chooses the device: ``prefer`` (e.g. ``"cpu"``), else CUDA if present."""
    if prefer:
        return torch.device(prefer)
    env = os.environ.get("DEVICE")
    if env:
        return torch.device(env)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (all devices)."""
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)


def installed_version(name: str) -> str:
    """An installed distribution's version, or "not installed"."""
    try:
        return version(name)
    except PackageNotFoundError:
        return "not installed"


def package_versions(names: tuple[str, ...] = KEY_PACKAGES) -> dict[str, str]:
    return {"python": platform.python_version(), **{n: installed_version(n) for n in names}}


def device_description(device: torch.device | None = None) -> str:
    device = device or get_device()
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    return f"cpu ({os.cpu_count()} cores, {torch.get_num_threads()} torch threads)"


def setup(seed: int, device: str | None = None, quiet: bool = False, params: dict | None = None) -> torch.device:
    """Check the notebook's parameters, seed everything, pick the device, print versions; returns the device.

    ``params`` is the notebook's namespace (``globals()``): its upper-case names are checked by
    :func:`helpers.config.params.check`, so a misspelt choice stops the notebook before any work.
    """
    if params is not None:
        from helpers.config.params import check

        check({k: v for k, v in params.items() if k.isupper()})
    seed_everything(seed)
    dev = get_device(device)
    if not quiet:
        print(version_banner(seed, dev))
    return dev


def version_banner(seed: int | None = None, device: torch.device | None = None) -> str:
    """Seed, device and the key package versions, as every notebook prints them."""
    head = (f"seed: {seed} | " if seed is not None else "") + f"device: {device_description(device)}"
    return head + "\n" + " | ".join(f"{k} {v}" for k, v in package_versions().items())
