#!/usr/bin/env python
"""Batched Pixle vs torchattacks.Pixle: same trained model, same images, one run.

Prints images/second, success rate, mean L0 and queries for both, the attack efficiency
((model evaluations x batched per-image forward time) / attack wall time), and, last,
``speedup: N.NNx (batched vs torchattacks, <device>, <model>)``.

    python benchmarks/pixle_speed.py                       # CPU, ResNet-18, 64 images, thesis budget
    python benchmarks/pixle_speed.py --arch resnet50 --n 32 --device cuda
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))  # benchmarks/ is scripts, not a package
from common import attack_arguments, correct_test_images, forward_ms_per_image, timed  # noqa: E402

from helpers.attacks.pixle import Pixle, default_target_batch  # noqa: E402
from helpers.evaluation.metrics import l0_pixels  # noqa: E402
from helpers.models.detectors import predict  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    attack_arguments(ap, n=64, restarts=10, iterations=50)
    ap.add_argument("--target-batch", type=int, default=None, help="candidates per forward (default: 64 CPU, 4096 GPU)")
    ap.add_argument("--amp", action="store_true", help="bfloat16 autocast on GPU")
    ap.add_argument("--skip-reference", action="store_true", help="time only the batched attack")
    args = ap.parse_args()
    dev = args.device
    model, x, y, *_, where = correct_test_images(args.arch, args.n, dev)
    n = len(y)
    tb = args.target_batch or default_target_batch(dev)
    print(f"model: {args.arch} ({where}); device: {dev}; {n} correctly classified test images; "
          f"Pixle x_dimensions=(0.1, 0.2), restarts={args.restarts}, max_iterations={args.iterations}")
    fwd_batched = forward_ms_per_image(model, tuple(x.shape[1:]), tb, dev)
    fwd_one = forward_ms_per_image(model, tuple(x.shape[1:]), 1, dev, reps=20)
    print(f"forward: {fwd_one:.2f} ms/image at batch 1, {fwd_batched:.3f} ms/image batched")

    rows = []
    ours = Pixle(model, x_dimensions=(0.1, 0.2), restarts=args.restarts, max_iterations=args.iterations, seed=0,
                 target_batch=tb, amp=args.amp)
    res, t_ours = timed(ours, x, y, sync=True)
    adv_pred = predict(model, res.adv).argmax(1).to(dev)
    evals = int(res.forwards.sum())
    rows.append(("batched (helpers.attacks.pixle)", n / t_ours, float((adv_pred != y).float().mean()),
                 float(res.l0.float().mean()), float(res.queries.float().mean()), evals * fwd_batched / 1000 / t_ours, t_ours))
    if not args.skip_reference:
        import torchattacks

        np.random.seed(0)
        ref = torchattacks.Pixle(model, x_dimensions=(0.1, 0.2), restarts=args.restarts, max_iterations=args.iterations)
        adv_ref, t_ref = timed(ref, x, y, sync=True)
        ref_pred = predict(model, adv_ref).argmax(1).to(dev)
        rows.append(("torchattacks.Pixle 3.5.1", n / t_ref, float((ref_pred != y).float().mean()),
                     float(l0_pixels(x, adv_ref).float().mean()), float("nan"), float("nan"), t_ref))
    print(f"\n{'attack':<28}{'images/s':>10}{'success':>9}{'mean L0':>9}{'queries':>9}{'efficiency':>11}{'wall s':>9}")
    for name, ips, sr, l0, q, eff, t in rows:
        print(f"{name:<28}{ips:>10.2f}{sr:>9.2%}{l0:>9.1f}{q:>9.1f}{eff:>11.2f}{t:>9.1f}")
    share = ours.stats["forward_s"] / max(ours.stats["total_s"], 1e-9)
    print(f"\nbatched: {share:.0%} of the attack's time in model forward passes, "
          f"{1 - share:.0%} in candidate construction and bookkeeping")
    print(f"batched: {evals} model evaluations ({int(res.queries.sum())} needed by the algorithm); "
          f"efficiency = evaluations x {fwd_batched:.3f} ms / wall time")
    if not args.skip_reference:
        print(f"success-rate difference: {abs(rows[0][2] - rows[1][2]):.2%} over {n} images")
        print(f"speedup: {rows[1][6] / rows[0][6]:.2f}x (batched vs torchattacks, {dev}, {args.arch})")


if __name__ == "__main__":
    main()
