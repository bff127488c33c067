#!/usr/bin/env python
"""Does a detector fit its training set with more epochs? 01's recipe on a profile's prepared data, more epochs.

    python benchmarks/fit_epochs.py --arch resnet50 --epochs 20      # after `python run_all.py --profile demo`
    python benchmarks/fit_epochs.py --arch resnet50 --epochs 15 --lr 0.03   # the same epochs, a larger peak lr
    python benchmarks/fit_epochs.py --arch resnet50 --lr 0.001 --ablation 30   # 07's base detector, CERT_EPOCHS epochs

Trains ``--arch`` with the recipe 01 recorded (``metrics/01_baselines.json``: batch, lr, schedule, balance,
selection), only ``--epochs`` (and ``--lr`` when given) changed, on the profile's prepared train and validation
splits, into a checkpoint under /tmp (01's checkpoints are not touched), and prints every epoch's train accuracy,
loss and validation EER, the epoch kept and the seconds it took, then the kept weights' test EER pooled over the
seen and the unseen systems, scored as 01 scores its detectors (``stages.system_breakdown``), beside 01's own. Issue 23's measurement of why ResNet-50 misses
train accuracy 0.95 on the demo in 15 epochs (README, *The default run*).

With ``--ablation K`` it trains 07's base detector instead: fine-tuned from 01's baseline checkpoint on images
that keep ``K`` random pixels, with 07's inputs (``certified.base_inputs``: the mask channel, validation images
ablated once with 07's seed, the starting weights), for the profile's ``CERT_EPOCHS`` unless ``--epochs`` says
otherwise: 07's own base detector when the profile's ``CERT_INIT`` is ``baseline`` and ``--lr`` is not given. No
test scoring (the base detector alone is not 07's smoothed detector). Issue 24's measurement of whether a smaller
learning rate or more epochs let 07's base detectors learn (README, *Certified*). ``--ablation 1024`` (every pixel
kept, the mask channel alone) is the control: 07's recipe on the clean task. ``--k-from K0`` anneals the kept pixels
log-linearly from ``K0`` to ``K`` over the first half of the training steps, then stays at ``K`` (a curriculum: any
base detector keeps the certificate valid; 07 does not use it). ``--null mean`` puts ablated pixels at the clean
detector's input-normalisation mean instead of 07's 0 (``common.mean_null``, training and validation images alike).

    python benchmarks/fit_epochs.py --arch resnet50 --ablation 30 --k-from 1024
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

import torch

from helpers.config.profiles import profile_params
from helpers.defenses import ablation as A
from helpers.experiments import certified, stages
from helpers.experiments.pipeline import training_val
from helpers.experiments.stages import BaselinesStage, read_stage
from helpers.models.detectors import predict
from helpers.models.training import TrainConfig, epoch_batches, read_checkpoint_meta, train

sys.path.insert(0, str(Path(__file__).resolve().parent))  # benchmarks/ is scripts, not a package
from common import mean_null  # noqa: E402


def annealed_ablation(k_from: int, k: int, ramp_steps: int, first_step: int):
    """07's ablation transform with ``k_from`` kept pixels at step 0, ``k`` from step ``ramp_steps`` on, log-linear
    between; ``first_step``: where a resumed run starts (the hook is called once per training batch, in order)."""
    step = [first_step]

    def transform(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        frac = min(1.0, step[0] / max(1, ramp_steps))
        step[0] += 1
        kt = round(math.exp(math.log(k_from) + frac * (math.log(k) - math.log(k_from))))
        return A.ablation_transform(kt)(x, g)

    return transform


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", default="demo")
    ap.add_argument("--arch", default="resnet50", choices=("resnet18", "resnet50"))
    ap.add_argument("--epochs", type=int, help="epochs (default: 20; with --ablation, the profile's CERT_EPOCHS)")
    ap.add_argument("--lr", type=float, help="peak learning rate instead of 01's")
    ap.add_argument("--ablation", type=int, metavar="K", help="train 07's base detector: K kept pixels, from 01's")
    ap.add_argument("--k-from", type=int, metavar="K0", help="with --ablation: anneal from K0 kept pixels to K")
    ap.add_argument("--null", choices=("zero", "mean"), default="zero",
                    help="with --ablation: ablated pixels at 0 (07's encoding) or at the input normalisation's mean")
    args = ap.parse_args()
    for name, given in (("--k-from", args.k_from is not None), ("--null", args.null != "zero")):
        if given and args.ablation is None:
            ap.error(f"{name} needs --ablation K")
    torch.set_num_threads(max(1, torch.get_num_threads()))
    prep = stages.load_prepared(args.profile)
    base = read_stage(args.profile, BaselinesStage)
    epochs = args.epochs or (profile_params(args.profile)["CERT_EPOCHS"] if args.ablation is not None else 20)
    recipe = base.train
    cfg = TrainConfig(**{**recipe, "epochs": epochs, "lr": recipe["lr"] if args.lr is None else args.lr})
    print("recipe:", asdict(cfg), flush=True)
    channels, val, extra, tag = prep.feature_config.channels, training_val(prep), {}, ""
    meta = {"features": prep.params.features, "kind": "benchmark"}
    if args.ablation is not None:
        clean = stages.load_detector(args.profile, args.arch, "baseline", prep)
        try:
            channels, val, transform, start = certified.base_inputs(prep, cfg, "random", args.ablation, clean)
        except ValueError as exc:
            ap.error(f"--ablation {args.ablation}: {exc}")
        extra = {"transform": transform, "init": start}
        tag = f"-ablation{args.ablation}-from-{clean.checkpoint_id}"    # a retrained 01 baseline: a new file
        meta.update(kind="benchmark-ablation-random", ablation=f"random-{args.ablation}", init=clean.checkpoint_id)
        if args.k_from is not None:
            d = val[0].shape[-2] * val[0].shape[-1]
            if not 0 < args.k_from <= d:
                ap.error(f"--k-from {args.k_from} must be in 1..{d} (pixels of the image)")
            tag += f"-kfrom{args.k_from}"
            meta.update(ablation=f"random-{args.k_from}-to-{args.ablation}")
        if args.null == "mean":     # ablated pixels at the clean detector's normalisation mean (0 after it)
            tag += "-nullmean"
            meta.update(null="mean")
            mean = clean.normalize.mean.flatten()
            val = (mean_null(val[0], mean), val[1])
    path = Path(tempfile.gettempdir()) / f"fit_epochs-{args.profile}-{args.arch}-{epochs}-lr{cfg.lr:g}{tag}.safetensors"
    if args.k_from is not None:     # training batches per epoch (``max_batches`` caps them), as train() draws them
        steps = len(epoch_batches(len(prep.xy("train")[1]), cfg, 0))
        done = read_checkpoint_meta(path).get("epoch", 0) if path.exists() else 0
        extra["transform"] = annealed_ablation(args.k_from, args.ablation, epochs * steps // 2, done * steps)
    if args.null == "mean":
        zero_null = extra["transform"]
        extra["transform"] = lambda x, g: mean_null(zero_null(x, g), mean)
    t0 = time.time()
    res = train(args.arch, channels, prep.xy("train"), val, cfg, path, meta, progress=True, **extra)
    print("epoch | train accuracy | train loss | validation EER")
    for h in res.history:
        print(f"{h['epoch']:5d} | {h['train_accuracy']:.3f} | {h['train_loss']:.3f} | {h.get('val_eer', float('nan')):.3f}")
    print(f"kept epoch {res.selected_epoch}; {time.time() - t0:.0f} s (a checkpoint already there is reused: "
          f"delete {path} to time it)")
    if args.ablation is not None:
        return
    # the kept weights on the test split, as 01 scores its own detector (same function, same bootstrap seed)
    rows = stages.system_breakdown(args.arch, predict(res.model, prep.xy("test")[0]), prep, seed=cfg.seed)
    ours = {r["group"]: r for r in rows}
    theirs = {r["group"]: r for r in base.per_system if r.get("model") == args.arch}
    for group in ("seen:seen", "seen:unseen"):
        if group in ours:
            r = ours[group]
            ref = f" (01's {args.arch}: {100 * theirs[group]['eer']:.1f}%)" if group in theirs else ""
            print(f"test EER, {group.split(':')[1]} systems: {100 * r['eer']:.1f}% "
                  f"[{100 * r['ci_low']:.1f}, {100 * r['ci_high']:.1f}]{ref}")


if __name__ == "__main__":
    main()
