#!/usr/bin/env python
"""Training-step throughput against the CPU's FP32 peak: which settings make training faster?

    python benchmarks/train_throughput.py                          # ResNet-18/50 x thesis_rgb32 / lfcc, all variants
    python benchmarks/train_throughput.py --archs resnet18 --features thesis_rgb32 --steps 8

For each detector (architecture x front end: the image shape and stem the profile would train) it times one
SGD step (forward, backward, update) on random images of the feature's shape, after warm-up, for each variant:

- ``fp32``        the current loop: FP32, channels-last, the default thread settings
- ``contiguous``  FP32 in the default (NCHW) memory format
- ``bf16``        ``torch.autocast("cpu", torch.bfloat16)`` (oneDNN bf16 kernels; needs avx512_bf16 or AMX)
- ``compile``     ``torch.compile(model)`` (inductor), FP32
- ``threads=N``   ``torch.set_num_threads(N)`` / interop 1
- ``batch=B``     another batch size (per-image cost; the recipe's batch size changes the optimisation)

and prints images/second, the ratio to the ``fp32`` baseline at the profile's batch size, and achieved GFLOP/s
as a fraction of the machine's FP32 peak (cores x FP32 lanes per vector x FMA units x 2 x clock), printed with
where each factor was read (lscpu flags, /proc/cpuinfo MHz; the FMA unit count is a per-microarchitecture
assumption stated in the output). FLOPs of a training step = 3 x the forward FLOPs (counted with
``torch.utils.flop_counter``). Ratios, not absolute times, are the result: on a shared machine other
processes move the absolute numbers. ``--check`` trains a few steps with a variant and the baseline from the same
weights and prints the largest logit difference, so a faster variant is adopted only within a stated tolerance.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import subprocess
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from helpers.data.features import FeatureConfig
from helpers.io import save_json
from helpers.models.detectors import build_model


def cpu_peak() -> dict:
    """FP32 peak GFLOP/s of the CPUs this process may use, and how each factor was read."""
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
    except FileNotFoundError:
        lscpu = ""
    flags = set(re.search(r"Flags:\s*(.*)", lscpu).group(1).split()) if "Flags:" in lscpu else set()
    model = (re.search(r"Model name:\s*(.*)", lscpu) or [None, "unknown"])[1]
    cores = len(os.sched_getaffinity(0))
    mhz = [float(m) for m in re.findall(r"cpu MHz\s*:\s*([\d.]+)", Path("/proc/cpuinfo").read_text())]
    ghz = (max(mhz) / 1000) if mhz else float("nan")
    lanes = 16 if "avx512f" in flags else 8 if "avx2" in flags else 4
    # FMA units per core: 2 on Intel Skylake-SP and later server cores and on AMD Zen 2-4 (Zen 4 runs 512-bit
    # FMAs as two 256-bit halves, so its 512-bit rate is 1 unit x 16 lanes = 2 units x 8 lanes).
    zen4_split = "avx512f" in flags and "AMD" in lscpu
    fma_units = 1 if zen4_split else (2 if "fma" in flags else 1)
    peak = cores * lanes * fma_units * 2 * ghz
    how = (f"{cores} cores (sched_getaffinity) x {lanes} FP32 lanes ({'avx512f' if lanes == 16 else 'avx2' if lanes == 8 else 'sse'}"
           f" in lscpu flags) x {fma_units} FMA unit{'s' if fma_units > 1 else ''} "
           f"({'AMD with avx512: 512-bit FMA as two 256-bit halves, assumed' if zen4_split else 'assumed 2 for an fma CPU'})"
           f" x 2 FLOP per FMA x {ghz:.2f} GHz (/proc/cpuinfo cpu MHz, max)")
    return {"model": model, "cores": cores, "lanes": lanes, "fma_units": fma_units, "ghz": ghz, "peak_gflops": peak,
            "how": how, "bf16": "avx512_bf16" in flags or "amx_bf16" in flags, "flags_bf16": sorted(f for f in flags if "bf16" in f)}


def step_flops(model: torch.nn.Module, shape: tuple[int, ...], batch: int) -> float:
    from torch.utils.flop_counter import FlopCounterMode

    x = torch.rand(batch, *shape)
    with FlopCounterMode(display=False) as fc:
        model(x)
    return 3.0 * fc.get_total_flops()


def time_steps(model, opt, x, y, steps: int, bf16: bool) -> float:
    """Seconds per training step (median of ``steps`` after 2 warm-up steps)."""
    times = []
    for i in range(steps + 2):
        t0 = time.perf_counter()
        ctx = torch.autocast("cpu", torch.bfloat16) if bf16 else contextlib.nullcontext()
        with ctx:
            loss = F.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if i >= 2:
            times.append(time.perf_counter() - t0)
    times.sort()
    return times[len(times) // 2]


def run_variant(arch: str, fc: FeatureConfig, variant: str, batch: int, steps: int) -> float:
    """Images per second of a training step under ``variant``."""
    threads = torch.get_num_threads()
    if variant.startswith("threads="):
        torch.set_num_threads(int(variant.split("=")[1]))
    try:
        torch.manual_seed(0)
        model = build_model(arch, fc.channels, seed=0, stem=fc.stem).train()   # type: ignore[arg-type]
        cl = variant != "contiguous"
        if cl:
            model = model.to(memory_format=torch.channels_last)
        net = torch.compile(model) if variant == "compile" else model
        opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
        x = torch.rand(batch, *fc.shape)
        x = x.contiguous(memory_format=torch.channels_last) if cl else x
        y = torch.arange(batch) % 2
        s = time_steps(net, opt, x, y, steps, variant == "bf16")
        return batch / s
    finally:
        torch.set_num_threads(threads)


def check_tolerance(arch: str, fc: FeatureConfig, variant: str, batch: int, steps: int = 5) -> float:
    """Largest |logit difference| after ``steps`` identical SGD steps with ``variant`` vs FP32 channels-last."""
    outs = []
    for v in ("fp32", variant):
        torch.manual_seed(0)
        model = build_model(arch, fc.channels, seed=0, stem=fc.stem).train().to(memory_format=torch.channels_last)  # type: ignore[arg-type]
        net = torch.compile(model) if v == "compile" else model
        opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        g = torch.Generator().manual_seed(1)
        xs = [torch.rand(batch, *fc.shape, generator=g) for _ in range(steps + 1)]
        for x in xs[:-1]:
            ctx = torch.autocast("cpu", torch.bfloat16) if v == "bf16" else contextlib.nullcontext()
            with ctx:
                loss = F.cross_entropy(net(x), torch.arange(batch) % 2)
            opt.zero_grad()
            loss.backward()
            opt.step()
        with torch.no_grad():
            outs.append(model.eval()(xs[-1]).float())
    return float((outs[0] - outs[1]).abs().max() / outs[0].abs().max().clamp_min(1e-6))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--archs", nargs="+", default=["resnet18", "resnet50"])
    ap.add_argument("--features", nargs="+", default=["thesis_rgb32", "lfcc"])
    ap.add_argument("--batch", type=int, default=16, help="the profile's BATCH_SIZE (the ratio's baseline)")
    ap.add_argument("--variants", nargs="+",
                    default=["fp32", "contiguous", "bf16", "compile", "threads=1", "batch=32", "batch=64"])
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--rounds", type=int, default=3,
                    help="each variant measured this many times, interleaved with the others; the best round counts "
                         "(on a shared machine the least-disturbed round is the closest to the machine's own speed)")
    ap.add_argument("--check", action="store_true", help="also print each variant's logit difference after 5 steps")
    ap.add_argument("--out", default=None, help="JSON with every measurement")
    args = ap.parse_args()
    peak = cpu_peak()
    print(f"CPU: {peak['model']}; FP32 peak {peak['peak_gflops']:.0f} GFLOP/s = {peak['how']}")
    print(f"bf16 instructions: {peak['flags_bf16'] or 'none'}; torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, interop {torch.get_num_interop_threads()}; load average "
          f"{os.getloadavg()[0]:.1f} on {peak['cores']} cores (above the core count, other processes share them)")
    rows = []
    for features in args.features:
        fc = FeatureConfig(name=features)   # type: ignore[arg-type]
        for arch in args.archs:
            model = build_model(arch, fc.channels, seed=0, stem=fc.stem)   # type: ignore[arg-type]
            flops_per_image = step_flops(model, fc.shape, 1)
            base = None
            best: dict[str, float] = {}
            variants = [v for v in args.variants if not (v == "bf16" and not peak["bf16"])]
            if len(variants) < len(args.variants):
                print("  bf16: skipped (no avx512_bf16/amx_bf16 in lscpu flags)")
            for _ in range(args.rounds):
                for variant in list(variants):
                    batch = int(variant.split("=")[1]) if variant.startswith("batch=") else args.batch
                    v = "fp32" if variant.startswith("batch=") else variant
                    try:
                        best[variant] = max(best.get(variant, 0.0), run_variant(arch, fc, v, batch, args.steps))
                    except Exception as exc:   # e.g. torch.compile without a C compiler: say so, keep measuring
                        print(f"{arch:<9} {features:<13} {variant:<11} failed: {type(exc).__name__}: {str(exc)[:120]}")
                        variants.remove(variant)
            for variant in variants:
                batch = int(variant.split("=")[1]) if variant.startswith("batch=") else args.batch
                v = "fp32" if variant.startswith("batch=") else variant
                ips = best[variant]
                base = ips if variant == "fp32" else base
                gflops = ips * flops_per_image / 1e9
                row = {"arch": arch, "features": features, "shape": list(fc.shape), "variant": variant, "batch": batch,
                       "images_per_s": ips, "ratio": ips / base if base else float("nan"), "gflops": gflops,
                       "peak_fraction": gflops / peak["peak_gflops"]}
                if args.check and v not in ("fp32", "contiguous") and not variant.startswith("threads"):
                    row["rel_logit_diff"] = check_tolerance(arch, fc, v, args.batch)
                rows.append(row)
                tol = f"  logit diff {row['rel_logit_diff']:.1e} (relative)" if "rel_logit_diff" in row else ""
                print(f"{arch:<9} {features:<13} {'x'.join(map(str, fc.shape)):<9} {variant:<11} {ips:7.1f} img/s  "
                      f"x{row['ratio']:.2f} vs fp32 batch {args.batch}  {gflops:6.1f} GFLOP/s = "
                      f"{100 * row['peak_fraction']:4.1f}% of peak{tol}", flush=True)
    if args.out:
        save_json(Path(args.out), {"peak": peak, "rows": rows})


if __name__ == "__main__":
    main()
