#!/usr/bin/env python
"""Clean EER against image size: can a larger spectrogram image than the thesis's 32x32 detect better?

    python benchmarks/image_size.py                        # the demo profile's data, ResNet-18, logspec 32/64/128
    python benchmarks/image_size.py --sizes 32 64 --epochs 6 --out /tmp/size.png

Trains one ResNet-18 per feature setting on the demo profile's corpus and split (the same clips as
`make run`), with the demo's training recipe, and prints the clean test EER of each; also the thesis's
own `thesis_rgb32` at 32x32 for reference. Writes a figure (EER against image size) to
outputs/demo/figures/bench_image_size.png unless --out says otherwise. On 2 CPU cores 128x128 costs
about 16 times a 32x32 epoch; --epochs trades accuracy for time.
"""

from __future__ import annotations

import argparse
import dataclasses
import time

import torch

from helpers.metrics import bonafide_score, eer
from helpers.models import predict
from helpers.paths import figures_dir
from helpers.pipeline import baseline, prepare_data
from helpers.profiles import profile_params
from helpers.stages import data_params, train_config


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--profile", default="demo")
    ap.add_argument("--sizes", type=int, nargs="+", default=[32, 64, 128])
    ap.add_argument("--epochs", type=int, default=None, help="default: the profile's EPOCHS")
    ap.add_argument("--arch", default="resnet18")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    ns = profile_params(args.profile)
    if args.epochs:
        ns["EPOCHS"] = args.epochs
    cfg = train_config(ns)
    base = data_params(ns)
    rows = []
    settings = [("thesis_rgb32", 32)] + [("logspec", s) for s in args.sizes]
    for features, size in settings:
        p = dataclasses.replace(base, features=features, feature_size=size)
        prep = prepare_data(p, None, progress=False)
        t0 = time.perf_counter()
        res = baseline(args.arch, prep, cfg, "bench", progress=False)
        x, y = prep.xy("test")
        e = eer(y, bonafide_score(predict(res.model, x)))
        rows.append({"features": features, "size": size, "eer": e, "train_accuracy": res.history[-1]["train_accuracy"],
                     "seconds": time.perf_counter() - t0})
        print(f"{features:<13} {size:>4}x{size:<4} test EER {100 * e:5.1f}%  final train accuracy "
              f"{res.history[-1]['train_accuracy']:.3f}  {rows[-1]['seconds']:.0f} s", flush=True)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.4))
    logs = [r for r in rows if r["features"] == "logspec"]
    ax.plot([r["size"] for r in logs], [100 * r["eer"] for r in logs], "o-", label=f"logspec, {args.arch}")
    ref = rows[0]
    ax.plot([32], [100 * ref["eer"]], "s", color="k", label="thesis_rgb32 (the thesis's images)")
    ax.axhline(10, ls=":", color="grey", lw=1, label="10% EER")
    ax.set(xlabel="image size (pixels per side)", ylabel="clean test EER (%)", xscale="log",
           title=f"{args.profile} corpus, {cfg.epochs} epochs")
    ax.set_xticks([r["size"] for r in logs], [str(r["size"]) for r in logs])
    ax.legend(fontsize=8)
    fig.tight_layout()
    out = args.out or figures_dir(args.profile) / "bench_image_size.png"
    fig.savefig(out, dpi=120)
    print("figure:", out)


if __name__ == "__main__":
    torch.set_num_threads(torch.get_num_threads())
    main()
