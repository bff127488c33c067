#!/usr/bin/env python
"""Sharded Pixle evaluation on 1 and N processes: seconds for each and the measured ratio.

Runs ``torchrun --standalone --nproc_per_node=P -m helpers.distributed.ddp pixle`` for each P in
``--nproc`` on the same images, model and attack (fresh shard folder each time, so nothing is
reused). On the CPU each process gets cores / P torch threads (gloo); on GPUs one process per
GPU (NCCL). Prints the stage time (attack and shard I/O, from rank 0; process start-up and
imports excluded), the CPU time of all ranks, the whole command's wall time, whether the results
are bit-identical, and last ``scaling: 1 -> P processes: X.XXx``.

    python benchmarks/scaling.py                                   # CPU, ResNet-18 (random init), 32 images
    python benchmarks/scaling.py --device cuda --nproc 1 8 --n 512 --restarts 10 --iterations 50
    python benchmarks/scaling.py --features test.safetensors --checkpoint resnet18-baseline.safetensors
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run(nproc: int, args: argparse.Namespace, work: Path) -> dict:
    """One torchrun of the pixle stage; its JSON summary plus the command's wall time."""
    out = work / f"summary-{nproc}.json"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
           "-m", "helpers.distributed.ddp", "pixle", "--arch", args.arch, "--restarts", str(args.restarts),
           "--iterations", str(args.iterations), "--shard-size", str(args.shard_size), "--seed", "0",
           "--cache-dir", str(work / f"shards-{nproc}"), "--json", str(out), "--quiet", "--device", args.device]
    cmd += ["--features", args.features, "--limit", str(args.n)]
    if args.random:
        cmd += ["--attack-predictions"]    # random images: attack the model's own decisions
    if args.model:
        cmd += ["--model", args.model]
    if args.checkpoint:
        cmd += ["--checkpoint", args.checkpoint]
    if args.target_batch:
        cmd += ["--target-batch", str(args.target_batch)]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env={**os.environ, "PYTHONWARNINGS": "ignore"})
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"torchrun with {nproc} processes failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
    summary = json.loads(out.read_text())
    summary["wall_s"] = wall
    return summary


def main() -> None:
    import torch

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--nproc", type=int, nargs="+", default=None,
                    help="process counts (default: 1 and 2 on a CPU, 1 and every GPU on GPUs)")
    ap.add_argument("--arch", default="resnet18", choices=("resnet18", "resnet50"))
    ap.add_argument("--model", default=None, metavar="MODULE:CALLABLE",
                    help="a detector outside the library instead of --arch (e.g. tests.toys:RegionModel)")
    ap.add_argument("--n", type=int, default=32, help="images to attack")
    ap.add_argument("--size", type=int, default=32, help="random images' size")
    ap.add_argument("--features", default=None, help="attack these (features safetensors) instead of random images")
    ap.add_argument("--checkpoint", default=None, help="trained weights (else a seeded random initialisation)")
    ap.add_argument("--restarts", type=int, default=2)
    ap.add_argument("--iterations", type=int, default=10)
    ap.add_argument("--shard-size", type=int, default=8)
    ap.add_argument("--target-batch", type=int, default=None)
    args = ap.parse_args()
    if args.nproc is None:
        gpus = torch.cuda.device_count() if args.device.startswith("cuda") else 0
        args.nproc = [1, max(gpus, 2)] if gpus != 1 else [1]
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:
        cores = os.cpu_count() or 1
    print(f"device: {args.device}; {cores} CPU cores; {args.model or args.arch}; {args.n} images "
          f"{'from ' + args.features if args.features else f'random {args.size}x{args.size}'}; "
          f"Pixle {args.restarts}x{args.iterations}, shards of {args.shard_size}")
    with tempfile.TemporaryDirectory(prefix="scaling-") as tmp:
        args.random = not args.features
        if args.random:   # seeded uniform images, written once so every process count attacks the same file
            from helpers.data.features import FeatureSet, save_features

            g = torch.Generator().manual_seed(0)
            x = torch.rand(args.n, 3, args.size, args.size, generator=g)
            args.features = str(Path(tmp) / "random.safetensors")
            save_features(Path(args.features), FeatureSet(x, torch.zeros(args.n, dtype=torch.long),
                                                          [f"R{i:05d}" for i in range(args.n)]))
        rows = {p: run(p, args, Path(tmp)) for p in args.nproc}
    print(f"\n{'processes':>9}{'threads':>9}{'stage s':>10}{'CPU s':>9}{'wall s':>9}{'success':>9}{'queries':>9}"
          "  result hash")
    for p, r in rows.items():
        print(f"{p:>9}{r['threads']:>9}{r['seconds']:>10.2f}{r['cpu_s']:>9.2f}{r['wall_s']:>9.2f}"
              f"{r['success_rate']:>9.2%}{r['mean_queries']:>9.1f}  {r['adv_sha']}")
    print("(stage s: rank 0's wall time of the attack and shard I/O; CPU s: process CPU time of all ranks, which a "
          "busy machine inflates less; wall s: the whole torchrun command)")
    base = rows[args.nproc[0]]
    same = all(r["adv_sha"] == base["adv_sha"] for r in rows.values())
    print(f"\nidentical adversarial images, success, queries and L0 across process counts: {'yes' if same else 'NO'}")
    for p, r in rows.items():
        if p == args.nproc[0]:
            continue
        ratio = base["seconds"] / r["seconds"]
        print(f"CPU time {p} vs {args.nproc[0]} processes: {r['cpu_s'] / base['cpu_s']:.2f}x")
        print(f"scaling: {args.nproc[0]} -> {p} processes: {ratio:.2f}x on the stage "
              f"({base['wall_s'] / r['wall_s']:.2f}x wall), efficiency {ratio * args.nproc[0] / p:.0%} ({args.device})")


if __name__ == "__main__":
    main()
