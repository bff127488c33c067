"""The thesis's conditions, evaluated non-adaptively (as the thesis did) and adaptively.

For each detector: baseline clean; baseline under Pixle; smoothing under Pixle; adversarial
training clean; adversarial training under Pixle; adversarial training + smoothing under Pixle.
*Non-adaptive* (the thesis): Pixle attacks the bare model, the blur is applied afterwards.
*Adaptive* (Carlini et al. 2019; Tramer et al. 2020): Pixle queries the defended pipeline
(``Defended(model, blur)``), as any black-box attacker can.

Every condition becomes one JSON record with summary metrics and the per-clip arrays (labels,
predictions, scores, queries, L0) from which :mod:`helpers.reporting.report` computes bootstrap CIs.
Adversarial examples are cached per parameters in chunks, so an interrupted attack resumes.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from helpers.attacks.pixle import Pixle
from helpers.io import atomic_path, cache_key, quarantine, read_or_quarantine
from helpers.evaluation.metrics import accuracy, balanced_accuracy, bonafide_score, eer


@dataclass(frozen=True)
class AttackConfig:
    """Pixle's parameters (the thesis: x_dimensions=(0.1, 0.2), restarts=10, max_iterations=50)."""

    restarts: int = 10
    max_iterations: int = 50
    x_dimensions: tuple = (0.1, 0.2)
    y_dimensions: tuple = (2, 10)      # torchattacks' default, which the thesis kept (pixels)
    pixel_mapping: str = "random"
    seed: int = 2022
    block: int | None = None
    target_batch: int | None = None   # None: the attack picks 64 on CPU, 4096 on GPU
    amp: bool = False

    def kwargs(self) -> dict:
        d = asdict(self)
        d.pop("seed")
        d["x_dimensions"], d["y_dimensions"] = tuple(self.x_dimensions), tuple(self.y_dimensions)
        return d

    def key_fields(self) -> dict:
        """What changes the result (block, target_batch and amp-free runs give identical images)."""
        d = asdict(self)
        for k in ("block", "target_batch"):
            d.pop(k)
        return d


@dataclass
class AttackRun:
    adv: torch.Tensor
    success: torch.Tensor
    queries: torch.Tensor
    l0: torch.Tensor
    seconds: float = 0.0
    from_cache: bool = False
    extra: dict = field(default_factory=dict)


_CHUNK_RE = re.compile(r"^chunk_(\d+)_(\d+)\.safetensors$")
_FIELDS = ("adv", "success", "queries", "l0")


def chunk_ranges(folder: str | Path) -> list[tuple[int, int, Path]]:
    """The (start, end, file) ranges cached in ``folder``, from the chunk file names, sorted."""
    out = []
    for f in Path(folder).glob("chunk_*.safetensors"):
        m = _CHUNK_RE.match(f.name)
        if m:
            out.append((int(m.group(1)), int(m.group(2)), f))
    return sorted(out)


def _assemble(folder: Path | None, n: int) -> tuple[dict[str, torch.Tensor] | None, torch.Tensor]:
    """Per-item results from every readable cached chunk within [0, n), and which items they cover.

    Chunks are placed by the ranges their names record, never concatenated blindly: a cache filled
    with another ``ATTACK_BATCH`` holds other (possibly overlapping) ranges, and each item is taken
    once. Results are per-item deterministic, so any chunk holding an item holds the same values.
    """
    have = torch.zeros(n, dtype=torch.bool)
    out: dict[str, torch.Tensor] | None = None
    if folder is None or not Path(folder).is_dir():
        return out, have
    for start, end, f in chunk_ranges(folder):
        if end > n or bool(have[start:end].all()):
            continue
        part = read_or_quarantine(f, lambda q: load_file(str(q)))
        if part is None or any(k not in part or len(part[k]) != end - start for k in _FIELDS):
            if part is not None:
                quarantine(f, ValueError(f"chunk holds {len(part.get('adv', []))} items, its name says {end - start}"))
            continue
        if out is None:
            out = {k: torch.zeros((n, *part[k].shape[1:]), dtype=part[k].dtype) for k in _FIELDS}
        new = ~have[start:end]
        for k in _FIELDS:
            out[k][start:end][new] = part[k][new]
        have[start:end] = True
    return out, have


def _runs(missing: torch.Tensor, batch_size: int) -> list[tuple[int, int]]:
    """Contiguous ranges of missing items, cut into pieces of at most ``batch_size``."""
    idx = missing.nonzero().flatten().tolist()
    ranges: list[tuple[int, int]] = []
    for i in idx:
        if ranges and ranges[-1][1] == i and ranges[-1][1] - ranges[-1][0] < batch_size:
            ranges[-1] = (ranges[-1][0], i + 1)
        else:
            ranges.append((i, i + 1))
    return ranges


def _aligned(start: int, end: int, size: int) -> list[tuple[int, int]]:
    """[start, end) cut at multiples of ``size`` (so chunks never straddle two shards' grids)."""
    cuts = [start] + list(range((start // size + 1) * size, end, size)) + [end]
    return [(a, b) for a, b in zip(cuts, cuts[1:]) if b > a]


def _reseedable(model: nn.Module):
    """The random preprocessing of a defended model (e.g. a blur with a random sigma), if it can be reseeded."""
    pre = getattr(model, "preprocess", None)
    return pre if pre is not None and hasattr(pre, "reseed") else None


def attack_dataset(model: nn.Module, x: torch.Tensor, y: torch.Tensor, cfg: AttackConfig, cache_dir: Path | None,
                   batch_size: int = 64, device: torch.device | str = "cpu", progress: bool = True,
                   tag: str = "", chunks: Iterable[int] | None = None,
                   on_chunk: Callable[[int, int], None] | None = None) -> AttackRun | None:
    """Run batched Pixle over a dataset in chunks; each finished chunk is cached atomically.

    Items already held by the cache (under any chunking) are reused; only the missing ones are
    attacked, so an interrupted run resumes and a changed ``batch_size`` recomputes nothing.

    ``chunks`` (a scheduler's hook; :mod:`helpers.distributed.ddp` deals them to the processes): attack
    only the missing items of these chunks of the ``batch_size`` grid (chunk ``j`` = items
    ``[j*batch_size, (j+1)*batch_size)``), write them to ``cache_dir`` and return None; a later call
    without ``chunks`` reads them all. Pixle's randomness depends on (seed, item, restart, iteration)
    only, so the images are the same whatever the chunks' schedule. A defense with its own randomness
    (a blur drawing its sigma per call) is reseeded per chunk of the fixed ``batch_size`` grid, so its
    draws, and the images, do not depend on the schedule or on where a run was interrupted; they do
    depend on ``batch_size`` and Pixle's ``target_batch`` (callers put both in the cache key of such a
    defense). ``on_chunk(start, end)`` runs after each chunk is written (tests use it to stop a process).
    """
    import time

    from helpers.progress import progress_iter

    t0 = time.perf_counter()
    n = len(x)
    cached, have = _assemble(Path(cache_dir) if cache_dir else None, n)
    stochastic = _reseedable(model)
    if chunks is not None:
        if cache_dir is None:
            raise ValueError("attack_dataset(chunks=...) writes its chunks for a later call to read: give a cache_dir")
        mine = torch.zeros(n, dtype=torch.bool)
        for j in chunks:
            mine[j * batch_size:(j + 1) * batch_size] = True
        have = have | ~mine
    todo = _runs(~have, batch_size)
    if chunks is not None or stochastic is not None:
        todo = [(a, b) for a0, b0 in todo for a, b in _aligned(a0, b0, batch_size)]
    attack = Pixle(model, seed=cfg.seed, skip_misclassified=True, **cfg.kwargs())
    parts: list[tuple[int, int, dict[str, torch.Tensor]]] = []
    for start, end in progress_iter(todo, desc=f"Pixle {tag}".strip(), unit="chunks", enabled=progress):
        ids = torch.arange(start, end)
        if stochastic is not None:   # a random defense draws from a stream restarted per chunk of the fixed grid
            stochastic.reseed(cfg.seed * 1_000_003 + start // batch_size)
        res = attack(x[start:end].to(device), y[start:end].to(device), ids=ids.to(device)).cpu()
        part = {"adv": res.adv.contiguous(), "success": res.success.to(torch.uint8), "queries": res.queries,
                "l0": res.l0}
        if cache_dir is not None:
            f = Path(cache_dir) / f"chunk_{start:06d}_{end:06d}.safetensors"
            with atomic_path(f, suffix=".safetensors") as tmp:
                save_file(part, str(tmp))
        if on_chunk is not None:
            on_chunk(start, end)
        parts.append((start, end, part))
    if chunks is not None:
        return None
    if cached is None:
        first = parts[0][2]
        cached = {k: torch.zeros((n, *first[k].shape[1:]), dtype=first[k].dtype) for k in _FIELDS}
    for start, end, part in parts:
        for k in _FIELDS:
            cached[k][start:end] = part[k]
    return AttackRun(cached["adv"], cached["success"].bool(), cached["queries"], cached["l0"],
                     time.perf_counter() - t0, from_cache=not todo)


def chunk_count(n: int, batch_size: int) -> int:
    """How many chunks of ``batch_size`` items cover ``n`` items (the grid :func:`attack_dataset` caches)."""
    return -(-n // batch_size)


@dataclass
class AttackJob:
    """One cached dataset attack: the detector, the items, Pixle's settings, the cache and its chunk grid.

    A stage lists the attacks it needs as jobs; one process runs each with :meth:`run`, a scheduler
    (:func:`helpers.distributed.ddp.fill_attack_cache`) deals each job's chunks to several processes.
    """

    model: nn.Module
    x: torch.Tensor
    y: torch.Tensor
    config: AttackConfig
    cache_dir: Path
    batch_size: int = 64
    tag: str = ""

    def run(self, device: torch.device | str = "cpu", progress: bool = True, chunks: Iterable[int] | None = None,
            on_chunk: Callable[[int, int], None] | None = None) -> AttackRun | None:
        """:func:`attack_dataset` on this job (``chunks``: only those, into the cache, returning None)."""
        return attack_dataset(self.model, self.x, self.y, self.config, self.cache_dir, self.batch_size, device,
                              progress, self.tag, chunks, on_chunk)

    def load(self) -> AttackRun:
        """Every item's result from the cache (after every chunk was attacked)."""
        return load_attack(self.cache_dir, len(self.x))


def load_attack(folder: str | Path, n: int | None = None) -> AttackRun:
    """The adversarial examples an earlier :func:`attack_dataset` run cached in ``folder`` (all ``n`` items)."""
    ranges = chunk_ranges(folder)
    if not ranges:
        raise FileNotFoundError(f"no cached adversarial examples in {folder}; run the notebook that attacks first")
    n = n if n is not None else max(end for _, end, _ in ranges)
    cat, have = _assemble(Path(folder), n)
    if cat is None or not bool(have.all()):
        missing = (~have).nonzero().flatten().tolist()
        raise FileNotFoundError(f"{folder} lacks adversarial examples for items {missing[:5]}"
                                f"{'...' if len(missing) > 5 else ''}; re-run the notebook that attacks")
    return AttackRun(cat["adv"], cat["success"].bool(), cat["queries"], cat["l0"], 0.0, True)


def attack_cache_dir(root: Path, model_tag: str, cfg: AttackConfig, defense: str, data_key: str) -> Path:
    """``root/adv/<model>-<defense>-<key>``: the key covers the attack parameters and the attacked data."""
    tag = re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{model_tag}-{defense}").strip("_")
    return Path(root) / "adv" / f"{tag}-{cache_key({'a': cfg.key_fields(), 'd': data_key, 'defense': defense})}"


def record(model_name: str, condition: str, evaluation: str, y: torch.Tensor, logits: torch.Tensor,
           clean_logits: torch.Tensor | None = None, run: AttackRun | None = None,
           attacked: torch.Tensor | None = None, **extra) -> dict:
    """One condition's summary metrics plus per-clip arrays (for CIs, DET curves and the explorer).

    ``attacked`` marks the clips the attack worked on: by default those it spent more than one query on
    (every attack here skips a clip its first query finds misclassified).
    For the non-adaptive defenses Pixle attacked the *bare* model, so the caller passes the bare
    model's correct clips: attack success, queries and L0 are averaged over those clips, not over
    the clips the defended model happens to get right.
    """
    pred = logits.argmax(1)
    score = bonafide_score(logits)
    rec = {"model": model_name, "condition": condition, "evaluation": evaluation,
           "accuracy": accuracy(y, pred), "balanced_accuracy": balanced_accuracy(y, pred), "eer": eer(y, score),
           "n": int(len(y))}
    per_clip = {"y": y.tolist(), "pred": pred.tolist(), "score": score.tolist()}
    if clean_logits is not None:
        cpred = clean_logits.argmax(1)
        rec["clean_accuracy"] = accuracy(y, cpred)
        per_clip["pred_clean"] = cpred.tolist()
    if run is not None:
        if attacked is None:   # the clips the attack worked on: it skips those its first query finds misclassified
            attacked = run.queries > 1
        attacked = attacked.bool().cpu()
        rec["attack_success_rate"] = float((pred[attacked] != y[attacked]).float().mean()) if attacked.any() else float("nan")
        per_clip["attacked"] = attacked.int().tolist()
        rec["queries"] = float(run.queries[attacked].float().mean()) if attacked.any() else float("nan")
        rec["l0"] = float(run.l0[attacked].float().mean()) if attacked.any() else float("nan")
        rec["attack_seconds"] = run.seconds
        per_clip.update({"queries": run.queries.tolist(), "l0": run.l0.tolist()})
    rec.update(extra)
    rec["per_clip"] = per_clip
    return rec


def robust_accuracy_curve(y: torch.Tensor, clean_pred: torch.Tensor, run: AttackRun, budgets: list[int]) -> list[float]:
    """Accuracy if the same attack had stopped after ``b`` candidates (exact: candidates are a fixed sequence)."""
    y, clean_pred = y.cpu(), clean_pred.cpu()
    fell_at = torch.where(run.success, run.queries - 1, torch.full_like(run.queries, 10**9))
    correct_clean = clean_pred == y
    return [float((correct_clean & (fell_at > b)).float().mean()) for b in budgets]


__all__ = ["AttackConfig", "AttackRun", "AttackJob", "attack_dataset", "chunk_count", "attack_cache_dir", "load_attack", "record",
           "robust_accuracy_curve"]
