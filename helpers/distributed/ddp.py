"""The same stages on N processes: the Pixle loop's chunks dealt to ranks, sharded features, DDP training.

Launched by ``torchrun`` (one process per GPU, or several CPU processes), the stages give the
same results as one process:

- **Pixle evaluation** (:func:`sharded_attack`): the one dataset-attack loop,
  :func:`helpers.evaluation.attack_loop.attack_dataset`, with its chunk cache; this module only deals
  the chunks of its ``batch_size`` grid to the ranks (chunk ``j`` -> rank ``j % N``,
  :func:`rank_chunks`). Each chunk is attacked with ``ids`` = the global item indices, so every
  image's random stream, and so its adversarial image, success, queries and L0, are the same
  whatever N (:mod:`helpers.attacks.pixle` draws its randomness from (seed, image id, restart,
  iteration)). Each finished chunk is written atomically; a killed run, re-run, recomputes only
  the chunks that are missing.
- **Feature extraction** (:func:`sharded_features`): rank r extracts items r, r+N, r+2N, ...,
  writes a part file; rank 0 merges them in trial order into the file format of
  :func:`helpers.data.features.save_features`: the same tensors as one process.
- **Training** (:func:`ddp_train`): ``DistributedDataParallel`` (Li et al., "PyTorch
  Distributed: Experiences on Accelerating Data Parallel Training", VLDB 2020). The epoch's
  global batch order is the single-process permutation (``training.epoch_batches``); each global
  batch of B items is split across ranks (rank r takes positions r::N), and each rank's loss is
  weighted by ``N * B_r / B`` so that DDP's gradient average equals the gradient of the mean
  loss over the global batch, as in one process. Adversarial training makes each rank's Pixle
  examples for its part of the batch (same generator protocol as ``training.pixle_generator``).
  BatchNorm sees per-rank batch statistics unless ``sync_bn`` (``torch.nn.SyncBatchNorm``).

Item lists are split *without padding*: ``torch.utils.data.DistributedSampler`` pads the last
round with duplicates, which would count some test clips twice in accuracy, EER and bootstrap
confidence intervals. Multi-node runs need ``cache_dir`` / ``out_path`` on a filesystem every
node sees (chunks and parts are exchanged as files).

Commands (``--model MODULE:CALLABLE`` attacks a detector the library does not ship, e.g. the
tests' toy ``tests.toys:RegionModel``)::

    # one node, 2 CPU processes (gloo) or one process per GPU (NCCL)
    torchrun --standalone --nproc_per_node=2 -m helpers.distributed.ddp pixle --features toy.safetensors \\
        --model tests.toys:RegionModel --cache-dir /tmp/px
    torchrun --standalone --nproc_per_node=gpu -m helpers.distributed.ddp pixle --features test.safetensors \\
        --arch resnet18 --checkpoint resnet18-baseline.safetensors --restarts 10 --iterations 50 --cache-dir /shared/px
    # two nodes, 8 GPUs each: run on every node (c10d rendezvous; HOST:PORT = one node's address)
    torchrun --nnodes=2 --nproc_per_node=8 --rdzv-backend=c10d --rdzv-endpoint=HOST:29400 --rdzv-id=pixle1 \\
        -m helpers.distributed.ddp pixle --features test.safetensors --arch resnet50 --cache-dir /shared/px
    # features and training
    torchrun --standalone --nproc_per_node=2 -m helpers.distributed.ddp features --list clips.csv --out train.safetensors
    torchrun --standalone --nproc_per_node=2 -m helpers.distributed.ddp train --features train.safetensors \\
        --val-features val.safetensors --arch resnet18 --epochs 10 --sync-bn --checkpoint ddp.safetensors

Without ``torchrun`` (no ``WORLD_SIZE`` in the environment) every function runs as one process.
"""

from __future__ import annotations

import argparse
import copy
import csv
import json
import os
import time
from contextlib import contextmanager, nullcontext
from dataclasses import MISSING, asdict, dataclass, field, fields
from datetime import timedelta
from pathlib import Path
from typing import Callable, Iterator, Literal, Sequence

import torch
import torch.distributed as dist
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from torch import nn
from tqdm.auto import tqdm

from helpers.data.audio import AudioError
from helpers.data.features import FeatureConfig, FeatureSet, compute_features, load_features, save_features
from helpers.evaluation.attack_loop import AttackConfig, AttackJob, AttackRun, attack_cache_dir, chunk_count
from helpers.io import atomic_path, cache_key, save_json
from helpers.evaluation.metrics import accuracy
from helpers.models.detectors import ARCHS, build_model, predict
from helpers.runtime import get_device
from helpers.models.augment import make_augment
from helpers.models.training import (AdvGenerator, EarlyStop, Selection, TrainConfig, TrainResult, TwoViews, adv_maker,
                                     batch_inputs, class_weights, data_hash, epoch_batches, load_checkpoint,
                                     logits_metrics, read_checkpoint_meta, read_prefixed, reuse_finished,
                                     run_metadata, save_checkpoint, train_step)

Backend = Literal["gloo", "nccl"]


# --------------------------------------------------------------------------- process group

@dataclass(frozen=True)
class DistEnv:
    """Where this process stands: rank, world size, local rank, its device and the backend.

    ``backend is None`` means a single process without a process group: every collective below
    is then a no-op, so the same code runs with and without ``torchrun``.
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    backend: Backend | None = None

    @property
    def distributed(self) -> bool:
        return self.backend is not None and self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        """Wait for every rank (no-op in one process)."""
        if self.backend is None:
            return
        if self.backend == "nccl":
            dist.barrier(device_ids=[self.device.index or 0])
        else:
            dist.barrier()

    def close(self) -> None:
        """Destroy the process group this environment created (no-op in one process)."""
        if self.backend is not None and dist.is_initialized():
            dist.destroy_process_group()


def init_from_env(device: str | None = None, timeout_s: float = 1800.0) -> DistEnv:
    """Read ``RANK``/``WORLD_SIZE``/``LOCAL_RANK`` (set by torchrun) and join the process group.

    Backend: NCCL when the device is CUDA (``cuda:LOCAL_RANK``), gloo on the CPU. Without
    ``WORLD_SIZE`` in the environment, returns a single-process :class:`DistEnv`. ``device``
    forces a device type (``"cpu"``), else :func:`helpers.runtime.get_device` chooses.
    """
    dev = get_device(device)
    if "WORLD_SIZE" not in os.environ:
        return DistEnv(device=dev)
    try:
        rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
        local = int(os.environ.get("LOCAL_RANK", rank))
    except (KeyError, ValueError) as exc:
        raise RuntimeError(f"WORLD_SIZE is set but RANK/LOCAL_RANK are missing or not integers ({exc}); "
                           "launch with torchrun, or unset WORLD_SIZE for one process") from exc
    if dev.type == "cuda":
        dev = torch.device("cuda", local)
        torch.cuda.set_device(dev)
        backend: Backend = "nccl"
    else:
        backend = "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend, rank=rank, world_size=world, timeout=timedelta(seconds=timeout_s),
                                device_id=dev if dev.type == "cuda" else None)
    return DistEnv(rank, world, local, dev, backend)


@contextmanager
def distributed(device: str | None = None) -> Iterator[DistEnv]:
    """``with distributed() as env:`` init from the environment, destroy the group on exit."""
    env = init_from_env(device)
    try:
        yield env
    finally:
        env.close()


def cpu_threads_per_process() -> int:
    """This machine's cores divided among the processes torchrun started on it (at least 1)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    return max(1, cores // int(os.environ.get("LOCAL_WORLD_SIZE", "1")))


# --------------------------------------------------------------------------- splitting and gathering

def shard_indices(n: int, rank: int, world: int) -> torch.Tensor:
    """Items ``rank, rank + world, rank + 2 world, ...`` of ``n``: disjoint, covering, never padded."""
    if world < 1 or not 0 <= rank < world:
        raise ValueError(f"rank {rank} is not in a world of {world} processes")
    return torch.arange(rank, max(n, rank), world)


def gather_in_order(local: torch.Tensor, n: int, env: DistEnv) -> torch.Tensor:
    """Every rank's ``local`` rows (its :func:`shard_indices` items, in order) back in item order.

    Ranks hold ``ceil`` or ``floor(n / N)`` rows; each pads to the larger count, one
    ``all_gather`` moves them (gloo or NCCL), and the padding is dropped. Every rank gets the
    full ``(n, ...)`` tensor on its device. ``local`` needs the right trailing shape even when empty.
    """
    if local.shape[0] != len(shard_indices(n, env.rank, env.world_size)):
        raise ValueError(f"rank {env.rank} holds {local.shape[0]} rows, expected "
                         f"{len(shard_indices(n, env.rank, env.world_size))} of {n} items")
    if not env.distributed:
        return local
    dtype = local.dtype
    t = local.to(env.device)
    if dtype == torch.bool:
        t = t.to(torch.uint8)
    most = -(-n // env.world_size)
    if t.shape[0] < most:
        t = torch.cat([t, t.new_zeros(most - t.shape[0], *t.shape[1:])])
    parts = [torch.empty_like(t) for _ in range(env.world_size)]
    dist.all_gather(parts, t.contiguous())
    out = t.new_empty(n, *t.shape[1:])
    for r, part in enumerate(parts):
        idx = shard_indices(n, r, env.world_size)
        out[idx.to(out.device)] = part[: len(idx)]
    return out.to(dtype)


def all_sum(values: Sequence[float], env: DistEnv) -> list[float]:
    """Sum a few numbers over ranks (float64; identity in one process)."""
    t = torch.tensor(list(values), dtype=torch.float64, device=env.device)
    if env.distributed:
        dist.all_reduce(t)
    return t.tolist()


# --------------------------------------------------------------------------- the attack loop on N processes

def rank_chunks(n: int, batch_size: int, env: DistEnv) -> range:
    """The chunks of the ``batch_size`` grid over ``n`` items this rank attacks: ``r, r + N, r + 2N, ...``."""
    return range(env.rank, chunk_count(n, batch_size), env.world_size)


def fill_attack_cache(job: AttackJob, env: DistEnv, progress: bool = True,
                      on_chunk: Callable[[int, int], None] | None = None) -> None:
    """Attack this rank's chunks of ``job`` (:func:`rank_chunks`) into its shared cache, then wait for every rank.

    The one dataset-attack loop (:func:`helpers.evaluation.attack_loop.attack_dataset`) does the work; only
    the schedule is distributed. Chunks already cached are skipped, so a killed run resumes.
    """
    job.run(env.device, progress=progress and env.is_main, chunks=rank_chunks(len(job.x), job.batch_size, env),
            on_chunk=on_chunk)
    env.barrier()


def sharded_attack(job: AttackJob, env: DistEnv, progress: bool = True,
                   on_chunk: Callable[[int, int], None] | None = None) -> AttackRun:
    """:func:`fill_attack_cache`, then every rank reads the whole result from the cache (item order, CPU).

    On several nodes the job's cache folder must be on a filesystem every node sees.
    """
    fill_attack_cache(job, env, progress, on_chunk)
    return job.load()


# --------------------------------------------------------------------------- sharded features

def sharded_features(paths: Sequence[str], labels: Sequence[int], trials: Sequence[str], cfg: FeatureConfig,
                     out_path: Path, env: DistEnv | None = None, desc: str = "features",
                     on_error: Literal["error", "skip"] = "error") -> FeatureSet:
    """:func:`helpers.data.features.compute_features` on N processes; the same tensor file as one process.

    Rank r extracts items r::N (on the CPU: decoding and STFTs of single clips gain nothing from a
    GPU) and writes a part file (x, y and the items' indices) atomically; rank 0 merges the parts
    in trial order and writes ``out_path`` with :func:`helpers.data.features.save_features`. An
    existing ``out_path`` is loaded as is; existing part files of the same world size are reused.
    """
    env = env or DistEnv()
    out_path = Path(out_path)
    if out_path.exists():
        return load_features(out_path)
    n = len(paths)
    if not n == len(labels) == len(trials):
        raise ValueError(f"{n} paths, {len(labels)} labels and {len(trials)} trials: they must match")
    parts_dir = out_path.parent / f".{out_path.stem}.parts-{cache_key({'n': n, 'cfg': asdict(cfg), 't': list(trials)})}"
    part = parts_dir / f"part_{env.rank:05d}_of_{env.world_size:05d}.safetensors"
    if not part.exists():
        idx = shard_indices(n, env.rank, env.world_size).tolist()
        skipped: list[dict] = []
        x, y, kept, conv = torch.empty(0, *cfg.shape), torch.empty(0, dtype=torch.long), [], []
        if idx:
            try:
                fs = compute_features([paths[i] for i in idx], [labels[i] for i in idx], [trials[i] for i in idx],
                                      cfg, "cpu", f"{desc} (rank {env.rank})", on_error, skipped)
                bad = {s["trial"] for s in skipped}
                kept = [i for i in idx if str(trials[i]) not in bad]
                x, y, conv = fs.x, fs.y, fs.conversions
            except AudioError:
                if on_error != "skip" or len(skipped) != len(idx):   # all of this rank's clips skipped: fine
                    raise
        with atomic_path(part, suffix=".safetensors") as tmp:
            save_file({"x": x.contiguous(), "y": y.contiguous(), "index": torch.tensor(kept, dtype=torch.long)},
                      str(tmp), metadata={"conversions": json.dumps(conv), "skipped": json.dumps(skipped)})
    env.barrier()
    if env.is_main:
        xs, ys, ids, conv_all = [], [], [], []
        for r in range(env.world_size):
            p = parts_dir / f"part_{r:05d}_of_{env.world_size:05d}.safetensors"
            if not p.exists():
                raise FileNotFoundError(f"{p} is missing: on several nodes, the output folder must be shared")
            t = load_file(str(p))
            xs.append(t["x"])
            ys.append(t["y"])
            ids.append(t["index"])
            with safe_open(str(p), framework="pt") as fh:
                conv_all += json.loads(fh.metadata()["conversions"])
        index = torch.cat(ids)
        if len(index) == 0:
            raise RuntimeError(f"no usable clips for {desc} (all {n} skipped)")
        order = index.argsort()
        position = {str(t): i for i, t in reversed(list(enumerate(trials)))}
        conv_all.sort(key=lambda c: position.get(c["trial"], n))
        fs = FeatureSet(torch.cat(xs)[order], torch.cat(ys)[order], [str(trials[i]) for i in index[order].tolist()],
                        conversions=conv_all)
        save_features(out_path, fs)
        for p in parts_dir.glob("part_*.safetensors"):
            p.unlink()
        parts_dir.rmdir()
    env.barrier()
    return load_features(out_path)


# --------------------------------------------------------------------------- DDP training

@contextmanager
def _frozen_bn_stats(model: nn.Module) -> Iterator[None]:
    """BatchNorm momentum 0 for a pass: running statistics stay as they are."""
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    saved = [m.momentum for m in bns]
    for m in bns:
        m.momentum = 0.0
    try:
        yield
    finally:
        for m, mom in zip(bns, saved):
            m.momentum = mom


# TrainConfig fields the DDP loop implements; any other field must keep its default (a recipe step the
# single-process loop has and this one lacks would otherwise train a different model into the same checkpoint)
DDP_FIELDS: frozenset[str] = frozenset({"epochs", "batch_size", "lr", "momentum", "seed", "early_stop_patience",
                                        "max_batches", "schedule", "warmup_epochs", "balance", "augment",
                                        "early_stop_metric", "select"})


def check_ddp_config(cfg: TrainConfig) -> None:
    """Refuse a :class:`TrainConfig` that sets a field :func:`ddp_train` does not implement, naming it."""
    for f in fields(cfg):
        default = f.default if f.default is not MISSING else f.default_factory()  # type: ignore[misc]
        if f.name not in DDP_FIELDS and getattr(cfg, f.name) != default:
            raise NotImplementedError(f"TrainConfig.{f.name}={getattr(cfg, f.name)!r}: the DDP loop implements only "
                                      f"{sorted(DDP_FIELDS)}; train this detector in one process (run_all.py without "
                                      f"--nproc) or leave {f.name} at {default!r}")


def sharded_evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, env: DistEnv,
                     batch_size: int = 256) -> dict[str, float]:
    """``training.evaluate`` with each rank predicting its r::N items; logits gathered in order."""
    idx = shard_indices(len(x), env.rank, env.world_size)
    local = predict(model, x[idx], batch_size, env.device) if len(idx) else torch.empty(0, 2)
    logits = gather_in_order(local.float(), len(x), env).cpu()
    return logits_metrics(logits, y)


def ddp_train(arch: str, in_channels: int, train_xy: tuple[torch.Tensor, torch.Tensor],
              val_xy: tuple[torch.Tensor, torch.Tensor], cfg: TrainConfig, env: DistEnv, sync_bn: bool = False,
              checkpoint: Path | None = None, adv: AdvGenerator | None = None, meta: dict | None = None,
              init: nn.Module | None = None, progress: bool = True) -> TrainResult:
    """``training.train`` with DistributedDataParallel: the same batches, split across the ranks.

    Each global batch (the single-process order, ``training.epoch_batches``) is split by position,
    rank r taking ``batch[r::N]``; its mean loss is weighted by ``N * B_r / B`` so DDP's gradient
    average is the gradient of the global batch's mean loss. Without BatchNorm (or with
    ``sync_bn``) the weights match one process up to float rounding (``tests/test_distributed.py``
    states the tolerance); with plain BatchNorm each rank normalises with its own part's
    statistics, and DDP broadcasts rank 0's running statistics at every forward. ``adv``: each
    rank makes the adversarial examples of its part (ids = global item indices) against a frozen
    copy of the weights after the clean pass, as :func:`training.train` does. The batch preparation
    (``cfg.augment``, drawn for the global batch as one process draws it), the step and its losses
    (``cfg.balance``) are ``training``'s own (:func:`training.batch_inputs`, :func:`training.train_step`);
    ``cfg.select="val_eer"`` keeps the best validation-EER epoch (:class:`training.Selection`, as one process does:
    every rank holds the same weights and the same gathered validation metrics). Rank 0 writes ``checkpoint`` (:func:`training.save_checkpoint`)
    every epoch; a finished checkpoint is reused, an unfinished one resumed on every rank.
    ``init`` starts from given weights (any module with a 2-way output, e.g. a tiny test model).
    """
    t0 = time.perf_counter()
    x_tr, y_tr = train_xy
    x_va, y_va = val_xy
    n, world, rank = len(x_tr), env.world_size, env.rank
    if cfg.batch_size < 1:
        raise ValueError(f"batch_size must be >= 1 ({cfg.batch_size})")
    check_ddp_config(cfg)
    meta, expect = run_metadata(arch, in_channels, cfg, train_xy, adv is not None, meta,
                                distributed={"world_size": world, "sync_bn": sync_bn, "backend": env.backend})
    torch.manual_seed(cfg.seed)
    if init is not None:
        model = copy.deepcopy(init)
    elif arch in ARCHS:
        stem = {"stem": meta["stem"]} if "stem" in meta else {}   # the stem training.run_metadata recorded
        model = build_model(arch, in_channels, seed=cfg.seed, **stem)  # type: ignore[arg-type]
    else:
        raise ValueError(f"unknown architecture {arch!r}; choose from {ARCHS} or pass init=")
    model = model.to(env.device).to(memory_format=torch.channels_last)
    if sync_bn and env.distributed:
        if env.device.type == "cpu":
            raise ValueError("sync_bn: torch.nn.SyncBatchNorm runs only on GPUs (its forward refuses CPU tensors); "
                             "train without it on the CPU (per-rank BatchNorm statistics) or on GPUs")
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    history: list[dict] = []
    start = 0
    best_state = None
    found = checkpoint is not None and Path(checkpoint).exists()
    if found and read_checkpoint_meta(checkpoint).get("complete"):   # a finished run: its weights, no optimizer
        return reuse_finished(checkpoint, model, expect, t0)
    opt = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum)
    if found:
        prev = load_checkpoint(checkpoint, model, opt, expect=expect)
        history, start = prev.get("history", []), int(prev.get("epoch", 0))
        best_state = read_prefixed(checkpoint, "best.")
    selection = Selection(cfg.select, best_state)
    selected = None
    wrapped: nn.Module = TwoViews(model)        # training.train's step module, here inside DDP
    if env.distributed:
        ids = [env.device.index] if env.device.type == "cuda" else None
        wrapped = nn.parallel.DistributedDataParallel(wrapped, device_ids=ids)
    frozen = copy.deepcopy(model).eval() if adv is not None else None
    stopper = EarlyStop(cfg.early_stop_patience, history, cfg.early_stop_metric)
    augment = make_augment(cfg.augment, meta.get("features"))
    weight = class_weights(y_tr).to(env.device) if cfg.balance == "weighted" else None
    for epoch in range(start, cfg.epochs):
        wrapped.train()
        batches = epoch_batches(n, cfg, epoch)
        sums = torch.zeros(5, dtype=torch.float64)   # loss, correct, n, adv_loss, adv_correct
        bar = tqdm(batches, desc=f"{arch} epoch {epoch + 1}/{cfg.epochs} (rank {rank})", leave=False,
                   disable=not (progress and env.is_main))
        for b, gidx in enumerate(bar):
            for group in opt.param_groups:      # the same learning-rate schedule as training.train
                group["lr"] = cfg.lr_at(epoch * len(batches) + b, len(batches))
            # the global batch as one process makes it (same augmentation draws), then this rank's positions
            xg = batch_inputs(x_tr, gidx, cfg, epoch, b, env.device, augment)
            pos = torch.arange(rank, len(gidx), world)
            empty = len(pos) == 0       # a last batch smaller than the world size
            if empty:                   # a stand-in item: every rank joins the step (its loss counts 0)
                pos = torch.zeros(1, dtype=torch.long)
            idx = gidx[pos]
            xb = xg[pos.to(xg.device)].contiguous(memory_format=torch.channels_last)
            yb = y_tr[idx].to(env.device)
            # this rank's share of the global batch's (weighted) mean loss: DDP's gradient average is then its gradient
            share = float(weight[yb].sum() / weight[y_tr[gidx].to(env.device)].sum()) if weight is not None \
                else len(idx) / len(gidx)
            scale = 0.0 if empty else world * share
            make_adv = None if adv is None else adv_maker(adv, frozen, model, xb, yb, idx, epoch)
            with _frozen_bn_stats(model) if empty else nullcontext():
                loss, adv_loss, logits, logits_adv = train_step(wrapped, opt, xb, yb, weight, make_adv, scale)
            if not empty:
                sums += torch.tensor([loss.item() * len(idx), int((logits.argmax(1) == yb).sum()), len(idx),
                                      adv_loss.item() * len(idx) if adv_loss is not None else 0.0,
                                      int((logits_adv.argmax(1) == yb).sum()) if logits_adv is not None else 0],
                                     dtype=torch.float64)
        loss_sum, correct, count, adv_sum, adv_correct = all_sum(sums.tolist(), env)
        val = sharded_evaluate(model, x_va, y_va, env)
        row = {"epoch": epoch + 1, "train_loss": loss_sum / count, "train_accuracy": correct / count,
               "val_loss": val["loss"], "val_accuracy": val["accuracy"], "val_eer": val["eer"]}
        if adv is not None:
            row.update({"train_adv_loss": adv_sum / count, "train_adv_accuracy": adv_correct / count})
        history.append(row)
        stop = stopper.update(row[cfg.early_stop_metric])
        done = stop or epoch + 1 == cfg.epochs
        selected = selection.after_epoch(model, history, done)
        if checkpoint is not None and env.is_main:
            save_checkpoint(checkpoint, model, opt, {**meta, "epoch": epoch + 1, "history": history,
                                                     "complete": done, "early_stopped": stop,
                                                     "selected_epoch": selected}, selection.extra(done))
        env.barrier()
        if progress and env.is_main:
            print(f"{arch} epoch {epoch + 1} ({world} processes): "
                  + ", ".join(f"{k}={v:.4f}" for k, v in row.items() if k != "epoch"))
        if stop:
            break
    return TrainResult(model.eval(), history, start, False, time.perf_counter() - t0,
                       Path(checkpoint) if checkpoint else None, selected)


def ddp_trainer(env: DistEnv, sync_bn: bool = False) -> Callable[..., TrainResult]:
    """:func:`ddp_train` behind :func:`helpers.models.training.train`'s signature, so a stage's own training
    call (:func:`helpers.experiments.pipeline.baseline`, ``adversarial``) runs on every rank unchanged."""

    def trainer(arch: str, in_channels: int, train_xy: tuple[torch.Tensor, torch.Tensor],
                val_xy: tuple[torch.Tensor, torch.Tensor], cfg: TrainConfig, checkpoint: Path | None = None,
                meta: dict | None = None, adv: AdvGenerator | None = None, init: nn.Module | None = None,
                device: torch.device | str | None = None, progress: bool = True) -> TrainResult:
        # device: this rank's (env.device), whatever the caller's single-process default
        return ddp_train(arch, in_channels, train_xy, val_xy, cfg, env, sync_bn=sync_bn, checkpoint=checkpoint,
                         adv=adv, meta=meta, init=init, progress=progress and env.is_main)

    return trainer


# --------------------------------------------------------------------------- CLI

def load_factory(spec: str) -> Callable[[], nn.Module]:
    """``"package.module:name"`` -> that callable (``--model``: a detector the library does not ship, e.g. a test's toy)."""
    import importlib

    module, _, name = spec.partition(":")
    if not module or not name:
        raise ValueError(f"--model {spec!r}: write MODULE:CALLABLE, e.g. tests.toys:RegionModel")
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as exc:
        raise ValueError(f"--model {spec!r}: cannot import {name} from {module} ({exc}); run from the repository "
                         "root, or put the module on PYTHONPATH") from exc


def model_hash(model: nn.Module) -> str:
    """A short hash of the weights and buffers (the CLI's attack cache key; its train summary)."""
    state = model.state_dict()
    return data_hash(*(state[k] for k in sorted(state))) if state else type(model).__name__


def _model(args: argparse.Namespace, channels: int, env: DistEnv) -> nn.Module:
    if args.model:
        return load_factory(args.model)().to(env.device).eval()
    # the stem a checkpoint was trained with is in its metadata (the high-resolution features use the ImageNet stem)
    stem = read_checkpoint_meta(Path(args.checkpoint)).get("stem", "cifar") if args.checkpoint else "cifar"
    model = build_model(args.arch, channels, seed=args.seed, stem=stem)
    if args.checkpoint:
        load_checkpoint(Path(args.checkpoint), model, expect={"arch": args.arch, "in_channels": channels})
    return model.to(env.device).eval().to(memory_format=torch.channels_last)


def _data(args: argparse.Namespace) -> tuple[torch.Tensor, torch.Tensor]:
    fs = load_features(Path(args.features))
    x, y = fs.x, fs.y
    if args.limit:
        x, y = x[: args.limit], y[: args.limit]
    return x, y


def _cmd_pixle(args: argparse.Namespace, env: DistEnv) -> dict:
    x, y = _data(args)
    model = _model(args, x.shape[1], env)
    if args.attack_predictions:   # e.g. random images: attack the model's own decisions
        y = predict(model, x, 256, env.device).argmax(1).cpu()
    cfg = AttackConfig(restarts=args.restarts, max_iterations=args.iterations, x_dimensions=tuple(args.x_dim),
                       y_dimensions=tuple(args.y_dim), seed=args.seed, target_batch=args.target_batch)
    folder = attack_cache_dir(Path(args.cache_dir), args.model or args.arch, cfg, "none",
                              model_hash(model) + data_hash(x, y))
    job = AttackJob(model, x, y, cfg, folder, args.shard_size, tag=f"(rank {env.rank})")
    done = [0]

    def count(start: int, end: int) -> None:
        done[0] += 1
        if args.exit_after_shards is not None and env.rank == args.exit_rank and done[0] >= args.exit_after_shards:
            print(f"rank {env.rank}: exiting on purpose after chunk [{start}, {end})", flush=True)
            os._exit(17)   # fault injection: the rank told to fail dies without clean-up

    t0, cpu0 = time.perf_counter(), time.process_time()
    r = sharded_attack(job, env, progress=not args.quiet, on_chunk=count)
    seconds = time.perf_counter() - t0
    computed, cpu_s = all_sum([done[0], time.process_time() - cpu0], env)   # CPU seconds: robust to a busy machine
    adv_pred = predict(model, r.adv, 256, env.device).argmax(1).cpu()
    return {"stage": "pixle", "n": len(x), "world_size": env.world_size, "seconds": seconds, "cpu_s": cpu_s,
            "cache_dir": str(folder), "computed_chunks": int(computed),
            "reused_chunks": chunk_count(len(x), args.shard_size) - int(computed),
            "success_rate": float(r.success.float().mean()), "mean_queries": float(r.queries.float().mean()),
            "mean_l0": float(r.l0.float().mean()), "adv_accuracy": accuracy(y.cpu(), adv_pred),
            "adv_sha": data_hash(r.adv, r.success, r.queries, r.l0)}


def _cmd_features(args: argparse.Namespace, env: DistEnv) -> dict:
    with open(args.list, newline="") as fh:
        rows = list(csv.DictReader(fh))
    for i, row in enumerate(rows):
        if not {"path", "label", "trial"} <= set(row):
            raise ValueError(f"{args.list} line {i + 2}: needs columns path,label,trial (has {sorted(row)})")
    cfg = FeatureConfig(name=args.feature, size=args.size)
    t0 = time.perf_counter()
    fs = sharded_features([r["path"] for r in rows], [int(r["label"]) for r in rows], [r["trial"] for r in rows],
                          cfg, Path(args.out), env)
    return {"stage": "features", "n": len(fs), "world_size": env.world_size, "seconds": time.perf_counter() - t0,
            "out": args.out, "sha": data_hash(fs.x, fs.y)}


def _cmd_train(args: argparse.Namespace, env: DistEnv) -> dict:
    x, y = _data(args)
    if args.val_features:
        v = load_features(Path(args.val_features))
        xv, yv = v.x, v.y
    else:
        xv, yv = x[: max(1, len(x) // 4)], y[: max(1, len(y) // 4)]
    cfg = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, seed=args.seed,
                      max_batches=args.max_batches)
    adv = None
    if args.adv_restarts:
        from helpers.models.training import pixle_generator

        adv = pixle_generator({"x_dimensions": tuple(args.x_dim), "y_dimensions": tuple(args.y_dim),
                               "restarts": args.adv_restarts, "max_iterations": args.adv_iterations}, args.seed)
    res = ddp_train(args.arch, x.shape[1], (x, y), (xv, yv), cfg, env, sync_bn=args.sync_bn,
                    checkpoint=Path(args.checkpoint) if args.checkpoint else None, adv=adv, progress=not args.quiet)
    return {"stage": "train", "n": len(x), "world_size": env.world_size, "seconds": res.seconds,
            "history": res.history, "weights_sha": model_hash(res.model)}


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m helpers.distributed.ddp", description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("stage", choices=("pixle", "features", "train"))
    ap.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads per process (default: cores / processes)")
    ap.add_argument("--json", default=None, help="rank 0 writes the summary here")
    ap.add_argument("--quiet", action="store_true")
    ap.add_argument("--seed", type=int, default=0)
    data = ap.add_argument_group("data (pixle, train)")
    data.add_argument("--features", default=None, help="a features safetensors file (x, y)")
    data.add_argument("--size", type=int, default=32, help="features' image size (features stage)")
    data.add_argument("--limit", type=int, default=None, help="first N items only")
    data.add_argument("--attack-predictions", action="store_true",
                      help="pixle: attack the model's own decisions instead of the file's labels")
    mod = ap.add_argument_group("model")
    mod.add_argument("--arch", default="resnet18", choices=ARCHS)
    mod.add_argument("--model", default=None, metavar="MODULE:CALLABLE",
                     help="pixle: build the detector by calling this instead of --arch (e.g. tests.toys:RegionModel)")
    mod.add_argument("--checkpoint", default=None, help="pixle: weights to load; train: checkpoint to write/resume")
    atk = ap.add_argument_group("pixle")
    atk.add_argument("--restarts", type=int, default=10)
    atk.add_argument("--iterations", type=int, default=50)
    atk.add_argument("--x-dim", type=float, nargs=2, default=(0.1, 0.2))
    atk.add_argument("--y-dim", type=int, nargs=2, default=(2, 10))
    atk.add_argument("--target-batch", type=int, default=None)
    atk.add_argument("--shard-size", type=int, default=64, help="items per cached chunk (rank r attacks chunks r, r+N, ...)")
    atk.add_argument("--cache-dir", default=None, help="the attack cache's parent (default: a temporary folder)")
    atk.add_argument("--exit-after-shards", type=int, default=None, help="fault injection: --exit-rank exits after K chunks")
    atk.add_argument("--exit-rank", type=int, default=1)
    feat = ap.add_argument_group("features")
    feat.add_argument("--list", default=None, help="CSV with columns path,label,trial")
    feat.add_argument("--feature", default="thesis_rgb32", choices=("thesis_rgb32", "logspec"))
    feat.add_argument("--out", default=None)
    tr = ap.add_argument_group("train")
    tr.add_argument("--val-features", default=None)
    tr.add_argument("--epochs", type=int, default=1)
    tr.add_argument("--batch-size", type=int, default=16)
    tr.add_argument("--lr", type=float, default=1e-3)
    tr.add_argument("--max-batches", type=int, default=None)
    tr.add_argument("--sync-bn", action="store_true")
    tr.add_argument("--adv-restarts", type=int, default=0, help="adversarial training: Pixle restarts (0 = plain)")
    tr.add_argument("--adv-iterations", type=int, default=5)
    args = ap.parse_args(argv)
    if args.stage == "features" and not (args.list and args.out):
        ap.error("features needs --list and --out")
    if args.stage in ("pixle", "train") and not args.features:
        ap.error(f"{args.stage} needs --features (a features safetensors file, e.g. from the features stage)")
    if args.stage == "train" and args.model:
        ap.error("train builds --arch (resnet18 or resnet50); --model is for pixle")
    torch.set_num_threads(args.threads or cpu_threads_per_process())
    with distributed(args.device) as env:
        if args.stage == "pixle" and args.cache_dir is None:
            import tempfile

            args.cache_dir = tempfile.mkdtemp(prefix="pixle-shards-") if env.world_size == 1 else None
            if args.cache_dir is None:
                raise SystemExit("pixle on several processes needs --cache-dir (a folder every rank sees)")
        summary = {"pixle": _cmd_pixle, "features": _cmd_features, "train": _cmd_train}[args.stage](args, env)
        summary.update({"device": str(env.device), "backend": env.backend, "threads": torch.get_num_threads()})
        if env.is_main:
            print(json.dumps(summary))
            if args.json:
                save_json(Path(args.json), summary)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
