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
from pathlib import Path

import torch

from helpers.io import load_json, save_json
from helpers.evaluation.metrics import bonafide_score, eer
from helpers.models.detectors import predict
from helpers.paths import figures_dir
from helpers.experiments.pipeline import baseline, prepare_data
from helpers.config.profiles import profile_params
from helpers.experiments.stages import clean_breakdown, data_params, train_config


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--profile", default="demo")
    ap.add_argument("--sizes", type=int, nargs="+", default=[32, 64, 128])
    ap.add_argument("--epochs", type=int, default=None, help="default: the profile's EPOCHS")
    ap.add_argument("--arch", default="resnet18")
    ap.add_argument("--out", default=None)
    ap.add_argument("--replot", metavar="JSON", help="redraw the figure from a JSON this script wrote, train nothing")
    args = ap.parse_args()
    if args.replot:
        d = load_json(args.replot)
        plot(d["rows"], f"{d['profile']} corpus and split, {d['arch']}, {d['epochs']} epochs ({d['n_test']} test clips)",
             Path(args.out or Path(args.replot).with_suffix(".png")))
        return
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
        logits = predict(res.model, x)
        e = eer(y, bonafide_score(logits))
        per_vocoder = {r["group"]: r["eer"] for r in clean_breakdown(args.arch, logits, prep) if r["by"] == "vocoder"}
        rows.append({"features": features, "size": size, "eer": e, "per_vocoder_eer": per_vocoder,
                     "train_accuracy": [h["train_accuracy"] for h in res.history],
                     "val_eer": [h["val_eer"] for h in res.history], "seconds": time.perf_counter() - t0})
        voc = "  ".join(f"{k} {100 * v:4.1f}%" for k, v in per_vocoder.items())
        print(f"{features:<13} {size:>4}x{size:<4} test EER {100 * e:5.1f}%  per vocoder: {voc}  final train accuracy "
              f"{res.history[-1]['train_accuracy']:.3f}  {rows[-1]['seconds']:.0f} s", flush=True)
    out = Path(args.out) if args.out else figures_dir(args.profile) / "bench_image_size.png"
    save_json(out.with_suffix(".json"), {"profile": args.profile, "arch": args.arch, "epochs": cfg.epochs,
                                         "n_test": len(y), "rows": rows})
    plot(rows, f"{args.profile} corpus and split, {args.arch}, {cfg.epochs} epochs ({len(y)} test clips)", out)


def plot(rows: list[dict], title: str, out: Path) -> None:
    """Clean EER against image size, overall and per vocoder; the thesis's 32x32 images as squares."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9.5, 3.6), sharey=True)
    logs = [r for r in rows if r["features"] == "logspec"]
    sizes = [r["size"] for r in logs]
    ref = next(r for r in rows if r["features"] == "thesis_rgb32")
    for ax, key in zip(axes, ("overall", "per vocoder")):
        if key == "overall":
            ax.plot(sizes, [100 * r["eer"] for r in logs], "o-", label="logspec")
            ax.plot([32], [100 * ref["eer"]], "s", color="k", label="thesis_rgb32 (the thesis's images)")
        else:
            for voc in ref["per_vocoder_eer"]:
                line, = ax.plot(sizes, [100 * r["per_vocoder_eer"][voc] for r in logs], "o-", label=f"{voc} (logspec)")
                ax.plot([32], [100 * ref["per_vocoder_eer"][voc]], "s", color=line.get_color(), mfc="none",
                        label=f"{voc} (thesis_rgb32)")
        ax.axhline(10, ls=":", color="grey", lw=1, label="10% EER")
        ax.axhline(50, ls="--", color="grey", lw=0.8)
        ax.set(xlabel="image size (pixels per side)", xscale="log", title=f"clean test EER, {key}")
        ax.minorticks_off()
        ax.set_xticks(sizes, [str(s) for s in sizes])
        ax.legend(fontsize=7)
    axes[0].set_ylabel("EER (%)")
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    print("figure:", out, "numbers:", out.with_suffix(".json"))


if __name__ == "__main__":
    torch.set_num_threads(torch.get_num_threads())
    main()
