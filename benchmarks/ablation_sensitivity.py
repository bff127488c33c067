#!/usr/bin/env python
"""How much of 01's clean detectors survives random ablation, before 07 fine-tunes them? EER per kept-pixel count k.

    python benchmarks/ablation_sensitivity.py                  # after `python run_all.py --profile demo --only 00,01`
    python benchmarks/ablation_sensitivity.py --arch resnet50 --split validation --k 1024 700 250 30

07 starts its base detectors from 01's baselines (``certified.ablation_init``: the weights copied, the mask channel's
first-layer weights zero), so a base detector's head start is what the clean detector still tells apart on ablated
images. This prints, for each model and k, the EER and accuracy of that starting point on ``--n`` clips of a split
(drawn with a fixed seed), every clip with its own random k pixels (``ablation.keep_masks``, seed 5), in two states:

- ``eval``: the BatchNorm running statistics of clean images (how 07's smoothed detector would use the model);
- ``train``: the clips normalised with their own statistics (about what the first fine-tuning steps see; those
  batches hold 16 clips, so their statistics are noisier),

and for two null encodings: ``zero``, 07's (an ablated pixel is 0 in every channel before the detector's input
normalisation, a dark colour after it), and ``mean``, the normalisation's mean colour (0 after it, as the paper's
un-normalised inputs feed 0 to the first convolution) -- an alternative measured here, not used by 07.
Issue 24's measurement of why ResNet-50's base detectors stay at chance (README, *Certified*).
"""

from __future__ import annotations

import argparse
import copy
import sys
from pathlib import Path

import torch

from helpers.defenses import ablation as A
from helpers.evaluation.metrics import bonafide_score, eer
from helpers.experiments import certified, stages
from helpers.experiments.pipeline import training_val

sys.path.insert(0, str(Path(__file__).resolve().parent))  # benchmarks/ is scripts, not a package
from common import mean_null  # noqa: E402


def ablated(x: torch.Tensor, keep: torch.Tensor, null: str, mean: torch.Tensor) -> torch.Tensor:
    """07's input (``null="zero"``: :func:`ablation.apply_mask`) or the same with ablated pixels at ``mean``."""
    out = A.apply_mask(x, keep)
    return mean_null(out, mean) if null == "mean" else out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", default="demo")
    ap.add_argument("--arch", nargs="+", default=None, help="models (default: every model 01 trained)")
    ap.add_argument("--split", default="train", choices=("train", "validation", "test"))
    ap.add_argument("--n", type=int, default=192, help="clips drawn from the split (seed 0)")
    ap.add_argument("--k", type=int, nargs="+", default=[1024, 700, 424, 250, 100, 30])
    args = ap.parse_args()
    if args.n < 1 or min(args.k) < 1:
        ap.error(f"--n ({args.n}) and every --k ({args.k}) must be >= 1")
    prep = stages.load_prepared(args.profile)
    split = args.split if args.split != "validation" or len(prep.sets["val"]) else "test (no validation split)"
    x, y = training_val(prep) if args.split == "validation" else prep.xy(args.split)
    pick = torch.randperm(len(y), generator=torch.Generator().manual_seed(0))[:args.n]
    x, y = x[pick], y[pick]
    _, _, h, w = x.shape
    archs = args.arch or list(stages.read_stage(args.profile, stages.BaselinesStage).checkpoints)
    if max(args.k) > h * w:
        ap.error(f"--k {max(args.k)}: a {h}x{w} image has {h * w} pixels")
    print(f"{args.profile}, {split} split, {len(y)} clips ({int((y == 0).sum())} bonafide), {h}x{w} images")
    print("model | k (share kept) | null | state | EER % | accuracy %")
    for arch in archs:
        clean = stages.load_detector(args.profile, arch, "baseline", prep)
        model = certified.ablation_init(clean)
        for k in args.k:
            keep = A.keep_masks(len(y), h, w, k, seed=5)
            for null in ("zero", "mean"):
                xa = ablated(x, keep, null, clean.normalize.mean.flatten())
                for state in ("eval", "train"):    # a train-mode pass updates running statistics: on a copy
                    m = model.eval() if state == "eval" else copy.deepcopy(model).train()
                    with torch.no_grad():
                        logits = m(xa)
                    acc = (logits.argmax(1) == y).float().mean().item()
                    print(f"{arch} | {k} ({k / (h * w):.1%}) | {null} | {state} | {100 * eer(y, bonafide_score(logits)):.1f} | "
                          f"{100 * acc:.1f}", flush=True)


if __name__ == "__main__":
    main()
