"""Shared fixtures: generated audio, a toy classifier Pixle can fool, paths to ../shared/data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from torch import nn

from helpers.paths import ROOT
from tests.toys import RegionModel, random_images, region_images  # noqa: F401 (re-exported for the tests)

SHARED = ROOT.parent / "shared" / "data"


def pytest_collection_modifyitems(items):
    """End-to-end runs (marked ``slow``) first: under ``make test``'s ``-n 2 --dist worksteal`` one worker starts
    them at once and the other takes the unit tests around them (without xdist only the order changes)."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


@pytest.fixture(autouse=True)
def _isolate(tmp_path, monkeypatch):
    """Every test writes under its own temporary DATA_DIR / OUTPUT_DIR, never into the repo."""
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("OUTPUT_DIR", str(tmp_path / "outputs"))
    torch.manual_seed(0)


@pytest.fixture
def shared_data() -> Path:
    if not SHARED.exists():
        pytest.skip(f"shared fixtures not found at {SHARED}")
    return SHARED


def speechlike(seconds: float = 2.0, sr: int = 16000, f0: float = 140.0, seed: int = 0) -> np.ndarray:
    """A voiced-speech stand-in: harmonics with a vibrato, amplitude-modulated syllables, some noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    f = f0 * (1 + 0.05 * np.sin(2 * np.pi * 3 * t))
    phase = 2 * np.pi * np.cumsum(f) / sr
    x = sum(np.sin(k * phase) / k for k in range(1, 12))
    env = 0.5 * (1 + np.sin(2 * np.pi * 4 * t)) ** 2
    return (0.1 * x * env + 0.003 * rng.standard_normal(len(t))).astype(np.float32)


@pytest.fixture
def speech_dir(tmp_path) -> Path:
    d = tmp_path / "speech"
    d.mkdir()
    for i in range(4):
        sf.write(d / f"utt{i}.wav", speechlike(2.5 + i * 0.8, 8000, 120 + 20 * i, seed=i), 8000, subtype="PCM_16")
    return d


@pytest.fixture
def region_model() -> RegionModel:
    return RegionModel()


@pytest.fixture
def one_thread():
    """Tiny models: intra-op threads only add contention on a shared 2-core runner (10x slower measured)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


class ChangeDetector(nn.Module):
    """Class 0 only for the untouched reference image: any change flips it (tests early exit)."""

    def __init__(self, ref: torch.Tensor):
        super().__init__()
        self.ref = ref

    def forward(self, x):
        z = (x.flatten(1) != self.ref.flatten(1)).any(1).float() * 10
        return torch.stack([-z, z], 1)
