#!/usr/bin/env python
"""Cost model on paper: hours for the full ASVspoof 2021 DF eval at the thesis's settings, per stage, on G GPUs.

    python benchmarks/cost_model.py                     # CPU costs measured now, GPU costs assumed (printed)
    python benchmarks/cost_model.py --gpu-fwd-r18 120000 --gpu-fwd-r50 45000   # measured GPU throughput instead

Work (the thesis's protocol on all 611,829 trials: 80/20 clip split, both detectors, six conditions):

- features: every trial once;
- baselines: 10 epochs over the training split, per detector (forward + backward per image);
- Pixle evaluation: every test clip attacked four times per detector (baseline, smoothing adaptive, AT,
  combined adaptive; the non-adaptive rows reuse the bare attacks), ``q_eval`` queries per clip;
- adversarial training from scratch: 10 epochs; per training image ``q_train`` Pixle queries (forwards)
  plus two training passes (clean and adversarial).

Per-image costs: measured on this machine's CPU (forward at the attack's batch, a training step at batch
16, feature extraction of a 3 s clip); on a GPU they are *assumptions* unless given on the command line
(``benchmarks/gpu_suite.sh`` measures them). Mean queries: from this project's measured runs (see the
README), or the worst case (every candidate: 10 x 50 = 500). Scaling over G GPUs is assumed linear (the
sharded stages exchange only files and one all-reduce per training step); the printed efficiency factor
discounts it.
"""

from __future__ import annotations

import argparse
import time

import torch

N_TRIALS = 611_829
TRAIN_SHARE = 0.8
EPOCHS = 10
BUDGET = 10 * 50 + 1       # the thesis's Pixle: 10 restarts x 50 iterations, plus the clean query


def measure_cpu(reps: int = 3) -> dict[str, float]:
    """Seconds per image on this CPU: forward (batch 64), training step (batch 16), features (3 s clip)."""
    import numpy as np

    from helpers.data.features import FeatureConfig, extract
    from helpers.models.detectors import build_model

    out = {}
    for arch in ("resnet18", "resnet50"):
        model = build_model(arch, 3, seed=0).eval().to(memory_format=torch.channels_last)
        x = torch.rand(64, 3, 32, 32).contiguous(memory_format=torch.channels_last)
        with torch.inference_mode():
            model(x)
            t0 = time.perf_counter()
            for _ in range(reps):
                model(x)
        out[f"fwd_{arch}"] = (time.perf_counter() - t0) / (reps * 64)
        model.train()
        opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
        xb, yb = torch.rand(16, 3, 32, 32), torch.randint(0, 2, (16,))
        t0 = time.perf_counter()
        for _ in range(reps):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(xb), yb).backward()
            opt.step()
        out[f"train_{arch}"] = (time.perf_counter() - t0) / (reps * 16)
    wav = np.random.default_rng(0).standard_normal(48000).astype(np.float32) * 0.1
    t0 = time.perf_counter()
    for _ in range(10):
        extract(wav, FeatureConfig())
    out["features"] = (time.perf_counter() - t0) / 10
    return out


def stage_hours(cost: dict[str, float], q_eval: float, q_train: float, devices: int, efficiency: float) -> dict:
    """Hours per stage on ``devices`` devices of per-image costs ``cost`` (seconds)."""
    n_train, n_test = int(N_TRIALS * TRAIN_SHARE), N_TRIALS - int(N_TRIALS * TRAIN_SHARE)
    scale = 1 / (devices * efficiency * 3600)
    hours = {"features": N_TRIALS * cost["features"] * scale}
    for arch in ("resnet18", "resnet50"):
        hours[f"baseline training {arch}"] = EPOCHS * n_train * cost[f"train_{arch}"] * scale
        hours[f"Pixle evaluation {arch} (4 attacked conditions)"] = 4 * n_test * q_eval * cost[f"fwd_{arch}"] * scale
        hours[f"adversarial training {arch}"] = EPOCHS * n_train * (q_train * cost[f"fwd_{arch}"]
                                                                    + 2 * cost[f"train_{arch}"]) * scale
    hours["total"] = sum(hours.values())
    return hours


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--q-eval", type=float, default=186.4, help="mean Pixle queries per test clip (measured: "
                    "benchmarks/pixle_speed.py at 10x50 on the demo ResNet-18)")
    ap.add_argument("--q-train", type=float, default=BUDGET, help="mean queries per training image in AT (default: "
                    "the worst case, every candidate)")
    ap.add_argument("--gpu-fwd-r18", type=float, default=150_000, help="H100 ResNet-18 forward images/s (ASSUMED)")
    ap.add_argument("--gpu-fwd-r50", type=float, default=60_000, help="H100 ResNet-50 forward images/s (ASSUMED)")
    ap.add_argument("--gpu-train-r18", type=float, default=40_000, help="H100 ResNet-18 training images/s (ASSUMED)")
    ap.add_argument("--gpu-train-r50", type=float, default=15_000, help="H100 ResNet-50 training images/s (ASSUMED)")
    ap.add_argument("--gpu-features", type=float, default=2_000, help="features clips/s per GPU node share (ASSUMED)")
    ap.add_argument("--efficiency", type=float, default=0.9, help="parallel efficiency over several devices")
    ap.add_argument("--no-cpu", action="store_true", help="skip the CPU measurement")
    args = ap.parse_args()
    gpu = {"fwd_resnet18": 1 / args.gpu_fwd_r18, "fwd_resnet50": 1 / args.gpu_fwd_r50,
           "train_resnet18": 1 / args.gpu_train_r18, "train_resnet50": 1 / args.gpu_train_r50,
           "features": 1 / args.gpu_features}
    print(f"full DF eval: {N_TRIALS} trials, {int(N_TRIALS * TRAIN_SHARE)} train / "
          f"{N_TRIALS - int(N_TRIALS * TRAIN_SHARE)} test, {EPOCHS} epochs, Pixle 10x50; mean queries: evaluation "
          f"{args.q_eval:g}, adversarial training {args.q_train:g}")
    print("AT ResNet-18 evaluations alone: "
          f"{EPOCHS * int(N_TRIALS * TRAIN_SHARE) * args.q_train:.2e}")
    if not args.no_cpu:
        cpu = measure_cpu()
        print("\nmeasured on this CPU (ms per image): " + ", ".join(f"{k} {1000 * v:.2f}" for k, v in cpu.items()))
        h = stage_hours(cpu, args.q_eval, args.q_train, 1, 1.0)
        print(f"this CPU, one machine: total {h['total']:.0f} hours ({h['total'] / 24 / 365:.1f} years)")
    print("\nGPU per-image costs ASSUMED (replace with benchmarks/gpu_suite.sh's measurements): "
          + ", ".join(f"{k} {1e6 * v:.1f} us" for k, v in gpu.items()))
    rows = {g: stage_hours(gpu, args.q_eval, args.q_train, g, 1.0 if g == 1 else args.efficiency) for g in (1, 8, 64)}
    print(f"\n| stage | 1 GPU (h) | 8 GPUs (h) | 64 GPUs (h) |\n|---|---|---|---|")
    for stage in rows[1]:
        print(f"| {stage} | {rows[1][stage]:.2f} | {rows[8][stage]:.2f} | {rows[64][stage]:.3f} |")
    verdict = "meets" if rows[8]["total"] <= 4 else "misses"
    print(f"\ndesign target (<= 4 h on 8 H100s): the projection {verdict} it ({rows[8]['total']:.2f} h)")


if __name__ == "__main__":
    main()
