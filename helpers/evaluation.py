"""The thesis's conditions, evaluated non-adaptively (as the thesis did) and adaptively.

For each detector: baseline clean; baseline under Pixle; smoothing under Pixle; adversarial
training clean; adversarial training under Pixle; adversarial training + smoothing under Pixle.
*Non-adaptive* (the thesis): Pixle attacks the bare model, the blur is applied afterwards.
*Adaptive* (Carlini et al. 2019; Tramer et al. 2020): Pixle queries the defended pipeline
(``Defended(model, blur)``), as any black-box attacker can.

Every condition becomes one JSON record with summary metrics and the per-clip arrays (labels,
predictions, scores, queries, L0) from which :mod:`helpers.report` computes bootstrap CIs.
Adversarial examples are cached per parameters in chunks, so an interrupted attack resumes.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn
from tqdm.auto import tqdm

from helpers.attacks import Pixle
from helpers.io import atomic_path, cache_key
from helpers.metrics import (accuracy, attack_success_rate, balanced_accuracy, bonafide_score, eer)


@dataclass(frozen=True)
class AttackConfig:
    """Pixle's parameters (the thesis: x_dimensions=(0.1, 0.2), restarts=10, max_iterations=50)."""

    restarts: int = 10
    max_iterations: int = 50
    x_dimensions: tuple = (0.1, 0.2)
    y_dimensions: tuple = (0.1, 0.2)   # torchattacks' default is (2, 10) pixels; see the profiles
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


def attack_dataset(model: nn.Module, x: torch.Tensor, y: torch.Tensor, cfg: AttackConfig, cache_dir: Path | None,
                   batch_size: int = 64, device: torch.device | str = "cpu", progress: bool = True,
                   tag: str = "") -> AttackRun:
    """Run batched Pixle over a dataset in chunks; each finished chunk is cached atomically."""
    import time

    t0 = time.perf_counter()
    chunks = []
    from_cache = True
    attack = Pixle(model, seed=cfg.seed, skip_misclassified=True, **cfg.kwargs())
    n = len(x)
    for start in tqdm(range(0, n, batch_size), desc=f"Pixle {tag}".strip(), unit="batch", disable=not progress):
        end = min(n, start + batch_size)
        f = Path(cache_dir) / f"chunk_{start:06d}_{end:06d}.safetensors" if cache_dir else None
        if f is not None and f.exists():
            chunks.append(load_file(str(f)))
            continue
        from_cache = False
        ids = torch.arange(start, end)
        res = attack(x[start:end].to(device), y[start:end].to(device), ids=ids.to(device)).cpu()
        part = {"adv": res.adv.contiguous(), "success": res.success.to(torch.uint8), "queries": res.queries,
                "l0": res.l0}
        if f is not None:
            with atomic_path(f, suffix=".safetensors") as tmp:
                save_file(part, str(tmp))
        chunks.append(part)
    cat = {k: torch.cat([c[k] for c in chunks]) for k in chunks[0]}
    return AttackRun(cat["adv"], cat["success"].bool(), cat["queries"], cat["l0"], time.perf_counter() - t0, from_cache)


def load_attack(folder: str | Path) -> AttackRun:
    """The adversarial examples an earlier :func:`attack_dataset` run cached in ``folder``."""
    files = sorted(Path(folder).glob("chunk_*.safetensors"))
    if not files:
        raise FileNotFoundError(f"no cached adversarial examples in {folder}; run the notebook that attacks first")
    chunks = [load_file(str(f)) for f in files]
    cat = {k: torch.cat([c[k] for c in chunks]) for k in chunks[0]}
    return AttackRun(cat["adv"], cat["success"].bool(), cat["queries"], cat["l0"], 0.0, True)


def attack_cache_dir(root: Path, model_tag: str, cfg: AttackConfig, defense: str, data_key: str) -> Path:
    """``root/adv/<model>-<defense>-<key>``: the key covers the attack parameters and the attacked data."""
    tag = re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{model_tag}-{defense}").strip("_")
    return Path(root) / "adv" / f"{tag}-{cache_key({'a': cfg.key_fields(), 'd': data_key, 'defense': defense})}"


def record(model_name: str, condition: str, evaluation: str, y: torch.Tensor, logits: torch.Tensor,
           clean_logits: torch.Tensor | None = None, run: AttackRun | None = None, **extra) -> dict:
    """One condition's summary metrics plus per-clip arrays (for CIs, DET curves and the explorer)."""
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
            rec["attack_success_rate"] = attack_success_rate(y, cpred, pred)
    if run is not None:
        attacked = (clean_logits.argmax(1) == y) if clean_logits is not None else torch.ones_like(y, dtype=torch.bool)
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


__all__ = ["AttackConfig", "AttackRun", "attack_dataset", "attack_cache_dir", "load_attack", "record",
           "robust_accuracy_curve"]
