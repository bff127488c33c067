#!/usr/bin/env python
"""Which high-resolution front end? ResNet-18 trained on each candidate, same clips, same split, same recipe.

    python benchmarks/front_end.py                                   # demo profile: thesis_rgb32, lfcc, loglin
    python benchmarks/front_end.py --features thesis_rgb32 lfcc --epochs 8 --out /tmp/fe.json

For each front end (``helpers.data.features``: the thesis's 32x32 RGB image; LFCC as the ASVspoof 2021 LFCC
baselines; the full-resolution log-linear spectrogram of Alzantot et al. 2019) it extracts the profile's clips,
trains the profile's ResNet (its recipe, the stem the feature asks for) and prints the clean test EER pooled and
per system (the ``attack`` column: a vocoder on the copy-synthesis corpus, a TTS system on the synthesis corpus),
split into seen and unseen systems where the corpus marks them, with the cost of each image: extraction ms per
clip, training ms per image (wall time of the training over images seen) and inference ms per image (batch 64).
Writes a JSON next to the figures (``outputs/<profile>/figures/bench_front_end.json``) unless --out says where.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import time
from pathlib import Path

import torch

from helpers.config.profiles import profile_params
from helpers.evaluation.metrics import bonafide_score, eer
from helpers.experiments.pipeline import baseline, prepare_data
from helpers.experiments.stages import clean_breakdown, data_params, train_config
from helpers.io import save_json
from helpers.models.detectors import predict
from helpers.paths import figures_dir


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--profile", default="demo")
    ap.add_argument("--features", nargs="+", default=["thesis_rgb32", "lfcc", "loglin"])
    ap.add_argument("--arch", default="resnet18")
    ap.add_argument("--epochs", type=int, default=None, help="default: the profile's EPOCHS")
    ap.add_argument("--out", default=None)
    ap.add_argument("--set", nargs="*", default=[], metavar="NAME=VALUE",
                    help="override profile parameters, e.g. LR=0.05 AUGMENT='shift+freqmask' (Python literals)")
    args = ap.parse_args()
    ns = profile_params(args.profile)
    for item in args.set:
        name, _, value = item.partition("=")
        if name not in ns:
            raise SystemExit(f"--set {item}: {name} is not a parameter of profile {args.profile}")
        try:
            ns[name] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            ns[name] = value
    if args.epochs:
        ns["EPOCHS"] = args.epochs
    cfg = train_config(ns)
    base = data_params(ns)
    rows = []
    print(f"{args.profile} corpus, {args.arch}, recipe {dataclasses.asdict(cfg)}", flush=True)
    for features in args.features:
        p = dataclasses.replace(base, features=features)
        t0 = time.perf_counter()
        prep = prepare_data(p, None, progress=False)
        n_clips = sum(len(s) for s in prep.sets.values())
        extract_ms = 1000 * prep.extraction_seconds / max(1, n_clips) if prep.extraction_seconds else float("nan")
        t1 = time.perf_counter()
        res = baseline(args.arch, prep, cfg, "bench", progress=False)
        seen_images = sum(len(prep.sets["train"]) if not cfg.max_batches else cfg.max_batches * cfg.batch_size
                          for _ in res.history)
        train_ms = 1000 * res.seconds / max(1, seen_images) if not res.reused else float("nan")
        x, y = prep.xy("test")
        t2 = time.perf_counter()
        logits = predict(res.model, x, batch_size=64)
        infer_ms = 1000 * (time.perf_counter() - t2) / max(1, len(y))
        breakdown = clean_breakdown(args.arch, logits, prep)
        per_system = {r["group"]: r["eer"] for r in breakdown if r["by"] == "vocoder"}   # per value of `attack`
        per_codec = {r["group"]: r["eer"] for r in breakdown if r["by"] == "codec"}
        row = {"features": features, "shape": list(prep.feature_config.shape), "stem": prep.feature_config.stem,
               "eer": eer(y, bonafide_score(logits)), "per_system_eer": per_system,
               "per_codec_eer": per_codec,
               "train_accuracy": [h["train_accuracy"] for h in res.history],
               "val_eer": [h["val_eer"] for h in res.history], "selected_epoch": res.selected_epoch,
               "extract_ms_per_clip": extract_ms, "train_ms_per_image": train_ms, "infer_ms_per_image": infer_ms,
               "seconds": time.perf_counter() - t0, "n_test": len(y)}
        rows.append(row)
        sysline = "  ".join(f"{k} {100 * v:4.1f}%" for k, v in sorted(per_system.items()))
        sysline += "\n" + " " * 14 + "per codec: " + "  ".join(f"{k} {100 * v:4.1f}%" for k, v in sorted(per_codec.items()))
        print(f"{features:<13} {'x'.join(map(str, row['shape'])):<10} test EER {100 * row['eer']:5.1f}%  per system: "
              f"{sysline}\n{'':<13} final train accuracy {row['train_accuracy'][-1]:.3f}, best val EER "
              f"{100 * min(row['val_eer']):.1f}% (epoch {res.selected_epoch}); cost per image: extract "
              f"{extract_ms:.1f} ms, train {train_ms:.1f} ms, infer {infer_ms:.1f} ms; {row['seconds']:.0f} s", flush=True)
    out = Path(args.out) if args.out else figures_dir(args.profile) / "bench_front_end.json"
    save_json(out, {"profile": args.profile, "arch": args.arch, "train": dataclasses.asdict(cfg), "rows": rows})
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
