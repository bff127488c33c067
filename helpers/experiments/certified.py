"""Notebook 07: a defense with a guarantee. Certified L0 robustness by randomized ablation, beside the thesis's
empirical defenses, and an adaptive check of every certificate.

For each model of 01 (same features, same training recipe and data, ``CERT_EPOCHS`` epochs):

1. **Train** a base detector (fine-tuned from 01's baseline, ``init``, or from scratch) on randomly ablated images (``k`` kept pixels of ``d = H*W``, a fourth channel marks
   them; :mod:`helpers.defenses.ablation`) and, when ``band > 0``, a second one on column bands of width ``band``.
   Checkpoints are cached under a key of the data, the recipe and the ablation, like 01's baselines.
2. **Certify** the test clips 02 attacked (``clips`` of them, class-balanced): Levine & Feizi's CERTIFY
   (``n0`` selection ablations, ``n`` estimation ablations, Clopper-Pearson at ``1 - alpha``) gives each clip a
   prediction and a certified L0 radius, or an abstention; column smoothing gives a deterministic patch certificate.
3. **Trade k off** (``k_sweep``, on ``sweep_model``, else the first model): more base detectors at other ``k``,
   trained and certified on the same clips and seeds, not attacked: accuracy against the largest certifiable radius
   (:func:`k_sweep`).
4. **Attack adaptively**: Pixle (02's settings, ``pixle`` budget) and Sparse-RS query the smoothed detector
   (:class:`helpers.defenses.ablation.SmoothedScore`: a fixed seeded set of ``attack_n`` ablations, so the attack's
   objective is deterministic, seeded apart from the certificate's). Sparse-RS runs twice: at each clip's own
   certified radius (the budget the certificate covers: a flip there would contradict it) and at Pixle's mean L0 of
   02 (the attack's own budget, for the accuracy beside 03/04). Every adversarial image is then classified by the
   full smoothed detector (``n`` estimation ablations); a certified clip whose prediction changes with at most
   its radius of pixels changed is a *flip within radius* and must not exist (up to the certificate's
   ``alpha`` and the estimate's sampling error).

Writes ``metrics/07_certified.json`` (:class:`CertifiedStage`), reused while its inputs are unchanged.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, ClassVar

import numpy as np
import torch

from helpers.attacks.pixle import Pixle, patch_bounds
from helpers.attacks.sparse_rs import SparseRS
from helpers.config.sections import CertifiedSection
from helpers.defenses import ablation as A
from helpers.evaluation.attack_loop import load_attack
from helpers.evaluation.metrics import accuracy, balanced_accuracy
from helpers.experiments.pipeline import Prepared, training_val
from helpers.experiments.stages import (AdversarialStage, BaselinesStage, PixleStage, SmoothingStage, StageRecord,
                                        attack_subset, attacked_clips, load_detector, read_stage, rel)
from helpers.io import cache_key
from helpers.models.detectors import MODEL_VERSION, build_model, predict
from helpers.models.training import TrainConfig, TrainResult, train
from helpers.paths import checkpoints_dir
from helpers.progress import report

# Bumped when a fix changes results for the same inputs, so a cached record is recomputed.
VERSION = 4
RADII: tuple[int, ...] = (0, 1, 5, 10, 20)


@dataclass(frozen=True)
class CertConfig:
    """Notebook 07's parameters (``CERT_*``)."""

    k: int = 45                      # pixels kept per ablation (of d = H*W)
    n0: int = 16                     # selection ablations (pick the top class)
    n: int = 200                     # estimation ablations (bound its probability)
    alpha: float = 0.05              # the certificate holds with probability 1 - alpha per clip
    clips: int | None = 24           # of 02's attacked clips, class-balanced (None: all of them)
    epochs: int = 5                  # training epochs of each ablation-trained base detector
    band: int = 4                    # column smoothing band width s (0: no column smoothing)
    block: int = 0                   # block smoothing square side b (0: none; H*W evaluations per prediction)
    block_stride: int = 1            # block offsets every t pixels: H*W/t^2 evaluations, a coarser vote
    attack_n: int = 8                # ablations per smoothed query in the adaptive attacks
    attack_clips: int | None = 6     # certified clips attacked adaptively (None: every certified one)
    pixle: tuple = (1, 20)           # adaptive Pixle's restarts x iterations (02's patch sizes and mapping)
    sparse_queries: int = 20         # adaptive Sparse-RS queries
    seed: int = 2022
    init: str = "baseline"           # base detectors start from 01's baseline (a zero-weight mask channel) or scratch
    k_sweep: tuple = ()              # more k for the trade-off (one model: trained and certified, not attacked)
    sweep_model: str | None = None   # the model the trade-off trains (None: 01's first)

    @classmethod
    def from_params(cls, ns: dict) -> "CertConfig":
        """``CERT_*`` and ``SEED``, checked (:class:`helpers.config.sections.CertifiedSection`) first."""
        sec = CertifiedSection.from_params(ns)
        return cls(**{**sec.values(), "pixle": tuple(sec.pixle), "k_sweep": tuple(sec.k_sweep), "seed": ns["SEED"]})

    def seeds(self) -> dict[str, int]:
        """Disjoint seeds: selection, estimation (certificate and every later smoothed prediction), attacks."""
        return {"select": self.seed * 31 + 1, "estimate": self.seed * 31 + 2, "attack": self.seed * 31 + 3}


@dataclass
class CertifiedStage(StageRecord):
    NAME: ClassVar[str] = "07_certified"
    NOTEBOOK: ClassVar[str] = "07_certified"
    config: dict = field(default_factory=dict)
    clips: list[int] = field(default_factory=list)          # positions within 02's attacked clips
    checkpoints: dict[str, str] = field(default_factory=dict)    # "<arch>/<ablation|column>" -> relative path
    histories: dict[str, list] = field(default_factory=dict)
    train_seconds: dict[str, float] = field(default_factory=dict)
    summary: dict[str, dict] = field(default_factory=dict)   # arch -> the numbers the closing note quotes
    curves: dict[str, dict] = field(default_factory=dict)    # arch -> radius grid, certified accuracy, per-class recall
    per_clip: dict[str, dict] = field(default_factory=dict)  # arch -> y, prediction, radius, p_lower, votes
    attacks: list[dict] = field(default_factory=list)        # one row per model x adaptive attack
    column: dict[str, dict] = field(default_factory=dict)    # arch -> column smoothing's patch certificate
    block: dict[str, dict] = field(default_factory=dict)     # arch -> block smoothing's patch certificate
    sweep: list[dict] = field(default_factory=list)          # the k trade-off: one row per k (one model)
    budgets: dict = field(default_factory=dict)              # Pixle's mean L0 (02), Sparse-RS's k (06 or Pixle's)
    empirical: list[dict] = field(default_factory=list)      # the empirical defenses under attack on 02's clips
    seconds: dict[str, float] = field(default_factory=dict)
    key: str = ""


def eval_batch(device: torch.device | str) -> int:
    """Ablated images per forward pass: 256 on a CPU, 4096 on a GPU (the votes do not depend on it: masks are keyed by sample)."""
    return 4096 if torch.device(device).type == "cuda" else 256


# --------------------------------------------------------------------------- training

def base_spec(arch: str, prep: Prepared, cfg: TrainConfig, mode: str, size: int, profile: str,
              init_id: str | None = None, stride: int = 1) -> tuple[Path, dict]:
    """Checkpoint path and metadata of an ablation-trained base detector (``mode`` random: ``size`` = k kept
    pixels; column: ``size`` = band width; block: ``size`` = square side, offsets every ``stride`` pixels); the key
    holds the data, the recipe, the ablation, the model version and the checkpoint it was fine-tuned from
    (``init_id``; None: from scratch)."""
    ablation = [mode, size] + ([stride] if stride != 1 else [])
    key = cache_key({"d": prep.key, "t": asdict(cfg), "m": MODEL_VERSION, "ablation": ablation,
                     **({"init": init_id} if init_id else {})})
    meta = {"features": prep.params.features, "kind": f"ablation-{mode}", "ablation": "-".join(map(str, ablation)),
            "data_key": prep.key, "init": init_id or "scratch"}
    return checkpoints_dir(profile) / f"{arch}-ablation-{mode}{size}-{key}.safetensors", meta


def ablation_init(base: torch.nn.Module) -> torch.nn.Module:
    """A base detector for ablated images (one more input channel, the mask) that computes exactly what ``base``
    computes on the image channels: its weights copied, the mask channel's first-layer weights zero and its
    normalisation that of a fresh mask-channel model. Levine & Feizi train from scratch; any base classifier keeps
    the certificate valid, and on the demo's 710 images fine-tuning learns where scratch stays near chance
    (ResNet-18, k=30, 15 epochs: validation EER 29% vs 40% at k=100 from scratch)."""
    model = build_model(base.arch, base.in_channels + 1, stem=base.stem)
    state = model.state_dict()
    for name, v in base.state_dict().items():
        if name == "net.conv1.weight":
            v = torch.cat([v, torch.zeros_like(v[:, :1])], 1)
        elif name in ("normalize.mean", "normalize.std"):
            v = torch.cat([v, state[name][:, base.in_channels:]], 1)
        state[name] = v
    model.load_state_dict(state)
    return model


def base_inputs(prep: Prepared, cfg: TrainConfig, mode: str, size: int, init: torch.nn.Module | None = None,
                stride: int = 1) -> tuple[int, tuple[torch.Tensor, torch.Tensor], Callable, torch.nn.Module | None]:
    """What a base detector for ``mode``-ablated images trains on: its input channels (the mask added), the
    validation split ablated once with a fixed seed, the per-batch ablation ``transform`` and its starting weights
    (``init`` through :func:`ablation_init`; None: from scratch). One place for 07 and ``benchmarks/fit_epochs.py``."""
    x_va, y_va = training_val(prep)
    if mode == "random":
        _, _, h, w = x_va.shape
        if not 0 < size <= h * w:
            raise ValueError(f"k={size}: an ablation keeps 1..{h * w} pixels of a {h}x{w} image")
        transform = A.ablation_transform(size)
    elif mode in VARIANTS:
        transform = A.block_transform(**variant_kwargs(mode, size, stride))
    else:
        raise ValueError(f"ablation mode {mode!r}; choose 'random' or one of {VARIANTS}")
    x_va = transform(x_va, torch.Generator().manual_seed(cfg.seed + 17))
    return (prep.feature_config.channels + 1, (x_va, y_va), transform,
            ablation_init(init) if init is not None else None)


def train_base(arch: str, prep: Prepared, cfg: TrainConfig, mode: str, size: int, profile: str,
               device: str = "cpu", progress: bool = True, init: torch.nn.Module | None = None,
               stride: int = 1) -> TrainResult:
    """Train (or reuse) a base detector on ``mode``-ablated images through the project's one training loop (its
    per-batch ``transform`` hook), from ``init`` (a clean detector, :func:`ablation_init`) or from scratch
    (:func:`base_inputs`)."""
    path, meta = base_spec(arch, prep, cfg, mode, size, profile, getattr(init, "checkpoint_id", None) if init else None,
                           stride)
    channels, val, transform, start = base_inputs(prep, cfg, mode, size, init, stride)
    return train(arch, channels, prep.xy("train"), val, cfg, path, meta, device=device, progress=progress,
                 transform=transform, init=start)


# --------------------------------------------------------------------------- summaries

def certified_curve(y: torch.Tensor, pred: torch.Tensor, radius: torch.Tensor, radii) -> dict[str, list[float]]:
    """Certified accuracy (correct and radius >= r) at each ``r``, overall and per class (bonafide / spoof recall)."""
    ok = (pred == y)
    out = {"radius": [int(r) for r in radii], "certified_accuracy": [], "bonafide": [], "spoof": []}
    for r in radii:
        c = ok & (radius >= r)
        out["certified_accuracy"].append(float(c.float().mean()) if len(y) else float("nan"))
        for name, cls in (("bonafide", 0), ("spoof", 1)):
            m = y == cls
            out[name].append(float(c[m].float().mean()) if m.any() else float("nan"))
    return out


def median_radius(y: torch.Tensor, pred: torch.Tensor, radius: torch.Tensor) -> float:
    """Median certified radius over all clips, a clip that is wrong or abstains counting as -1 (Levine & Feizi's
    "median certified robustness"): half of the clips are certified correct at least this far."""
    r = torch.where(pred == y, radius, torch.full_like(radius, -1))
    return float(np.median(r.numpy())) if len(r) else float("nan")


def summarise(y: torch.Tensor, cert: A.Certificate, pixle_l0: float | None) -> dict:
    """The numbers 07's closing note quotes for one model (clean = the smoothed majority vote, no abstention)."""
    majority = cert.counts.argmax(1)
    pred, radius = cert.prediction, cert.radius
    ok = (pred == y) & (radius >= 0)
    out = {"n": int(len(y)), "clean_accuracy": accuracy(y, majority), "balanced_accuracy": balanced_accuracy(y, majority),
           "bonafide_recall": float((majority[y == 0] == 0).float().mean()) if (y == 0).any() else float("nan"),
           "spoof_recall": float((majority[y == 1] == 1).float().mean()) if (y == 1).any() else float("nan"),
           "abstain_rate": float((pred == A.ABSTAIN).float().mean()),
           "certified_accuracy": {str(r): float((ok & (radius >= r)).float().mean()) for r in RADII},
           "median_radius": median_radius(y, pred, radius),
           "median_radius_certified_correct": float(radius[ok].median()) if ok.any() else float("nan"),
           "pixle_mean_l0": pixle_l0,
           "certified_accuracy_at_pixle_l0": (float((ok & (radius >= round(pixle_l0))).float().mean())
                                              if pixle_l0 is not None else None)}
    return out


def ci_half_width(n: int, p: float = 0.5, alpha: float = 0.05) -> float:
    """Half the width of the two-sided Clopper-Pearson interval at vote share ``p`` with ``n`` ablations: how far
    an estimated share may sit from the true one (what ``n`` buys)."""
    from scipy.stats import beta

    c = int(round(p * n))
    lo = beta.ppf(alpha / 2, c, n - c + 1) if c > 0 else 0.0
    hi = beta.ppf(1 - alpha / 2, c + 1, n - c) if c < n else 1.0
    return float((hi - lo) / 2)


# --------------------------------------------------------------------------- the adaptive check

def check_attack(name: str, arch: str, y: torch.Tensor, x: torch.Tensor, adv: torch.Tensor, l0: torch.Tensor,
                 cert_pred: torch.Tensor, radius: torch.Tensor, model: torch.nn.Module, cfg: CertConfig,
                 seconds: float, budget: str) -> dict:
    """Classify attacked images with the full smoothed detector and count certified clips flipped within radius."""
    votes = A.ablation_votes(model, adv, cfg.k, cfg.n, cfg.seeds()["estimate"], eval_batch(next(model.parameters()).device))
    pred = votes.argmax(1)
    certified = radius >= 0
    changed = pred != cert_pred
    within = certified & (l0 >= 1) & (l0 <= radius)      # a clip the attack left unchanged tests nothing
    return {"model": arch, "attack": name, "budget": budget, "n": int(len(y)),
            "accuracy": accuracy(y, pred), "attack_success_rate": float(changed.float().mean()) if len(y) else float("nan"),
            "mean_l0": float(l0.float().mean()) if len(y) else float("nan"),
            "within_radius": int(within.sum()), "flips_within_radius": int((within & changed).sum()),
            "flips_beyond_radius": int((certified & ~within & changed).sum()), "seconds": round(seconds, 2),
            "per_clip": {"y": y.tolist(), "pred": pred.tolist(), "l0": l0.tolist(), "radius": radius.tolist(),
                         "votes": votes.tolist()}}


def adaptive_attacks(arch: str, model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, ids: torch.Tensor,
                     radius: torch.Tensor, pred: torch.Tensor, pixle_kwargs: dict, sparse_k: int, cfg: CertConfig,
                     device: torch.device | str) -> list[dict]:
    """Pixle and Sparse-RS (at each clip's radius, and at ``sparse_k``) against the smoothed detector."""
    s = cfg.seeds()["attack"]
    smoothed = A.SmoothedScore(model, cfg.k, cfg.attack_n, s, eval_batch(device))
    rows = []
    restarts, iterations = cfg.pixle
    tb = max(1, (4096 if torch.device(device).type == "cuda" else 64) // cfg.attack_n)
    t0 = time.perf_counter()
    res = Pixle(smoothed, **{**pixle_kwargs, "restarts": int(restarts), "max_iterations": int(iterations),
                             "target_batch": tb, "amp": False}, seed=s, skip_misclassified=True)(x, y, ids=ids).cpu()
    rows.append(check_attack("pixle", arch, y, x, res.adv, res.l0, pred, radius, model, cfg,
                             time.perf_counter() - t0, f"{restarts}x{iterations}"))
    # Sparse-RS at each certified clip's own radius (grouped by radius): the budget the certificate covers
    t0 = time.perf_counter()
    adv, l0 = x.clone(), torch.zeros(len(y), dtype=torch.long)
    for r in sorted({int(v) for v in radius.tolist() if v >= 1}):
        m = radius == r
        out = SparseRS(smoothed, k=r, n_queries=cfg.sparse_queries, seed=s, skip_misclassified=True)(
            x[m], y[m], ids=ids[m]).cpu()
        adv[m], l0[m] = out.adv, out.l0
    rows.append(check_attack("sparse_rs", arch, y, x, adv, l0, pred, radius, model, cfg,
                             time.perf_counter() - t0, "radius"))
    t0 = time.perf_counter()
    out = SparseRS(smoothed, k=sparse_k, n_queries=cfg.sparse_queries, seed=s, skip_misclassified=True)(x, y, ids=ids).cpu()
    rows.append(check_attack("sparse_rs", arch, y, x, out.adv, out.l0, pred, radius, model, cfg,
                             time.perf_counter() - t0, f"k={sparse_k}"))
    return rows


# --------------------------------------------------------------------------- the derandomized (patch) certificates

VARIANTS: tuple[str, ...] = ("column", "block")


def variant_kwargs(variant: str, size: int, stride: int = 1) -> dict[str, int]:
    """:mod:`helpers.defenses.ablation`'s keywords for a derandomized variant: ``band`` (columns, every offset) or
    ``block`` (side) and its ``stride``."""
    if variant not in VARIANTS:
        raise ValueError(f"derandomized variant {variant!r}; choose from {VARIANTS}")
    return {"band": size, "stride": 1} if variant == "column" else {"block": size, "stride": stride}


def patch_delta(variant: str, size: int, patch: tuple[int, int], image: tuple[int, int], stride: int = 1) -> int:
    """How many votes one ``patch`` (rows, columns) can move: bands it meets (column) or block positions (block)."""
    h, w = image
    kw = variant_kwargs(variant, size, stride)
    shape = A.block_shape(h, w, band=kw.get("band"), block=kw.get("block"))
    return A.blocks_per_patch(patch, shape, image, kw["stride"])


def bands_affordable(counts: torch.Tensor, pred: torch.Tensor) -> torch.Tensor:
    """Per clip, how many votes (bands or block positions) a perturbation may reach without overturning the vote for
    ``pred``: half the margin over the runner-up, a tie counted against ``pred`` when the runner-up has the lower
    index (the argmax tie-break, as :func:`helpers.defenses.ablation.column_certificate`)."""
    top = counts.gather(1, pred[:, None]).squeeze(1)
    other = (counts + (torch.arange(counts.shape[1])[None] < pred[:, None]).long()).scatter(1, pred[:, None], -10 ** 9).amax(1)
    return torch.div(top - other, 2, rounding_mode="floor")


def patch_summary(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, variant: str, size: int,
                  patch: tuple[int, int], pixle_adv: torch.Tensor | None, stride: int = 1) -> dict:
    """Derandomized smoothing (column bands or square blocks) on the clips: accuracy, certified accuracy against one
    ``patch`` (rows, columns), the largest number of votes each clip can spare, and how many of 02's Pixle
    perturbations (non-adaptive, same clips) fall within what the certificate covers (votes touched <= spare)."""
    kw = variant_kwargs(variant, size, stride)
    delta = patch_delta(variant, size, patch, tuple(x.shape[-2:]), stride)
    counts = A.block_votes(model, x, **kw, batch=eval_batch(next(model.parameters()).device))
    pred, cert = A.column_certificate(counts, delta)
    spare = bands_affordable(counts, pred)
    ok = pred == y
    out = {"variant": variant, "size": size, "stride": kw["stride"], "positions": int(counts[0].sum()) if len(y) else 0,
           "patch": f"{patch[0]}x{patch[1]}", "delta": delta, "accuracy": accuracy(y, pred),
           "balanced_accuracy": balanced_accuracy(y, pred), "certified_accuracy": float((ok & cert).float().mean()),
           "bonafide_certified": float((ok & cert)[y == 0].float().mean()) if (y == 0).any() else float("nan"),
           "spoof_certified": float((ok & cert)[y == 1].float().mean()) if (y == 1).any() else float("nan"),
           "per_clip": {"votes": counts.tolist(), "pred": pred.tolist(), "votes_spare": spare.tolist()}}
    if variant == "column":     # the widest patch (any height) each clip is certified against; -1: none
        out["per_clip"]["certified_width"] = (spare - size + 1).clamp_min(-1).tolist()
    if pixle_adv is not None:
        touched = A.blocks_touched(x, pixle_adv, **kw)
        changed = (x != pixle_adv).flatten(1).any(1)
        covered = ok & changed & (touched <= spare)
        out.update({"pixle_touched_mean": float(touched[changed].float().mean()) if changed.any() else float("nan"),
                    "pixle_covered": int(covered.sum()), "pixle_perturbed": int(changed.sum())})
        out["per_clip"]["pixle_touched"] = touched.tolist()
    return out


def patch_attack(arch: str, model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, variant: str, size: int,
                 pixle_kwargs: dict, cfg: CertConfig, device: torch.device | str, stride: int = 1,
                 counts: torch.Tensor | None = None) -> dict | None:
    """Adaptive Pixle against the column- or block-smoothed detector (:class:`helpers.defenses.ablation.BlockScore`)
    on the clips it classifies correctly *and* certifies against some perturbation: every adversarial image is judged
    again by the smoothed detector, and a flip whose perturbation touches no more bands (block positions) than the
    clip's certificate allows would break the certificate (the count must be 0). ``counts``: the clean clips' votes,
    when :func:`patch_summary` has already counted them."""
    kw = variant_kwargs(variant, size, stride)
    batch = eval_batch(device)
    counts = A.block_votes(model, x, **kw, batch=batch) if counts is None else counts
    pred, _ = A.column_certificate(counts, 0)
    spare = bands_affordable(counts, pred)
    ok = ((pred == y) & (spare >= 1)).nonzero().flatten()
    pick = ok[attack_subset(y[ok], cfg.attack_clips, cfg.seed)] if len(ok) else ok
    if not len(pick):
        return None
    restarts, iterations = cfg.pixle
    positions = int(counts[0].sum())
    t0 = time.perf_counter()
    res = Pixle(A.BlockScore(model, **kw, batch=batch), **{**pixle_kwargs, "restarts": int(restarts),
                "max_iterations": int(iterations), "target_batch": max(1, batch // positions), "amp": False},
                seed=cfg.seeds()["attack"], skip_misclassified=True)(x[pick], y[pick], ids=pick).cpu()
    after, _ = A.column_certificate(A.block_votes(model, res.adv, **kw, batch=batch), 0)
    touched = A.blocks_touched(x[pick], res.adv, **kw)
    changed = after != pred[pick]
    within = (res.l0 >= 1) & (touched <= spare[pick])
    return {"model": arch, "attack": f"pixle ({variant})", "budget": f"{restarts}x{iterations}", "n": int(len(pick)),
            "accuracy": accuracy(y[pick], after), "attack_success_rate": float(changed.float().mean()),
            "mean_l0": float(res.l0.float().mean()), "mean_votes_touched": float(touched.float().mean()),
            "within_radius": int(within.sum()), "flips_within_radius": int((within & changed).sum()),
            "flips_beyond_radius": int((~within & changed).sum()), "seconds": round(time.perf_counter() - t0, 2),
            "clips": pick.tolist(),
            "per_clip": {"y": y[pick].tolist(), "pred": after.tolist(), "l0": res.l0.tolist(),
                         "votes_touched": touched.tolist(), "votes_spare": spare[pick].tolist()}}


# --------------------------------------------------------------------------- the stage

def pixle_mean_l0(pix: PixleStage, arch: str) -> float | None:
    """Pixle's mean L0 on this model's baseline (02), over the clips it attacked."""
    for r in pix.records:
        if r["condition"] == "baseline_pixle" and r["model"] == arch and r.get("l0") is not None and np.isfinite(r["l0"]):
            return float(r["l0"])
    return None


def empirical_rows(profile: str) -> list[dict]:
    """The empirical defenses on 02's clips, as 02-04 (and 06's Sparse-RS) recorded them: accuracy, per-class recall
    and mean L0, for the figure beside the certificate."""
    rows = []
    sources = [(PixleStage, ("baseline_clean", "baseline_pixle")), (SmoothingStage, ("smoothing_pixle",)),
               (AdversarialStage, ("adv_training_clean", "adv_training_pixle", "combined_pixle"))]
    for cls, conditions in sources:
        rec = read_stage(profile, cls, required=False)
        for r in (rec.records if rec else []):
            if r["condition"] in conditions:
                rows.append(_row(r))
    try:
        from helpers.experiments.realizable import RealizableStage

        six = read_stage(profile, RealizableStage, required=False)
    except ImportError:   # pragma: no cover
        six = None
    for r in (six.records if six else []):
        if r.get("evaluation") == "sparse_rs":
            rows.append(_row(r, attack="sparse_rs"))
    return rows


def _row(r: dict, attack: str | None = None) -> dict:
    pc = r.get("per_clip", {})
    y, pred = np.asarray(pc.get("y", [])), np.asarray(pc.get("pred", []))
    rec = {c: float((pred[y == c] == c).mean()) if (y == c).any() else float("nan") for c in (0, 1)}
    return {"model": r["model"], "condition": r["condition"], "evaluation": r.get("evaluation"),
            "attack": attack or ("none" if r.get("evaluation") == "clean" else "pixle"),
            "accuracy": r.get("accuracy"), "bonafide_recall": rec[0], "spoof_recall": rec[1], "l0": r.get("l0")}


def record_base(stage: CertifiedStage, name: str, res: TrainResult, profile: str) -> None:
    """A trained base detector's checkpoint, curves and training time into ``stage`` under ``name``
    ("<arch>/ablation", "<arch>/ablation-k<k>", "<arch>/<variant>")."""
    stage.checkpoints[name] = rel(profile, res.checkpoint)
    stage.histories[name] = res.history
    stage.train_seconds[name] = round(res.seconds, 2)


def derandomized(stage: CertifiedStage, variant: str, size: int, arch: str, prep: Prepared, tcfg: TrainConfig,
                 clean: torch.nn.Module | None, x: torch.Tensor, y: torch.Tensor, patch: tuple[int, int],
                 pixle_adv: torch.Tensor | None, pixle_kwargs: dict, cfg: CertConfig, profile: str,
                 device: str | torch.device) -> None:
    """One derandomized variant for one model, into ``stage``: train (or reuse) its base detector, certify the clips
    against Pixle's largest patch, and attack it adaptively."""
    stride = variant_kwargs(variant, size, cfg.block_stride)["stride"]     # columns: every offset
    res = train_base(arch, prep, tcfg, variant, size, profile, str(device), init=clean, stride=stride)
    record_base(stage, f"{arch}/{variant}", res, profile)
    model = res.model.to(device).eval()
    t0 = time.perf_counter()
    summary = getattr(stage, variant)[arch] = patch_summary(model, x, y, variant, size, patch, pixle_adv, stride)
    stage.seconds[f"{arch}/{variant}"] = round(time.perf_counter() - t0, 2)
    row = patch_attack(arch, model, x, y, variant, size, pixle_kwargs, cfg, device, stride,
                       counts=torch.tensor(summary["per_clip"]["votes"], dtype=torch.long).view(-1, 2))
    if row is not None:
        report(f"07 {arch} {row['attack']}: accuracy {row['accuracy']:.2f}, mean votes touched "
               f"{row['mean_votes_touched']:.1f}, flips within the certificate {row['flips_within_radius']} "
               f"of {row['within_radius']}")
        stage.attacks.append(row)


def sweep_row(arch: str, k: int, y: torch.Tensor, cert: A.Certificate, res: TrainResult, cfg: CertConfig, d: int,
              pixle_l0: float | None) -> dict:
    """One point of the k trade-off: how well the base detector learned from ``k`` pixels (the last epoch's train
    accuracy, as 01's fit is read; the kept epoch's validation EER: its weights are the ones certified) and what its
    smoothed detector certifies (:func:`summarise`, the largest radius ``n`` allows at this ``k``, certified accuracy
    at every radius up to it)."""
    kept = [h for h in res.history if res.selected_epoch is None or h.get("epoch") == res.selected_epoch] or res.history
    top = A.max_certifiable_radius(cfg.n, cfg.alpha, d, k)
    return {"model": arch, "k": int(k), "share_kept": k / d,
            "train_accuracy": res.history[-1].get("train_accuracy") if res.history else None,
            "val_eer": kept[-1].get("val_eer") if kept else None, "train_seconds": round(res.seconds, 2),
            **summarise(y, cert, pixle_l0), "max_certifiable_radius": top,
            "curve": certified_curve(y, cert.prediction, cert.radius, range(0, max(top, 0) + 2))}


def k_sweep(stage: CertifiedStage, arch: str, main: tuple[A.Certificate, TrainResult], prep: Prepared,
            tcfg: TrainConfig, clean: torch.nn.Module | None, x: torch.Tensor, y: torch.Tensor, cfg: CertConfig,
            pixle_l0: float | None, profile: str, device: str | torch.device) -> None:
    """The k trade-off into ``stage.sweep``: a base detector per ``k`` of ``cfg.k_sweep`` (trained and certified on the
    same clips, same seeds; not attacked), beside the main ``cfg.k`` one. Levine & Feizi's structure: a larger ``k``
    lets the base detector see more (higher accuracy) and lets an attacker reach more ablations (smaller radii)."""
    d = int(x.shape[-2] * x.shape[-1])
    seeds = cfg.seeds()
    for k in sorted({cfg.k, *cfg.k_sweep}):
        if k == cfg.k:
            cert, res = main
        else:
            res = train_base(arch, prep, tcfg, "random", k, profile, str(device), init=clean)
            record_base(stage, f"{arch}/ablation-k{k}", res, profile)
            cert = A.certify_ablation(res.model.to(device).eval(), x, k, cfg.n0, cfg.n, cfg.alpha, seeds["select"],
                                      eval_batch(device))
        row = sweep_row(arch, k, y, cert, res, cfg, d, pixle_l0)
        report(f"07 {arch} k={k}: base train accuracy {row['train_accuracy']:.2f}, smoothed balanced accuracy "
               f"{row['balanced_accuracy']:.2f}, certified at radius 1 {row['certified_accuracy']['1']:.2f}, "
               f"largest certifiable radius {row['max_certifiable_radius']}")
        stage.sweep.append(row)


def check_ks(cfg: CertConfig, h: int, w: int) -> None:
    """Refuse a ``CERT_K`` or ``CERT_K_SWEEP`` value that no ablation of an ``h`` x ``w`` image can keep (the sweep may
    be empty)."""
    if max((cfg.k, *cfg.k_sweep)) > h * w:
        raise ValueError(f"CERT_K={cfg.k} / CERT_K_SWEEP={list(cfg.k_sweep)}: every k must be at most the {h}x{w} = "
                         f"{h * w} pixels of an image; lower it in the profile or with -p")


def run_certified(profile: str, prep: Prepared, cfg: CertConfig, device: str | torch.device = "cpu") -> CertifiedStage:
    """07: train the ablation base detectors, certify 02's clips, attack the smoothed detectors adaptively."""
    clips = attacked_clips(profile, prep)
    base = read_stage(profile, BaselinesStage)
    six_k = None
    try:
        from helpers.experiments.realizable import RealizableStage

        six = read_stage(profile, RealizableStage, required=False)
        six_k = six.budgets.get("sparse_rs_k") if six else None
    except ImportError:   # pragma: no cover
        pass
    tcfg = TrainConfig(**{**base.train, "epochs": cfg.epochs})
    archs = list(base.checkpoints)
    sweep_arch = cfg.sweep_model or archs[0]
    if cfg.k_sweep and sweep_arch not in archs:
        raise ValueError(f"CERT_SWEEP_MODEL={cfg.sweep_model!r}: 01 trained only {archs}; choose one of them "
                         f"(-p CERT_SWEEP_MODEL {archs[0]}) or run 01 with it in MODELS")
    pixle_l0 = {a: pixle_mean_l0(clips.stage, a) for a in archs}
    sparse_k = {a: int((six_k or {}).get(a) or max(1, round(pixle_l0[a] or 32))) for a in archs}
    pos = attack_subset(clips.y, cfg.clips, cfg.seed)
    x, y = clips.x[pos], clips.y[pos]
    _, _, h, w = x.shape
    d = h * w                                # pixels per image: the L0 space every radius lives in
    check_ks(cfg, h, w)                      # before any training: a k that cannot be drawn fails now, not later
    patch = (patch_bounds(clips.config.y_dimensions, h)[1], patch_bounds(clips.config.x_dimensions, w)[1])  # Pixle's largest
    empirical = empirical_rows(profile)
    key = cache_key({"version": VERSION, "cfg": asdict(cfg), "train": asdict(tcfg), "data": prep.key,
                     "subset": clips.stage.subset, "attack": clips.stage.attack, "pos": pos.tolist(),
                     "sparse_k": sparse_k, "m": MODEL_VERSION, "baselines": base.checkpoints,
                     "empirical": empirical})     # 02-04's records shown beside the certificates
    prev = read_stage(profile, CertifiedStage, required=False)
    if prev is not None and prev.key == key:
        report("07: certificates and attacks of these detectors and settings are cached; reusing metrics/07_certified.json")
        return prev
    seeds = cfg.seeds()
    stage = CertifiedStage(**CertifiedStage.head(profile, prep), config=asdict(cfg), clips=pos.tolist(), key=key,
                           budgets={"pixle_mean_l0": pixle_l0, "sparse_rs_k": sparse_k, "pixle_patch": list(patch),
                                    "d": d, "ci_half_width_n": ci_half_width(cfg.n),
                                    "sparse_rs_k_from": "06" if six_k else "02 (Pixle's mean L0)"},
                           empirical=empirical)
    bare_adv = {a: load_attack(clips.stage.path(d), len(clips.y)).adv[pos] for a, d in clips.stage.adv_cache.items()}
    for arch in archs:
        t_arch = time.perf_counter()
        clean = load_detector(profile, arch, "baseline", prep) if cfg.init == "baseline" else None
        res = train_base(arch, prep, tcfg, "random", cfg.k, profile, str(device), init=clean)
        record_base(stage, f"{arch}/ablation", res, profile)
        model = res.model.to(device).eval()
        t0 = time.perf_counter()
        cert = A.certify_ablation(model, x, cfg.k, cfg.n0, cfg.n, cfg.alpha, seeds["select"], eval_batch(device))
        # certify_ablation draws estimation ablations from seed + 1: keep that stream the "estimate" seed
        stage.seconds[f"{arch}/certify"] = round(time.perf_counter() - t0, 2)
        stage.summary[arch] = summarise(y, cert, pixle_l0[arch])
        # the ceiling n, k and alpha put on any radius (a unanimous vote): no detector certifies beyond it
        stage.summary[arch]["max_certifiable_radius"] = A.max_certifiable_radius(cfg.n, cfg.alpha, d, cfg.k)
        top = int(max(RADII + (int(cert.radius.max()) if len(y) else 0,) + ((round(pixle_l0[arch]),) if pixle_l0[arch] else ())))
        stage.curves[arch] = certified_curve(y, cert.prediction, cert.radius, range(0, top + 2))
        stage.per_clip[arch] = {"y": y.tolist(), "prediction": cert.prediction.tolist(), "radius": cert.radius.tolist(),
                                "p_lower": cert.p_lower.tolist(), "votes": cert.counts.tolist()}
        # the adaptive check: certified, correct clips (class-balanced where possible)
        ok = ((cert.prediction == y) & (cert.radius >= 0)).nonzero().flatten()
        pick = ok[attack_subset(y[ok], cfg.attack_clips, cfg.seed)] if len(ok) else ok
        if len(pick):
            rows = adaptive_attacks(arch, model, x[pick], y[pick], pick, cert.radius[pick], cert.prediction[pick],
                                    clips.config.kwargs(), sparse_k[arch], cfg, device)
            for r in rows:
                r["clips"] = pick.tolist()
                report(f"07 {arch} {r['attack']} ({r['budget']}): accuracy {r['accuracy']:.2f}, mean L0 {r['mean_l0']:.1f}, "
                       f"flips within radius {r['flips_within_radius']} of {r['within_radius']}")
            stage.attacks += rows
        if cfg.k_sweep and arch == sweep_arch:
            k_sweep(stage, arch, (cert, res), prep, tcfg, clean, x, y, cfg, pixle_l0[arch], profile, device)
        for variant, size in (("column", cfg.band), ("block", cfg.block)):
            if size > 0:
                derandomized(stage, variant, size, arch, prep, tcfg, clean, x, y, patch, bare_adv.get(arch),
                             clips.config.kwargs(), cfg, profile, device)
        stage.seconds[arch] = round(time.perf_counter() - t_arch, 2)
    stage.save()
    return stage


# --------------------------------------------------------------------------- what the notebook shows

def summary_table(stage: CertifiedStage):
    """One row per model: the numbers the closing note quotes."""
    import pandas as pd

    rows = []
    for arch, s in stage.summary.items():
        atk = [a for a in stage.attacks if a["model"] == arch]
        row = {"model": arch, "clean acc": s["clean_accuracy"], "balanced acc": s["balanced_accuracy"],
               "bonafide recall": s["bonafide_recall"], "spoof recall": s["spoof_recall"], "abstain": s["abstain_rate"],
               **{f"cert@{r}": s["certified_accuracy"][str(r)] for r in RADII},
               f"cert@Pixle L0": s["certified_accuracy_at_pixle_l0"], "Pixle L0": s["pixle_mean_l0"],
               "median radius": s["median_radius"],
               "adaptive flips within radius": sum(a["flips_within_radius"] for a in atk),
               "attacked within radius": sum(a["within_radius"] for a in atk)}
        rows.append(row)
    return pd.DataFrame(rows)


def attacks_table(stage: CertifiedStage):
    import pandas as pd

    cols = ("model", "attack", "budget", "n", "accuracy", "attack_success_rate", "mean_l0", "mean_votes_touched", "within_radius",
            "flips_within_radius", "flips_beyond_radius", "seconds")
    return pd.DataFrame([{c: a.get(c) for c in cols} for a in stage.attacks])


def patch_table(stage: CertifiedStage):
    """One row per model and derandomized variant (column bands, square blocks): the patch certificate."""
    import pandas as pd

    cols = ("size", "stride", "positions", "patch", "delta", "accuracy", "balanced_accuracy", "certified_accuracy",
            "bonafide_certified", "spoof_certified", "pixle_touched_mean", "pixle_covered", "pixle_perturbed")
    return pd.DataFrame([{"model": a, "variant": variant, **{c: v.get(c) for c in cols}}
                         for variant in VARIANTS for a, v in getattr(stage, variant).items()])


def sweep_table(stage: CertifiedStage):
    """The k trade-off, one row per k: what the base detector learned, what the smoothed detector certifies."""
    import pandas as pd

    return pd.DataFrame([{"model": r["model"], "k": r["k"], "kept %": 100 * r["share_kept"],
                          "base train acc (last epoch)": r["train_accuracy"], "base val EER (kept epoch)": r["val_eer"],
                          "clean acc": r["clean_accuracy"], "balanced acc": r["balanced_accuracy"],
                          "bonafide recall": r["bonafide_recall"], "spoof recall": r["spoof_recall"],
                          "abstain": r["abstain_rate"], **{f"cert@{x}": r["certified_accuracy"][str(x)] for x in RADII},
                          "median radius": r["median_radius"],
                          "largest certifiable radius": r["max_certifiable_radius"],
                          "Pixle L0": r["pixle_mean_l0"]} for r in stage.sweep])


def sweep_figure(stage: CertifiedStage):
    """Left: certified accuracy against L0 radius for each k (one model), Pixle's mean L0 marked. Right: against k,
    the base detector's train accuracy, the smoothed detector's balanced accuracy, and the largest radius ``n``
    can certify at that k (right axis): a larger k buys accuracy with radius."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    rows = stage.sweep
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(12.5, 4.6))
    pal = sns.color_palette("viridis", max(len(rows), 2))
    for c, r in zip(pal, rows):
        cv = r["curve"]
        ax.step(cv["radius"], cv["certified_accuracy"], where="post", color=c, lw=2,
                label=f"k={r['k']} ({100 * r['share_kept']:.0f}% kept): balanced acc {r['balanced_accuracy']:.0%}")
    l0 = rows[0]["pixle_mean_l0"] if rows else None
    if l0:
        ax.axvline(l0, color="k", ls=":", lw=1.2, label=f"Pixle mean L0 (02): {l0:.0f}")
    top = max([r["max_certifiable_radius"] for r in rows] + [l0 or 0, 1])
    ax.set(xlabel="certified L0 radius (pixels)", ylabel="certified accuracy", ylim=(-0.02, 1.02),
           xlim=(-0.3, 1.15 * top),
           title=f"{rows[0]['model'] if rows else ''}: certified accuracy per k (n={stage.config['n']})")
    ax.set_xscale("symlog", linthresh=10)
    ax.legend(fontsize=7.5, loc="upper right")
    ks = [r["k"] for r in rows]
    bx.plot(ks, [r["train_accuracy"] for r in rows], "o-", color=pal[0], label="base detector: train accuracy")
    bx.plot(ks, [r["balanced_accuracy"] for r in rows], "s-", color=pal[-1],
            label="smoothed: balanced accuracy (clips)")
    bx.axhline(0.5, color="grey", lw=0.8, ls="--")
    bx.set(xlabel=f"k: pixels kept per ablation (of {stage.budgets.get('d', '?'):,})", ylabel="accuracy",
           ylim=(0.3, 1.02), xscale="log")
    bx.set_xticks(ks, [str(k) for k in ks])
    bx.minorticks_off()
    rx = bx.twinx()
    rx.plot(ks, [r["max_certifiable_radius"] for r in rows], "^--", color="tab:red", label="largest certifiable radius")
    rx.set(ylabel="pixels", ylim=(0, 1.1 * max([r["max_certifiable_radius"] for r in rows] + [1])))
    rx.grid(False)
    h1, l1 = bx.get_legend_handles_labels()
    h2, l2 = rx.get_legend_handles_labels()
    bx.legend(h1 + h2, l1 + l2, fontsize=7.5, loc="lower left")
    bx.set_title("the trade-off: accuracy against radius")
    fig.tight_layout()
    return fig


def certified_figure(stage: CertifiedStage):
    """Certified accuracy against L0 radius per model (radius 0 = certified clean accuracy), bonafide and spoof
    recall dashed; Pixle's mean L0 (02) and Sparse-RS's budget marked; the empirical defenses' accuracy under those
    attacks (02-04, 06) and the smoothed detector's under the adaptive attacks (07) as points at their mean L0."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    archs = list(stage.curves)
    fig, axes = plt.subplots(1, len(archs), figsize=(6.4 * len(archs), 5.2), squeeze=False, sharey=True)
    pal = sns.color_palette("colorblind", 8)
    marks = {"baseline_pixle": ("o", "baseline + Pixle"), "smoothing_pixle": ("s", "blur + Pixle"),
             "adv_training_pixle": ("^", "AT + Pixle"), "combined_pixle": ("D", "AT + blur + Pixle")}
    for ax, arch in zip(axes[0], archs):
        c = stage.curves[arch]
        ax.step(c["radius"], c["certified_accuracy"], where="post", color=pal[0], lw=2, label="certified accuracy")
        ax.step(c["radius"], c["bonafide"], where="post", color=pal[1], ls="--", label="certified bonafide recall")
        ax.step(c["radius"], c["spoof"], where="post", color=pal[2], ls="--", label="certified spoof recall")
        l0 = stage.budgets["pixle_mean_l0"].get(arch)
        if l0:
            ax.axvline(l0, color="k", ls=":", lw=1.2, label=f"Pixle mean L0 (02): {l0:.0f}")
        k = stage.budgets["sparse_rs_k"].get(arch)
        if k:
            ax.axvline(k, color="grey", ls="-.", lw=1.0, label=f"Sparse-RS budget: {k}")
        for r in stage.empirical:
            if r["model"] != arch or r["l0"] is None or not np.isfinite(r["l0"]):
                continue
            if r["attack"] == "sparse_rs":
                if r["condition"] in ("baseline", "smoothing", "adv_training", "combined"):
                    ax.plot(r["l0"], r["accuracy"], "x", color=pal[5], ms=7,
                            label="empirical defenses + Sparse-RS (06)" if r["condition"] == "baseline" else None)
                continue
            mk, name = marks.get(r["condition"], ("o", r["condition"]))
            if r["evaluation"] == "non-adaptive" and r["condition"] in ("smoothing_pixle", "combined_pixle"):
                continue    # the blur's adaptive rows are the fair comparison
            ax.plot(r["l0"], r["accuracy"], mk, color=pal[3], ms=6, label=f"{name} (empirical)")
        for a in stage.attacks:
            if a["model"] == arch and np.isfinite(a["mean_l0"]):
                mk = "*" if a["attack"] == "pixle" else ("P" if a["budget"] == "radius" else "X")
                ax.plot(a["mean_l0"], a["accuracy"], mk, color=pal[4], ms=10, alpha=0.85,
                        label=f"smoothed + adaptive {a['attack']} ({a['budget']}), on {a['n']} certified clips")
        xs = [c["radius"][-1], l0 or 0, k or 0] + [r["l0"] for r in stage.empirical if r["model"] == arch and r["l0"]]
        ax.set(xlabel="L0: pixels changed (certified radius, or the attack's mean)", ylabel="accuracy",
               ylim=(-0.02, 1.02), xlim=(-0.3, 1.25 * max(x for x in xs if np.isfinite(x))),
               title=f"{arch}: randomized ablation k={stage.config['k']}, n={stage.config['n']}")
        ax.set_xscale("symlog", linthresh=10)
        ax.legend(fontsize=6.5, loc="upper center", bbox_to_anchor=(0.5, -0.24), ncol=2, frameon=False)
    fig.tight_layout()
    return fig


def reach_sentence(stage: CertifiedStage, l0: float | None) -> str:
    """How few pixels a base detector would have to decide from for a unanimous vote to certify Pixle's mean L0
    (:func:`helpers.defenses.ablation.largest_k_for_radius`), or "" without an L0 or an image size."""
    d = stage.budgets.get("d")
    if not l0 or not d:
        return ""
    need = math.ceil(l0)
    k = A.largest_k_for_radius(need, stage.config["n"], stage.config["alpha"], d)
    if k == 0:
        return f" No k certifies {need} pixels with n={stage.config['n']}."
    return (f" To certify Pixle's mean L0 ({need} pixels) even with a unanimous vote, an ablation could keep at most "
            f"k={k} of the {d:,} pixels ({k / d:.1%}); these base detectors keep {stage.config['k']}.")


def verdict_markdown(stage: CertifiedStage) -> str:
    """One sentence per model: how far the guarantee reaches against the L0 the attacks use, and the adaptive check."""
    lines = []
    for arch, s in stage.summary.items():
        l0 = s["pixle_mean_l0"]
        atk = [a for a in stage.attacks if a["model"] == arch]
        flips, within = sum(a["flips_within_radius"] for a in atk), sum(a["within_radius"] for a in atk)
        radii = [r for r, p, yy in zip(stage.per_clip[arch]["radius"], stage.per_clip[arch]["prediction"],
                                       stage.per_clip[arch]["y"]) if p == yy and r >= 0]
        top = max(radii) if radii else None
        l0_txt = f"{l0:.0f}" if l0 is not None else "n/a"
        lines.append(
            f"- **{arch}**: the smoothed detector is right on {s['clean_accuracy']:.0%} of {s['n']} clips "
            f"(balanced {s['balanced_accuracy']:.0%}; bonafide recall {s['bonafide_recall']:.0%}, spoof {s['spoof_recall']:.0%}), "
            f"certified right on {s['certified_accuracy']['0']:.0%} at radius 0 and {s['certified_accuracy']['1']:.0%} at 1; "
            f"median certified radius {s['median_radius']:g}, largest {top if top is not None else 'none'} pixels, "
            f"against Pixle's mean L0 of {l0_txt} (certified accuracy there: "
            f"{s['certified_accuracy_at_pixle_l0'] if s['certified_accuracy_at_pixle_l0'] is not None else float('nan'):.0%}). "
            f"Adaptive attacks flipped {flips} of the {within} (clip, attack) pairs that changed a certified clip in "
            f"at most its radius. With k={stage.config['k']} and n={stage.config['n']}, no clip can be certified "
            f"beyond {s.get('max_certifiable_radius', 'n/a')} pixels, whatever the detector: the gap to the attacks' "
            "L0 is set by the certificate's parameters as much as by the detector." + reach_sentence(stage, l0))
    if len(stage.sweep) > 1:
        lo, hi = stage.sweep[0], stage.sweep[-1]
        l0_txt = f"{lo['pixle_mean_l0']:.0f}" if lo["pixle_mean_l0"] is not None else "n/a"
        lines.append(
            f"- **The k trade-off ({lo['model']})**: from k={lo['k']} to k={hi['k']} pixels kept, the base detector's "
            f"train accuracy goes from {lo['train_accuracy']:.0%} to {hi['train_accuracy']:.0%} and the smoothed "
            f"detector's balanced accuracy from {lo['balanced_accuracy']:.0%} to {hi['balanced_accuracy']:.0%}, while "
            f"the largest radius any clip can be certified at falls from {lo['max_certifiable_radius']} to "
            f"{hi['max_certifiable_radius']} pixels (Pixle's mean L0: {l0_txt}).")
    return "\n".join(lines)


__all__ = ["VERSION", "RADII", "CertConfig", "CertifiedStage", "base_spec", "ablation_init", "base_inputs", "train_base", "certified_curve",
           "median_radius", "summarise", "ci_half_width", "check_attack", "adaptive_attacks", "VARIANTS", "variant_kwargs",
           "patch_delta", "bands_affordable", "patch_summary", "patch_attack", "record_base", "derandomized", "pixle_mean_l0",
           "empirical_rows", "sweep_row", "k_sweep", "run_certified", "summary_table", "attacks_table", "patch_table",
           "sweep_table", "sweep_figure", "certified_figure", "reach_sentence", "verdict_markdown"]
