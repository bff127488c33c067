"""Shared set-up for the benchmarks: a trained detector and test images, reused from a profile run."""

from __future__ import annotations

import argparse
import time

import torch

from helpers.experiments.pipeline import DataParams, baseline, prepare_data
from helpers.experiments.stages import BaselinesStage, DataStage, load_detector, load_prepared, read_stage
from helpers.models.training import TrainConfig


def attack_arguments(ap: argparse.ArgumentParser, n: int, restarts: int, iterations: int) -> None:
    """The options every attack benchmark takes."""
    ap.add_argument("--arch", default="resnet18")
    ap.add_argument("--n", type=int, default=n, help="correctly classified test images to attack")
    ap.add_argument("--restarts", type=int, default=restarts)
    ap.add_argument("--iterations", type=int, default=iterations)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")


def correct_test_images(arch: str, n: int, device: str):
    """(model, x, y, logits_all, x_all, y_all, where): a trained detector (eval, channels-last, on
    ``device``) and up to ``n`` test images it classifies correctly, on ``device``."""
    from helpers.models.detectors import predict

    model, x_all, y_all, where = trained_detector(arch, device=device)
    model = model.to(device).eval().to(memory_format=torch.channels_last)
    logits = predict(model, x_all)
    ok = (logits.argmax(1) == y_all).nonzero().flatten()[:n]
    return model, x_all[ok].to(device), y_all[ok].to(device), logits, x_all, y_all, where


def trained_detector(arch: str = "resnet18", profile: str = "demo", device: str = "cpu"):
    """(model, x_test, y_test, where): the profile's trained baseline if it exists, else a quick one."""
    if read_stage(profile, BaselinesStage, required=False) and read_stage(profile, DataStage, required=False):
        prep = load_prepared(profile)
        try:
            model = load_detector(profile, arch, "baseline", prep, device)
            x, y = prep.xy("test")
            return model, x, y, f"{profile} profile baseline"
        except Exception:  # that profile did not train this architecture
            pass
    prep = prepare_data(DataParams(max_sources=120, n_trials=400, split=(0.6, 0.1, 0.3)), "bench")
    res = baseline(arch, prep, TrainConfig(epochs=6, batch_size=16, lr=1e-3, momentum=0.9, seed=2022), "bench", device=device)
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


def mean_null(xa: torch.Tensor, mean: torch.Tensor) -> torch.Tensor:
    """07's ablated images (``ablation.apply_mask``: image channels, then the keep mask) with every ablated pixel at
    ``mean`` (a detector's input-normalisation mean, so 0 after it) instead of 07's 0: the null encoding
    ``ablation_sensitivity.py`` and ``fit_epochs.py --null mean`` compare with 07's."""
    out = xa.clone()
    out[:, :-1] += mean.to(xa).reshape(1, -1, 1, 1) * (1 - xa[:, -1:])   # the mask channel is exactly 0 or 1
    return out
