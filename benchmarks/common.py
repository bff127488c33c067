"""Shared set-up for the benchmarks: a trained detector and test images, reused from a profile run."""

from __future__ import annotations

import time
from pathlib import Path

import torch

from helpers.pipeline import DataParams, baseline, load_metrics, load_prepared, prepare_data, train_config


def trained_detector(arch: str = "resnet18", profile: str = "demo", device: str = "cpu"):
    """(model, x_test, y_test, where): the profile's trained baseline if it exists, else a quick one."""
    if load_metrics(profile, "01_baselines") and load_metrics(profile, "00_data"):
        from helpers.pipeline import load_detector

        prep = load_prepared(profile)
        try:
            model = load_detector(profile, arch, "baseline", prep, device)
            x, y = prep.xy("test")
            return model, x, y, f"{profile} profile baseline"
        except Exception:  # that profile did not train this architecture
            pass
    prep = prepare_data(DataParams(max_sources=120, n_trials=400, split=(0.6, 0.1, 0.3)), "bench")
    res = baseline(arch, prep, train_config(6, 16, 1e-3, 0.9, 2022), "bench", device=device)
    x, y = prep.xy("test")
    return res.model.to(device).eval(), x, y, "benchmark baseline (6 epochs, 400 clips)"


def timed(fn, *args, sync: bool = False, **kw):
    if sync and torch.cuda.is_available():
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    out = fn(*args, **kw)
    if sync and torch.cuda.is_available():
        torch.cuda.synchronize()
    return out, time.perf_counter() - t0


def forward_ms_per_image(model, shape, batch: int, device: str, reps: int = 3) -> float:
    """Per-image forward time (ms) at a batch size, inference mode, channels-last."""
    x = torch.rand(batch, *shape, device=device).contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        model(x)
        _, t = timed(lambda: [model(x) for _ in range(reps)], sync=True)
    return 1000 * t / (reps * batch)


ROOT = Path(__file__).resolve().parent.parent
