"""The heavy part of a profile on N processes, into the caches the notebooks read.

    torchrun --standalone --nproc_per_node=8 -m helpers.distributed.stage_runner --profile thesis --notebook 02
    python run_all.py --profile thesis --nproc 8          # the same, before each of notebooks 01-04

For notebook 01 (and the training of 04) the detectors train with DistributedDataParallel
(:func:`helpers.distributed.ddp.ddp_train`) into exactly the checkpoint the notebook would write
(:func:`helpers.experiments.pipeline.baseline_spec`); for 02-04 every Pixle attack of the notebook runs sharded
(:func:`helpers.evaluation.attack_loop.attack_dataset` with ``shard=(rank, world)``: rank r takes the chunks
j with j % N == r, no padding) into the notebook's own attack cache. The notebook, run afterwards
(``run_all.py`` does it), finds every checkpoint finished and every attack cached, and only
evaluates and draws. Pixle's randomness is a function of (seed, clip, restart, iteration), so the
adversarial images are the same whatever N. A run killed on any rank resumes: finished epochs and
chunks are files, and only the missing ones are recomputed.

Multi-node (every node runs the same command; ``OUTPUT_DIR`` and ``DATA_DIR`` on a shared filesystem)::

    torchrun --nnodes=2 --nproc_per_node=8 --rdzv-backend=c10d --rdzv-endpoint=HOST:29400 --rdzv-id=run1 \\
        -m helpers.distributed.stage_runner --profile thesis --notebook 02

Notebook 00 must have run first (the corpus and the feature tensors are read from its cache);
:func:`helpers.distributed.ddp.sharded_features` shards feature extraction for corpora too large for one process.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Sequence

import torch
import yaml

STAGE_NOTEBOOKS: tuple[str, ...] = ("01", "02", "03", "04")


def _params(profile: str, overrides: list[list[str]]) -> dict:
    from helpers.config.params import check
    from helpers.config.profiles import profile_params

    params = {**profile_params(profile), **{k: yaml.safe_load(v) for k, v in overrides}, "PROFILE": profile}
    check(params)
    return params


def run(profile: str, notebook: str, params: dict, env) -> None:
    """Notebook ``notebook``'s heavy work for ``profile`` on this rank (see the module docstring)."""
    from helpers.experiments import stages
    from helpers.distributed.ddp import ddp_train
    from helpers.experiments.pipeline import adversarial_spec, baseline, baseline_spec, training_val
    from helpers.models.training import pixle_generator

    prep = stages.load_prepared(profile)
    shard, dev = (env.rank, env.world_size), env.device
    channels = prep.feature_config.channels
    if notebook == "01":
        cfg = stages.train_config(params)
        for arch in params["MODELS"]:
            spec = baseline_spec(arch, prep, cfg, profile)
            ddp_train(arch, channels, prep.xy("train"), training_val(prep), cfg, env, checkpoint=spec.checkpoint,
                      meta=spec.meta, progress=env.is_main)
    elif notebook == "02":
        stages.run_pixle(profile, prep, stages.attack_config(params), params["N_ATTACK"], params["ATTACK_BATCH"], dev,
                         shard=shard)
    elif notebook == "03":
        stages.run_smoothing(profile, prep, stages.BlurConfig.from_params(params), params["SIGMA_SWEEP"],
                             params["ATTACK_BATCH"], dev, shard=shard)
    elif notebook == "04":
        cfg = stages.train_config(params, prefix="AT_")
        clips, base, _, train_attack = stages.adversarial_setup(profile, prep, params["AT_RESTARTS"],
                                                                params["AT_ITERATIONS"])
        for arch in base.checkpoints:
            init = None
            if params["AT_INIT"] == "baseline":
                init = baseline(arch, prep, stages.TrainConfig(**base.train), profile, device=str(dev), progress=False)
            spec = adversarial_spec(arch, prep, cfg, train_attack, profile, None if init is None else init.checkpoint)
            ddp_train(arch, channels, prep.xy("train"), training_val(prep), cfg, env, checkpoint=spec.checkpoint,
                      meta=spec.meta, adv=pixle_generator(train_attack, seed=cfg.seed),
                      init=None if init is None else init.model, progress=env.is_main)
        env.barrier()
        stages.run_adversarial(profile, prep, cfg, params["AT_INIT"], params["AT_RESTARTS"], params["AT_ITERATIONS"],
                               params["ATTACK_BATCH"], dev, shard=shard)
    else:
        raise ValueError(f"--notebook {notebook}: choose one of {STAGE_NOTEBOOKS}")
    env.barrier()


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m helpers.distributed.stage_runner", description=__doc__.split("\n\n")[0])
    ap.add_argument("--profile", required=True)
    ap.add_argument("--notebook", required=True, choices=STAGE_NOTEBOOKS)
    ap.add_argument("-p", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"))
    ap.add_argument("--device", default=None, help="cpu or cuda (default: cuda:LOCAL_RANK when available)")
    args = ap.parse_args(argv)
    from helpers.distributed.ddp import cpu_threads_per_process, distributed

    params = _params(args.profile, args.p)
    torch.set_num_threads(cpu_threads_per_process())
    with distributed(args.device) as env:
        if env.is_main:
            print(f"stage {args.notebook} of profile {args.profile} on {env.world_size} process(es) "
                  f"({env.backend or 'single'})", flush=True)
        run(args.profile, args.notebook, params, env)
    return 0


def launch(nproc: int, profile: str, notebook: str, overrides: list[list[str]]) -> int:
    """Run :func:`main` under ``torchrun --standalone --nproc_per_node=nproc`` (what ``run_all.py --nproc`` does)."""
    import subprocess

    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
           "-m", "helpers.distributed.stage_runner", "--profile", profile, "--notebook", notebook]
    for name, value in overrides:
        cmd += ["-p", name, value]
    return subprocess.run(cmd, env={**os.environ, "PYTHONUNBUFFERED": "1"}, cwd=Path(__file__).resolve().parent.parent).returncode


if __name__ == "__main__":
    raise SystemExit(main())
