#!/usr/bin/env python
"""How much bfloat16 autocast changes the detector's scores and Pixle's results.

Runs the same trained detector on the same images in float32 and under bfloat16 autocast:
the scores (max |P(bonafide) difference|, decisions that flip) and the same seeded Pixle
attack (per-image success agreement, success-rate and query differences). On a GPU this is the
tolerance behind ``PIXLE_AMP``; on a CPU it measures the same numerics (bfloat16 inputs and
weights, float32 accumulation) but without bfloat16 instructions it runs slower, not faster.

    python benchmarks/amp_tolerance.py                      # CPU, ResNet-18, 32 images, Pixle 4x25
    python benchmarks/amp_tolerance.py --device cuda --arch resnet50 --n 256 --restarts 10 --iterations 50
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))  # benchmarks/ is scripts, not a package
from common import attack_arguments, correct_test_images, timed  # noqa: E402

from helpers.attacks.pixle import Pixle  # noqa: E402
from helpers.data.corpus import CLASSES  # noqa: E402
from helpers.models.detectors import predict  # noqa: E402


BONAFIDE = CLASSES.index("bonafide")


def main() -> None:
    ap = argparse.ArgumentParser()
    attack_arguments(ap, n=32, restarts=4, iterations=25)
    args = ap.parse_args()
    dev = args.device
    model, x, y, fp32, x_all, y_all, where = correct_test_images(args.arch, args.n, dev)

    with torch.inference_mode():
        with torch.autocast(torch.device(dev).type, dtype=torch.bfloat16):
            bf16 = predict(model, x_all).float()
    ds = (torch.softmax(fp32, 1)[:, BONAFIDE] - torch.softmax(bf16, 1)[:, BONAFIDE]).abs()
    flips = int((fp32.argmax(1) != bf16.argmax(1)).sum())
    print(f"model: {args.arch} ({where}); device: {dev}; {len(y_all)} test images")
    print(f"scores: max |dP(bonafide)| {float(ds.max()):.4f}, mean {float(ds.mean()):.5f}; "
          f"decisions that flip: {flips}/{len(y_all)}")

    runs = {}
    for amp in (False, True):
        atk = Pixle(model, x_dimensions=(0.1, 0.2), restarts=args.restarts, max_iterations=args.iterations,
                    seed=0, amp=amp)
        runs[amp] = timed(atk, x, y, sync=True)
    (a, ta), (b, tb) = runs[False], runs[True]
    agree = float((a.success == b.success).float().mean())
    same_img = float((a.adv == b.adv).flatten(1).all(1).float().mean())
    print(f"\nPixle {args.restarts}x{args.iterations} on {len(y)} correctly classified images:")
    print(f"{'':<10}{'success':>9}{'queries':>9}{'wall s':>9}")
    for name, r, t in (("float32", a, ta), ("bfloat16", b, tb)):
        print(f"{name:<10}{float(r.success.float().mean()):>9.2%}{float(r.queries.float().mean()):>9.1f}{t:>9.1f}")
    print(f"\nper-image success agreement: {agree:.2%}; identical adversarial images: {same_img:.2%}")
    print(f"success-rate difference: {abs(float(a.success.float().mean() - b.success.float().mean())):.2%}; "
          f"bf16/fp32 time: {tb / ta:.2f}")


if __name__ == "__main__":
    main()
