"""One training loop for every detector: plain (the thesis baselines) and adversarial.

SGD with momentum and cross-entropy, as in the thesis. Adversarial training plugs in an example
generator: each batch, Pixle examples are generated against a frozen copy of the current model and
the loss is ``CE(clean) + CE(adversarial)`` (the thesis's recipe). Every epoch ends with an atomic
checkpoint: model weights, optimizer state and metadata (architecture, feature setting, training
parameters, data hash, epoch, per-epoch metrics) in one safetensors file, so an interrupted run
resumes from its last finished epoch and ends with the same weights as an uninterrupted one
(shuffling and attack randomness are seeded per epoch).
"""

from __future__ import annotations

import copy
import hashlib
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Protocol

import torch
import torch.nn.functional as F
from safetensors import safe_open
from safetensors.torch import save_file
from torch import nn

from helpers.io import atomic_path, read_or_quarantine, save_json
from helpers.evaluation.metrics import accuracy, bonafide_score, eer
from helpers.progress import progress_iter, report
from helpers.models.augment import Transform, batch_generator, make_augment
from helpers.models.detectors import MODEL_VERSION, Detector, build_model, predict


class CheckpointMismatchError(ValueError):
    """A checkpoint made for another architecture, feature setting or data."""


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 10
    batch_size: int = 16
    lr: float = 1e-3
    momentum: float = 0.9
    seed: int = 2022
    early_stop_patience: int | None = None   # epochs without val-loss improvement; None = off
    max_batches: int | None = None           # cap per epoch (smoke profile)
    schedule: str = "constant"               # constant (the thesis) or cosine: lr decays to 0 over the run
    warmup_epochs: float = 0.0               # linear warm-up from lr/10 (a large lr without it diverges)
    balance: str = "none"                    # none (the thesis) or weighted: cross-entropy weighted n / (2 n_class)
    select: str = "last"                     # last (the thesis) or val_eer: keep the epoch with the lowest val EER
    early_stop_metric: str = "val_loss"      # what early_stop_patience watches: val_loss or val_eer
    augment: str = "none"                    # '+'-joined image augmentations (helpers.models.augment), none = off

    def lr_at(self, step: int, steps_per_epoch: int) -> float:
        """The learning rate of optimiser step ``step``: a pure function of the step, so a resumed run
        continues on exactly the same schedule."""
        total, warm = max(1, self.epochs * steps_per_epoch), self.warmup_epochs * steps_per_epoch
        if warm and step < warm:
            return self.lr * (0.1 + 0.9 * step / warm)
        if self.schedule == "cosine":
            import math

            return 0.5 * self.lr * (1 + math.cos(math.pi * min(1.0, (step - warm) / max(1.0, total - warm))))
        if self.schedule != "constant":
            raise ValueError(f"schedule={self.schedule!r}; choose 'constant' or 'cosine'")
        return self.lr


def class_weights(y: torch.Tensor, num_classes: int = 2) -> torch.Tensor:
    """Cross-entropy weights ``n / (num_classes * n_c)``: each class carries the same total weight (a class
    absent from ``y`` gets weight 0). The thesis's 4.1%-bonafide mix otherwise lets "always spoof" reach 96%."""
    counts = torch.bincount(y.long().cpu(), minlength=num_classes).float()
    w = torch.where(counts > 0, len(y) / (num_classes * counts.clamp_min(1)), torch.zeros_like(counts))
    return w


def _check_recipe(cfg: TrainConfig) -> None:
    for name, value, allowed in (("balance", cfg.balance, ("none", "weighted")), ("select", cfg.select, ("last", "val_eer")),
                                 ("early_stop_metric", cfg.early_stop_metric, ("val_loss", "val_eer"))):
        if value not in allowed:
            raise ValueError(f"TrainConfig.{name}={value!r}; choose from {allowed}")


class AdvGenerator(Protocol):
    def __call__(self, frozen: nn.Module, x: torch.Tensor, y: torch.Tensor, ids: torch.Tensor,
                 epoch: int) -> torch.Tensor: ...


def data_hash(*tensors: torch.Tensor) -> str:
    h = hashlib.sha256()
    for t in tensors:
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


# --------------------------------------------------------------------------- checkpoints

def save_checkpoint(path: Path, model: nn.Module, optimizer: torch.optim.Optimizer | None, meta: dict,
                    extra: dict[str, torch.Tensor] | None = None) -> None:
    """Weights, optimizer momentum and metadata in one safetensors file, written atomically; ``extra``
    tensors (e.g. ``best.*``, the weights of the best epoch so far) are stored under their own names."""
    tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    tensors.update({k: v.detach().cpu().contiguous() for k, v in (extra or {}).items()})
    if optimizer is not None:
        for i, p in enumerate(optimizer.param_groups[0]["params"]):
            buf = optimizer.state.get(p, {}).get("momentum_buffer")
            if buf is not None:
                tensors[f"opt.{i}"] = buf.detach().cpu().contiguous()
    with atomic_path(path, suffix=".safetensors") as tmp:
        save_file(tensors, str(tmp), metadata={"meta": json.dumps(meta)})
    save_json(Path(path).with_suffix(".json"), meta)   # human-readable copy


def read_checkpoint_meta(path: Path) -> dict:
    with safe_open(str(path), framework="pt") as fh:
        return json.loads(fh.metadata()["meta"])


def _readable_checkpoint(path: Path) -> dict:
    """Metadata of a checkpoint whose every tensor deserialises (raises on a damaged file)."""
    from safetensors.torch import load_file

    load_file(str(path))
    return read_checkpoint_meta(path)


def check_compatible(meta: dict, expect: dict, path: Path) -> None:
    meta = {"model_version": 1, **meta}   # checkpoints from before MODEL_VERSION existed
    for k, v in expect.items():
        if k in meta and meta[k] != v:
            raise CheckpointMismatchError(
                f"{path}: checkpoint has {k}={meta[k]!r} but this run expects {k}={v!r}; "
                "delete the file or change the parameters to match")


def load_checkpoint(path: Path, model: nn.Module, optimizer: torch.optim.Optimizer | None = None,
                    expect: dict | None = None) -> dict:
    """Check the metadata against ``expect`` first, then load weights (and optimizer state)."""
    path = Path(path)
    meta = read_checkpoint_meta(path)
    check_compatible(meta, expect or {}, path)
    with safe_open(str(path), framework="pt") as fh:
        state = {k[len("model."):]: fh.get_tensor(k) for k in fh.keys() if k.startswith("model.")}
        missing = set(model.state_dict()) - set(state)
        unexpected = set(state) - set(model.state_dict())
        if missing or unexpected:
            raise CheckpointMismatchError(f"{path}: weights do not fit this model (missing {sorted(missing)[:3]}, "
                                          f"unexpected {sorted(unexpected)[:3]})")
        for k, v in state.items():
            if v.shape != model.state_dict()[k].shape:
                raise CheckpointMismatchError(f"{path}: {k} has shape {tuple(v.shape)}, model expects "
                                              f"{tuple(model.state_dict()[k].shape)}")
        model.load_state_dict(state)
        if optimizer is not None:
            params = optimizer.param_groups[0]["params"]
            for i, p in enumerate(params):
                if f"opt.{i}" in fh.keys():
                    optimizer.state[p]["momentum_buffer"] = fh.get_tensor(f"opt.{i}").to(p.device)
    return meta


# --------------------------------------------------------------------------- loop

@dataclass
class TrainResult:
    model: Detector
    history: list[dict] = field(default_factory=list)
    resumed_from: int = 0
    reused: bool = False
    seconds: float = 0.0
    checkpoint: Path | None = None
    selected_epoch: int | None = None    # the epoch whose weights the model holds (select="val_eer"), else None


class EarlyStop:
    """Stop after ``patience`` epochs without an improvement of ``metric`` (lower is better: ``val_loss`` or
    ``val_eer``; None: never); resumes from a history (the epochs since the best one count as bad)."""

    def __init__(self, patience: int | None, history: list[dict] = (), metric: str = "val_loss"):
        self.patience, self.bad, self.metric = patience, 0, metric
        self.best = float("inf")
        for h in history:
            self.update(h.get(metric, float("nan")), count=False)

    def update(self, value: float, count: bool = True) -> bool:
        if value == value and value < self.best - 1e-6:
            self.best, self.bad = value, 0
        else:
            self.bad += 1
        return count and self.patience is not None and self.bad >= self.patience


def best_epoch(history: list[dict]) -> int | None:
    """The epoch ``select="val_eer"`` keeps: the lowest validation EER, the latest of equal ones (a validation
    split of a hundred clips has a coarse EER grid, so ties are common, and the later epoch fits the training
    set better); None when no epoch has a finite EER."""
    finite = [h for h in history if h.get("val_eer") == h.get("val_eer")]
    return int(min(finite, key=lambda h: (h["val_eer"], -h["epoch"]))["epoch"]) if finite else None


class Selection:
    """``select="val_eer"``: holds the weights of the best epoch so far (:func:`best_epoch`), hands them to the
    checkpoint (``best.*`` tensors, so a resumed run keeps them) and puts them back into the model when the run
    ends. One definition for :func:`train` and the DDP loop. ``select="last"``: does nothing."""

    def __init__(self, select: str, state: dict[str, torch.Tensor] | None = None):
        self.select, self.state = select, state

    def after_epoch(self, model: nn.Module, history: list[dict], done: bool) -> int | None:
        """Keep this epoch's weights if it is the best so far; at the end, restore the best and return its epoch."""
        if self.select != "val_eer":
            return None
        if best_epoch(history) == history[-1]["epoch"]:
            self.state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
        if done and self.state is not None:
            model.load_state_dict(self.state)                 # the run ends on its best epoch
            return best_epoch(history)
        return None

    def extra(self, done: bool) -> dict[str, torch.Tensor] | None:
        """The tensors an unfinished checkpoint carries besides the model's (a finished one holds the best already)."""
        return {f"best.{k}": v for k, v in self.state.items()} if self.state is not None and not done else None


def _epoch_order(n: int, seed: int, epoch: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed * 1000 + epoch)
    return torch.randperm(n, generator=g)


def epoch_batches(n: int, cfg: TrainConfig, epoch: int) -> list[torch.Tensor]:
    """The epoch's batches of item indices: a seeded permutation cut into ``batch_size`` (capped by
    ``max_batches``); the same for one process and for DDP, which splits each batch across ranks."""
    order = _epoch_order(n, cfg.seed, epoch)
    batches = [order[i:i + cfg.batch_size] for i in range(0, n, cfg.batch_size)]
    return batches[: cfg.max_batches] if cfg.max_batches else batches


def logits_metrics(logits: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
    """Loss, accuracy and EER from logits: what :func:`evaluate` reports (DDP gathers the ranks' logits first)."""
    return {"loss": float(F.cross_entropy(logits, y).item()) if len(y) else float("nan"),
            "accuracy": accuracy(y, logits.argmax(1)), "eer": eer(y, bonafide_score(logits))}


def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 256) -> dict[str, float]:
    return logits_metrics(predict(model, x, batch_size), y)


CHECKED_FIELDS: tuple[str, ...] = ("arch", "in_channels", "features", "data_hash", "train", "adversarial", "init",
                                   "model_version", "stem")


def run_metadata(arch: str, in_channels: int, cfg: TrainConfig, train_xy: tuple[torch.Tensor, torch.Tensor],
                 adversarial: bool, meta: dict | None = None, **extra) -> tuple[dict, dict]:
    """A training run's checkpoint metadata, and the fields a checkpoint must match to be resumed or reused
    (``expect``, :data:`CHECKED_FIELDS`): one definition for :func:`train` and the DDP loop, so each resumes
    the other's checkpoints. ``extra`` (e.g. the process count) is recorded, not checked."""
    meta = dict(meta or {})
    meta.setdefault("stem", stem_for(meta.get("features")))   # the model's stem follows its feature's image size
    meta.update({"arch": arch, "in_channels": in_channels, "train": asdict(cfg), "data_hash": data_hash(*train_xy),
                 "adversarial": adversarial, "model_version": MODEL_VERSION, **extra})
    return meta, {k: meta[k] for k in CHECKED_FIELDS if k in meta}


class TwoViews(nn.Module):
    """One forward for the clean batch and, when ``make_adv`` is given, the adversarial batch it makes after
    the clean pass (two separate model calls, so BatchNorm sees each batch on its own). One call, so
    DistributedDataParallel reduces the gradients of both losses once."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor, make_adv: Callable[[], torch.Tensor] | None = None):
        logits = self.model(x)
        return logits, None if make_adv is None else self.model(make_adv())


def batch_inputs(x: torch.Tensor, idx: torch.Tensor, cfg: TrainConfig, epoch: int, batch: int,
                 device: torch.device | str, augment: Transform | None = None,
                 transform: Transform | None = None) -> torch.Tensor:
    """Batch ``batch`` of ``epoch`` (items ``idx``) on ``device``, augmented and transformed with the batch's
    own generator (:func:`helpers.models.augment.batch_generator`), channels-last."""
    xb = x[idx].to(device)
    if augment is not None or transform is not None:
        gen = batch_generator(cfg.seed, epoch, batch)
        xb = augment(xb, gen) if augment is not None else xb
        xb = transform(xb, gen) if transform is not None else xb
    return xb.contiguous(memory_format=torch.channels_last)


def adv_maker(adv: AdvGenerator, frozen: nn.Module, model: nn.Module, xb: torch.Tensor, yb: torch.Tensor,
              ids: torch.Tensor, epoch: int) -> Callable[[], torch.Tensor]:
    """The adversarial batch, made when called: ``frozen`` takes the model's weights (after the clean pass)
    and ``adv`` attacks it (the thesis's recipe: examples against a frozen copy of the current model)."""

    def make() -> torch.Tensor:
        frozen.load_state_dict(model.state_dict())
        return adv(frozen, xb, yb, ids, epoch).contiguous(memory_format=torch.channels_last)

    return make


def train_step(views: nn.Module, opt: torch.optim.Optimizer, xb: torch.Tensor, yb: torch.Tensor,
               weight: torch.Tensor | None = None, make_adv: Callable[[], torch.Tensor] | None = None,
               scale: float = 1.0) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor, torch.Tensor | None]:
    """One optimiser step on ``CE(clean)`` (+ ``CE(adversarial)`` with ``make_adv``), the loss times ``scale``
    (DDP: the rank's share of the global batch); ``views`` is a :class:`TwoViews` (or DDP around one).
    Returns the losses and logits (clean, adversarial) for the epoch's running sums."""
    logits, logits_adv = views(xb, make_adv)
    loss = F.cross_entropy(logits, yb, weight=weight)
    total, adv_loss = loss, None
    if logits_adv is not None:
        adv_loss = F.cross_entropy(logits_adv, yb, weight=weight)
        total = loss + adv_loss
    opt.zero_grad(set_to_none=True)
    (total if scale == 1.0 else total * scale).backward()
    opt.step()
    return loss, adv_loss, logits, logits_adv


def reuse_finished(checkpoint: Path, model: nn.Module, expect: dict, t0: float) -> TrainResult:
    """A finished run's result: its weights loaded into ``model`` after the metadata check, and no optimizer (the
    first one a process builds imports torch._dynamo, 5-9 s). One place for :func:`train` and ``ddp_train``."""
    prev = load_checkpoint(checkpoint, model, expect=expect)
    return TrainResult(model.eval(), prev.get("history", []), int(prev.get("epoch", 0)), True,
                       time.perf_counter() - t0, Path(checkpoint), prev.get("selected_epoch"))


def train(arch: str, in_channels: int, train_xy: tuple[torch.Tensor, torch.Tensor],
          val_xy: tuple[torch.Tensor, torch.Tensor], cfg: TrainConfig, checkpoint: Path | None = None,
          meta: dict | None = None, adv: AdvGenerator | None = None, init: Detector | None = None,
          device: torch.device | str = "cpu", progress: bool = True,
          on_epoch: Callable[[int, dict], None] | None = None,
          transform: Transform | None = None) -> TrainResult:
    """Train (or resume, or reuse) a detector; plain when ``adv`` is None, adversarial otherwise.

    ``checkpoint`` is the safetensors file that holds the run; a finished run there is reused,
    an unfinished one resumed. ``meta`` (architecture, features, ...) is stored with it and
    checked on load. ``init`` starts from given weights (e.g. fine-tuning a baseline).
    ``transform(x, generator) -> x`` is applied to every training batch after ``cfg.augment`` (a hook,
    e.g. for training on ablated images); its generator is seeded per (seed, epoch, batch). It is not part
    of the checkpoint's identity: name it in ``meta`` (and the checkpoint path) when it changes the result.
    """
    t0 = time.perf_counter()
    _check_recipe(cfg)
    device = torch.device(device)
    x_tr, y_tr = train_xy
    x_va, y_va = val_xy
    meta, expect = run_metadata(arch, in_channels, cfg, train_xy, adv is not None, meta)
    augment = make_augment(cfg.augment, meta.get("features"))
    torch.manual_seed(cfg.seed)
    model = copy.deepcopy(init) if init is not None else build_model(arch, in_channels, seed=cfg.seed, stem=meta["stem"])  # type: ignore[arg-type]
    model = model.to(device).to(memory_format=torch.channels_last)
    history: list[dict] = []
    start = 0
    prev = None
    # a damaged checkpoint (truncated copy, disk error) is moved aside and the run starts over; a readable one made
    # for other parameters is refused by load_checkpoint's metadata check
    found = read_or_quarantine(checkpoint, _readable_checkpoint) if checkpoint is not None else None
    if found is not None and found.get("complete"):
        return reuse_finished(checkpoint, model, expect, t0)
    opt = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum)
    if found is not None:
        prev = load_checkpoint(checkpoint, model, opt, expect=expect)
    best_state: dict[str, torch.Tensor] | None = None
    if prev is not None:
        history, start = prev.get("history", []), int(prev.get("epoch", 0))
        best_state = read_prefixed(checkpoint, "best.")
    frozen = copy.deepcopy(model).eval() if adv is not None else None
    views = TwoViews(model)     # the step DDP shares (helpers.distributed.ddp.ddp_train wraps the same module)
    stopper = EarlyStop(cfg.early_stop_patience, history, cfg.early_stop_metric)
    selection = Selection(cfg.select, best_state)
    weight = class_weights(y_tr).to(device) if cfg.balance == "weighted" else None
    n = len(x_tr)
    selected = None
    for epoch in range(start, cfg.epochs):
        model.train()
        batches = epoch_batches(n, cfg, epoch)
        sums = {"loss": 0.0, "correct": 0, "n": 0, "adv_loss": 0.0, "adv_correct": 0}
        for b, idx in enumerate(progress_iter(batches, desc=f"{arch} epoch {epoch + 1}/{cfg.epochs}", unit="batches",
                                              enabled=progress, every_s=30.0)):
            for group in opt.param_groups:
                group["lr"] = cfg.lr_at(epoch * len(batches) + b, len(batches))
            xb = batch_inputs(x_tr, idx, cfg, epoch, b, device, augment, transform)
            yb = y_tr[idx].to(device)
            make_adv = None if adv is None else adv_maker(adv, frozen, model, xb, yb, idx, epoch)
            loss, adv_loss, logits, logits_adv = train_step(views, opt, xb, yb, weight, make_adv)
            if adv is not None:
                sums["adv_loss"] += adv_loss.item() * len(idx)
                sums["adv_correct"] += int((logits_adv.argmax(1) == yb).sum())
            sums["loss"] += loss.item() * len(idx)
            sums["correct"] += int((logits.argmax(1) == yb).sum())
            sums["n"] += len(idx)
        val = evaluate(model, x_va, y_va)
        row = {"epoch": epoch + 1, "train_loss": sums["loss"] / sums["n"], "train_accuracy": sums["correct"] / sums["n"],
               "val_loss": val["loss"], "val_accuracy": val["accuracy"], "val_eer": val["eer"]}
        if adv is not None:
            row.update({"train_adv_loss": sums["adv_loss"] / sums["n"], "train_adv_accuracy": sums["adv_correct"] / sums["n"]})
        history.append(row)
        stop = stopper.update(row[cfg.early_stop_metric])
        done = stop or epoch + 1 == cfg.epochs
        selected = selection.after_epoch(model, history, done)
        if checkpoint is not None:
            save_checkpoint(checkpoint, model, opt, {**meta, "epoch": epoch + 1, "history": history,
                                                     "complete": done, "early_stopped": stop,
                                                     "selected_epoch": selected}, selection.extra(done))
        if on_epoch:
            on_epoch(epoch + 1, row)
        if progress:
            report(f"{arch} epoch {epoch + 1}/{cfg.epochs}: " + ", ".join(f"{k}={v:.3f}" for k, v in row.items() if k != "epoch"))
        if stop:
            break
    return TrainResult(model.eval(), history, start, False, time.perf_counter() - t0,
                       Path(checkpoint) if checkpoint else None, selected)


FIT_ACCURACY = 0.95   # the train accuracy a detector must reach before its robustness is read (issue 23)


def fit_summary(history: list[dict], select: str = "last") -> dict:
    """One row per detector for 01: final train accuracy, whether it fits (>= ``FIT_ACCURACY``), best validation
    EER and its epoch, and the epoch whose weights the model holds (``select``: last, or the best val EER)."""
    if not history:
        return {"epochs": 0, "final_train_accuracy": float("nan"), "fits": False, "best_val_eer": float("nan"),
                "best_epoch": None, "model_epoch": None}
    b = best_epoch(history)
    best = next(h for h in history if h["epoch"] == b) if b is not None else None
    final = history[-1]["train_accuracy"]
    return {"epochs": len(history), "final_train_accuracy": final, "fits": bool(final >= FIT_ACCURACY),
            "best_val_eer": best["val_eer"] if best else float("nan"), "best_epoch": best["epoch"] if best else None,
            "model_epoch": (best["epoch"] if best else history[-1]["epoch"]) if select == "val_eer" else history[-1]["epoch"]}


def stem_for(features: str | None) -> str:
    """The stem a feature's images need (``FeatureConfig.stem``); the CIFAR stem for unknown or absent names."""
    from helpers.data.features import FEATURES, FeatureConfig

    return FeatureConfig(name=features).stem if features in FEATURES else "cifar"  # type: ignore[arg-type]


def read_prefixed(path: Path, prefix: str) -> dict[str, torch.Tensor] | None:
    """The tensors of a checkpoint stored under ``prefix`` (prefix stripped), or None when it has none."""
    with safe_open(str(path), framework="pt") as fh:
        out = {k[len(prefix):]: fh.get_tensor(k) for k in fh.keys() if k.startswith(prefix)}
    return out or None


def pixle_generator(attack_kwargs: dict, seed: int) -> AdvGenerator:
    """The thesis's adversarial-example generator: batched Pixle against the frozen copy."""
    from helpers.attacks.pixle import Pixle

    def gen(frozen: nn.Module, x: torch.Tensor, y: torch.Tensor, ids: torch.Tensor, epoch: int) -> torch.Tensor:
        atk = Pixle(frozen, seed=seed * 7919 + epoch, **attack_kwargs)
        return atk(x, y, ids=ids).adv.detach()

    return gen


__all__ = ["TrainConfig", "TrainResult", "train", "fit_summary", "FIT_ACCURACY", "stem_for", "logits_metrics", "run_metadata", "TwoViews", "batch_inputs",
           "adv_maker", "train_step", "class_weights", "EarlyStop", "Selection", "best_epoch", "evaluate", "save_checkpoint", "load_checkpoint",
           "read_checkpoint_meta", "CheckpointMismatchError", "pixle_generator", "data_hash"]
