#!/usr/bin/env python
"""Throughput table: detector forward passes, feature extraction, adversarial training, profiles.

    python benchmarks/throughput.py [--device cuda]

Forward passes at batch 1 and at the attack's batch size give the ceiling an attack can reach
(queries x batched forward cost); profile times come from each outputs/<profile>/run.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import forward_ms_per_image  # noqa: E402

from helpers.attacks.pixle import default_target_batch  # noqa: E402
from helpers.data.features import FeatureConfig, extract  # noqa: E402
from helpers.models.detectors import build_model  # noqa: E402
from helpers.paths import output_root  # noqa: E402
from helpers.models.training import TrainConfig, pixle_generator, train  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--attack-batch", type=int, default=None)
    args = ap.parse_args()
    dev = args.device
    ab = args.attack_batch or default_target_batch(dev)
    print(f"device: {dev}; torch {torch.__version__}, {torch.get_num_threads()} threads\n")
    sweep = (1, 16, 64, 256, 1024, 4096, 8192) if dev.startswith("cuda") else (1, 16, 32, 64, 128, 256)
    print("forward pass, ms per image, by batch size (the attack's default target batch is the best one):")
    print(f"{'detector':<10}" + "".join(f"{f'bs {b}':>10}" for b in sweep) + f"{'bs1/bs' + str(ab):>12}")
    for arch in ("resnet18", "resnet50"):
        m = build_model(arch, 3, seed=0).to(dev).eval().to(memory_format=torch.channels_last)
        ms = {b: forward_ms_per_image(m, (3, 32, 32), b, dev, reps=20 if b == 1 else 5) for b in sweep}
        one, many = ms[1], ms.get(ab) or forward_ms_per_image(m, (3, 32, 32), ab, dev)
        print(f"{arch:<10}" + "".join(f"{ms[b]:>10.3f}" for b in sweep) + f"{one / many:>12.2f}")

    import numpy as np
    rng = np.random.default_rng(0)
    clips = [rng.standard_normal(48000).astype(np.float32) * 0.1 for _ in range(64)]
    for name in ("thesis_rgb32", "logspec"):
        cfg = FeatureConfig(name=name, size=32)
        t0 = time.perf_counter()
        for c in clips:
            extract(c, cfg, dev)
        print(f"\nfeatures {name}: {len(clips) / (time.perf_counter() - t0):.1f} clips/s (3 s clips, {dev})", end="")
    print()

    x = torch.rand(64, 3, 32, 32)
    y = torch.arange(64) % 2
    for arch in ("resnet18", "resnet50"):
        for restarts, iters in ((1, 10), (10, 50)):
            if not dev.startswith("cuda") and (restarts, iters) == (10, 50):
                continue
            gen = pixle_generator({"restarts": restarts, "max_iterations": iters, "x_dimensions": (0.1, 0.2),
                                   "y_dimensions": (2, 10), "target_batch": ab}, seed=0)
            res = train(arch, 3, (x, y), (x[:16], y[:16]), TrainConfig(epochs=1, batch_size=16), None, adv=gen,
                        device=dev, progress=False)
            print(f"adversarial training {arch}, Pixle {restarts}x{iters}: {res.seconds / len(x) * 1000:.0f} s per 1000 images per epoch")

    print("\nprofiles (from run.json):")
    for manifest in sorted(output_root().glob("*/run.json")):
        data = json.loads(manifest.read_text())
        nbs = data.get("notebooks", {})
        per = ", ".join(f"{k[:2]} {v['seconds']:.0f}s" for k, v in nbs.items())
        print(f"  {data['profile']:<8} {data.get('status')}: {sum(v['seconds'] for v in nbs.values()):.0f} s total "
              f"on {data.get('device')}  ({per})")


if __name__ == "__main__":
    main()
