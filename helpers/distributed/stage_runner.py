"""The heavy part of a profile on N processes, into the caches the notebooks read.

    torchrun --standalone --nproc_per_node=8 -m helpers.distributed.stage_runner --profile thesis --notebook 02
    python run_all.py --profile thesis --nproc 8          # the same, before each of notebooks 01-04

For notebook 01 (and the training of 04) the stage's own training calls run with the DDP trainer
(:func:`helpers.distributed.ddp.ddp_trainer`) into exactly the checkpoint the notebook would write
(:func:`helpers.experiments.pipeline.baseline_spec`); for 02-04 every attack job the stage lists
(:func:`helpers.experiments.stages.pixle_jobs`, ``smoothing_jobs``, ``adversarial_jobs``) runs through the one
attack loop (:func:`helpers.evaluation.attack_loop.attack_dataset`) with its chunks dealt to the ranks
(rank r takes the chunks j with j % N == r, no padding) into the notebook's own attack cache. The notebook, run afterwards
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
    """Notebook ``notebook``'s heavy work for ``profile`` on this rank (see the module docstring).

    The protocol is the stage's own: its training calls (:func:`helpers.experiments.pipeline.baseline`,
    :func:`helpers.experiments.stages.adversarial_models`) with the DDP trainer, and the attack jobs it lists
    (``stages.*_jobs``), whose chunks this rank fills (:func:`helpers.distributed.ddp.fill_attack_cache`).
    """
    from helpers.distributed.ddp import ddp_trainer, fill_attack_cache
    from helpers.experiments import stages
    from helpers.experiments.pipeline import baseline

    prep = stages.load_prepared(profile)
    dev = env.device
    if notebook == "01":
        cfg = stages.train_config(params)
        for arch in params["MODELS"]:
            baseline(arch, prep, cfg, profile, device=str(dev), progress=env.is_main, trainer=ddp_trainer(env))
        jobs = []
    elif notebook == "02":
        _, by_arch = stages.pixle_jobs(profile, prep, stages.attack_config(params), params["N_ATTACK"],
                                       params["ATTACK_BATCH"], dev)
        jobs = list(by_arch.values())
    elif notebook == "03":
        jobs = stages.smoothing_jobs(profile, prep, stages.BlurConfig.from_params(params), params["ATTACK_BATCH"], dev)
    elif notebook == "04":
        at = (stages.train_config(params, prefix="AT_"), params["AT_INIT"], params["AT_RESTARTS"], params["AT_ITERATIONS"])
        stages.adversarial_models(profile, prep, *at, device=dev, trainer=ddp_trainer(env))
        env.barrier()   # every rank then reads the finished checkpoints (the weights rank 0 wrote)
        jobs = stages.adversarial_jobs(profile, prep, *at, params["ATTACK_BATCH"], dev)
    else:
        raise ValueError(f"--notebook {notebook}: choose one of {STAGE_NOTEBOOKS}")
    for job in jobs:
        fill_attack_cache(job, env)
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
