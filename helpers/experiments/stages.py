"""The protocol of each notebook as one documented function per stage, and what each stage hands on.

A notebook is a story told with these calls; the protocol lives here, once:

====================  ==============================================  ==========================
notebook              stage function                                  record it writes
====================  ==============================================  ==========================
00_data               :func:`run_data`                                :class:`DataStage`
01_baselines          :func:`run_baselines`                           :class:`BaselinesStage`
02_pixle_attack       :func:`run_pixle`                               :class:`PixleStage`
03_spatial_smoothing  :func:`run_smoothing` (-> :func:`evaluate_defense`)  :class:`SmoothingStage`
04_adversarial_...    :func:`run_adversarial` (-> :func:`evaluate_defense`)  :class:`AdversarialStage`
====================  ==============================================  ==========================

Each record is a dataclass saved as ``outputs/<profile>/metrics/<name>.json`` with every path
relative to ``outputs/<profile>/`` (a results folder can be moved or shared), and read back with
:func:`read_stage`, which names the notebook to run when the record is absent or damaged. Every
record carries the corpus, the features and the sampling protocol (class mix, split grouping,
fractions) that produced it, so no number is read without them.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, ClassVar, Literal

import torch

from helpers.defenses.smoothing import Defended, GaussianBlur
from helpers.evaluation.attack_loop import AttackConfig, AttackJob, AttackRun, attack_cache_dir, load_attack, record
from helpers.config.sections import (AdversarialSection, DataSection, PixleSection, SmoothingSection, TrainSection,
                                      augment_features_problem, from_upper, upper_kwargs)
from helpers.io import quarantine, save_json
from helpers.models.detectors import MODEL_VERSION, predict
from helpers.paths import cache_dir, metrics_dir, profile_dir
from helpers.experiments.pipeline import DataParams, Prepared, adversarial, baseline, prepare_data
from helpers.models.training import TrainConfig, TrainResult, train


class MissingStepError(RuntimeError):
    """A notebook needs the output of an earlier one that has not run (or whose record is damaged)."""


# --------------------------------------------------------------------------- records

@dataclass
class StageRecord:
    """What every stage record holds: its profile and the data it was computed on."""

    NAME: ClassVar[str] = ""
    NOTEBOOK: ClassVar[str] = ""
    profile: str
    dataset: str
    features: str
    data_key: str
    protocol: dict

    @classmethod
    def head(cls, profile: str, prep: Prepared) -> dict:
        return {"profile": profile, "dataset": prep.params.dataset, "features": prep.params.features,
                "data_key": prep.key, "protocol": prep.protocol()}

    def save(self) -> Path:
        """``metrics/<NAME>.json``; every condition record in it is stamped with the sampling protocol."""
        data = asdict(self)
        for key in ("records", "full_test_records"):
            for r in data.get(key, []):
                r.setdefault("protocol", self.protocol)
        return save_json(metrics_dir(self.profile) / f"{self.NAME}.json", data)

    def path(self, rel: str) -> Path:
        """A path this record stores relative to ``outputs/<profile>/``, made absolute."""
        return profile_dir(self.profile) / rel


def rel(profile: str, path: str | Path) -> str:
    """``path`` relative to ``outputs/<profile>/`` (how records store paths)."""
    return str(Path(path).resolve().relative_to(profile_dir(profile)))


@dataclass
class DataStage(StageRecord):
    NAME: ClassVar[str] = "00_data"
    NOTEBOOK: ClassVar[str] = "00_data"
    data_params: dict = field(default_factory=dict)
    summary: dict = field(default_factory=dict)
    feature_clips_per_second: float | None = None
    figure_vs_direct_correlation: float | None = None
    sample_note: str = ""


@dataclass
class BaselinesStage(StageRecord):
    NAME: ClassVar[str] = "01_baselines"
    NOTEBOOK: ClassVar[str] = "01_baselines"
    train: dict = field(default_factory=dict)
    checkpoints: dict[str, str] = field(default_factory=dict)       # arch -> checkpoint, relative
    histories: dict[str, list] = field(default_factory=dict)
    reused: dict[str, bool] = field(default_factory=dict)
    train_seconds: dict[str, float] = field(default_factory=dict)
    full_test_records: list[dict] = field(default_factory=list)
    breakdown: list[dict] = field(default_factory=list)             # clean EER per vocoder / codec / speaker
    per_system: list[dict] = field(default_factory=list)            # clean EER + 95% CI per system, seen/unseen, family, codec, bonafide speaker


@dataclass
class PixleStage(StageRecord):
    NAME: ClassVar[str] = "02_pixle"
    NOTEBOOK: ClassVar[str] = "02_pixle_attack"
    attack: dict = field(default_factory=dict)
    subset: list[int] = field(default_factory=list)                 # indices into the test split
    records: list[dict] = field(default_factory=list)
    adv_cache: dict[str, str] = field(default_factory=dict)         # arch -> adversarial examples, relative
    budget_curve: dict = field(default_factory=dict)
    attack_seconds: dict[str, float] = field(default_factory=dict)

    def attack_config(self) -> AttackConfig:
        a = self.attack
        return AttackConfig(**{**a, "x_dimensions": tuple(a["x_dimensions"]), "y_dimensions": tuple(a["y_dimensions"])})


@dataclass
class SmoothingStage(StageRecord):
    NAME: ClassVar[str] = "03_smoothing"
    NOTEBOOK: ClassVar[str] = "03_spatial_smoothing"
    blur: dict = field(default_factory=dict)
    records: list[dict] = field(default_factory=list)
    sigma_sweep: list[dict] = field(default_factory=list)
    adaptive_adv_cache: dict[str, str] = field(default_factory=dict)

    def blur_config(self) -> "BlurConfig":
        return BlurConfig(**self.blur)


@dataclass
class AdversarialStage(StageRecord):
    NAME: ClassVar[str] = "04_adversarial_training"
    NOTEBOOK: ClassVar[str] = "04_adversarial_training"
    init: str = "scratch"
    train: dict = field(default_factory=dict)
    train_attack: dict = field(default_factory=dict)
    checkpoints: dict[str, str] = field(default_factory=dict)
    histories: dict[str, list] = field(default_factory=dict)
    train_seconds: dict[str, float] = field(default_factory=dict)
    records: list[dict] = field(default_factory=list)
    adv_cache: dict[str, str] = field(default_factory=dict)
    adaptive_adv_cache: dict[str, str] = field(default_factory=dict)


STAGES: dict[str, type[StageRecord]] = {c.NAME: c for c in (DataStage, BaselinesStage, PixleStage, SmoothingStage,
                                                             AdversarialStage)}


def read_stage(profile: str, cls: type[StageRecord], required: bool = True):
    """The record ``cls`` of ``profile``; a missing or damaged one names the notebook that writes it."""
    path = metrics_dir(profile) / f"{cls.NAME}.json"
    run = f"run notebooks/{cls.NOTEBOOK}.ipynb first (python run_all.py --profile {profile} --only {cls.NOTEBOOK[:2]})"
    if not path.exists():
        if not required:
            return None
        raise MissingStepError(f"outputs/{profile}/metrics/{cls.NAME}.json is missing: {run}")
    try:
        data = json.loads(path.read_text())
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})
    except (json.JSONDecodeError, TypeError, UnicodeDecodeError) as exc:
        quarantine(path, exc, action=f"it must be written again: {run}")
        if not required:
            return None
        raise MissingStepError(f"outputs/{profile}/metrics/{cls.NAME}.json was damaged and moved aside: {run}") from exc


# --------------------------------------------------------------------------- configs from notebook parameters

def data_params(ns: dict) -> DataParams:
    """The 00 notebook's parameters (``globals()``) as :class:`DataParams`, checked (:class:`DataSection`) first.

    Each field reads its upper-cased parameter (``split_by`` <- ``SPLIT_BY``,
    :func:`helpers.config.sections.upper_kwargs`), so a new field with a parameter of that name needs no line here.
    """
    DataSection.from_params(ns)
    kw = upper_kwargs(DataParams, ns)
    kw["speech_dir"] = kw.get("speech_dir") or None          # "" in a profile: the default speech
    kw["asvspoof_root"] = kw.get("asvspoof_root") or None
    return DataParams(**kw)


def train_config(ns: dict, prefix: str = "") -> TrainConfig:
    """``EPOCHS, BATCH_SIZE, LR, LR_SCHEDULE, WARMUP_EPOCHS, MOMENTUM, SEED, MAX_BATCHES`` (and any TrainConfig
    field's upper-cased name) as a TrainConfig, checked (:class:`TrainSection`) first. ``prefix="AT_"`` (04):
    ``AT_EPOCHS`` and ``AT_LR`` (else ``LR``), the constant schedule."""
    TrainSection.from_params(ns)
    if not prefix:
        return from_upper(TrainConfig, ns, rename={"schedule": "LR_SCHEDULE"})
    AdversarialSection.from_params(ns)
    return from_upper(TrainConfig, ns, rename={"epochs": f"{prefix}EPOCHS", "lr": f"{prefix}LR" if f"{prefix}LR" in ns else "LR"},
                      exclude=("schedule", "warmup_epochs"))


def attack_config(ns: dict) -> AttackConfig:
    """The 02 notebook's ``PIXLE_*`` parameters (and ``SEED``) as an :class:`AttackConfig`, checked (:class:`PixleSection`) first."""
    PixleSection.from_params(ns)
    return from_upper(AttackConfig, ns, prefix="PIXLE_", rename={
        "max_iterations": "PIXLE_ITERATIONS", "x_dimensions": "PIXLE_X_DIM", "y_dimensions": "PIXLE_Y_DIM",
        "pixel_mapping": "PIXLE_MAPPING", "seed": "SEED"})


@dataclass(frozen=True)
class BlurConfig:
    """The thesis's smoothing: ``GaussianBlur(kernel 5, sigma drawn from (0.1, 5))``, one draw per batch."""

    kernel_size: int = 5
    sigma: float | list = field(default_factory=lambda: [0.1, 5.0])
    per: Literal["batch", "image"] = "batch"
    eval_batch: int = 16        # evaluation batch (one sigma per batch, as the thesis's loader)
    eot: int = 1                # adaptive attack: scores averaged over this many blur draws

    @classmethod
    def from_params(cls, ns: dict) -> "BlurConfig":
        """``BLUR_*``, ``EVAL_BATCH`` and ``EOT_SAMPLES``, checked (:class:`SmoothingSection`) first."""
        sec = SmoothingSection.from_params(ns)
        sigma = list(sec.sigma) if isinstance(sec.sigma, tuple) else float(sec.sigma)   # as records store it
        return cls(sec.kernel_size, sigma, sec.per, sec.eval_batch, sec.eot)

    def make(self, seed: int) -> GaussianBlur:
        """A blur with its own seeded draws (JSON lists become ranges)."""
        sig = tuple(self.sigma) if isinstance(self.sigma, (list, tuple)) else float(self.sigma)
        return GaussianBlur(self.kernel_size, sig, self.per, seed=seed)

    def tag(self) -> str:
        sig = tuple(self.sigma) if isinstance(self.sigma, (list, tuple)) else float(self.sigma)
        return f"blur{self.kernel_size}-{sig}-{self.per}-eot{self.eot}"


# --------------------------------------------------------------------------- shared pieces

def detector_id(checkpoint: str | Path) -> str:
    """How attack caches name a detector: its checkpoint's file stem (a retrained model is attacked afresh)."""
    return Path(checkpoint).stem


def subset_key(prep: Prepared, subset: torch.Tensor) -> str:
    """The attacked data in cache keys: the prepared data and the chosen test clips."""
    return prep.key + str(subset.tolist())


def attack_subset(y: torch.Tensor, n: int | None, seed: int) -> torch.Tensor:
    """Indices of up to ``n`` test clips, class-balanced where possible, seeded and sorted.

    ``n=None`` attacks every test clip, keeping the test split's class mix (the thesis protocol).
    """
    if n is None or n >= len(y):
        return torch.arange(len(y))
    g = torch.Generator().manual_seed(seed)
    per = [(y == c).nonzero().flatten() for c in (0, 1)]
    per = [p[torch.randperm(len(p), generator=g)] for p in per]
    half = n // 2
    take = [per[0][: max(half, n - len(per[1]))], per[1][: max(n - half, n - len(per[0]))]]
    idx = torch.cat(take)[:n]
    return idx.sort().values


def load_prepared(profile: str) -> Prepared:
    """The data 00_data prepared for this profile (from the cache; recomputed if it was deleted)."""
    d = read_stage(profile, DataStage)
    p = dict(d.data_params)
    for name in ("split", "asvspoof_parts", "speech_sources", "codecs"):
        if name in p:
            p[name] = tuple(p[name])
    names = {f.name for f in dataclasses.fields(DataParams)}
    return prepare_data(DataParams(**{k: v for k, v in p.items() if k in names}), profile)


def load_detector(profile: str, arch: str, kind: Literal["baseline", "adversarial"], prep: Prepared,
                  device: str | torch.device = "cpu"):
    """A trained detector from the checkpoint recorded by 01 (baseline) or 04 (adversarial)."""
    from helpers.models.detectors import build_model
    from helpers.models.training import load_checkpoint

    rec = read_stage(profile, BaselinesStage if kind == "baseline" else AdversarialStage)
    if arch not in rec.checkpoints:
        raise MissingStepError(f"{rec.NAME}.json has no {arch} checkpoint; add it to MODELS and run "
                               f"notebooks/{rec.NOTEBOOK}.ipynb")
    path = rec.path(rec.checkpoints[arch])
    model = build_model(arch, prep.feature_config.channels, stem=prep.feature_config.stem)  # type: ignore[arg-type]
    load_checkpoint(path, model, expect={"arch": arch, "features": prep.params.features,
                                         "in_channels": prep.feature_config.channels, "model_version": MODEL_VERSION})
    model.checkpoint_id = detector_id(path)
    return model.to(device).to(memory_format=torch.channels_last).eval()


@dataclass
class Attacked:
    """The clips 02 attacked, with its attack configuration."""

    config: AttackConfig
    subset: torch.Tensor
    x: torch.Tensor
    y: torch.Tensor
    stage: PixleStage


def attacked_clips(profile: str, prep: Prepared) -> Attacked:
    """What 02_pixle_attack attacked: its AttackConfig and the test clips (x, y)."""
    pix = read_stage(profile, PixleStage)
    subset = torch.tensor(pix.subset, dtype=torch.long)
    x_all, y_all = prep.xy("test")
    return Attacked(pix.attack_config(), subset, x_all[subset], y_all[subset], pix)


# --------------------------------------------------------------------------- 00 data

def run_data(ns: dict, profile: str, device: str | torch.device = "cpu") -> tuple[Prepared, DataStage]:
    """Corpus -> seeded sample -> splits -> cached features; the record 01-05 read."""
    params = data_params(ns)
    prep = prepare_data(params, profile, device=str(device))
    rec = DataStage(**DataStage.head(profile, prep), data_params=asdict(params), summary=prep.describe(),
                    sample_note=prep.table.attrs.get("note", ""))
    if params.dataset == "copysynth":   # the spoofing systems: which ran, which were left out and why
        from helpers.data.synthesis import systems_overview
        from helpers.io import load_json

        manifest = load_json(prep.corpus_root / "manifest.json") if (prep.corpus_root / "manifest.json").exists() else {}
        rec.summary["systems"] = systems_overview(prep.corpus_root, prep.table).to_dict("records")
        rec.summary["systems_missing"] = manifest.get("systems_missing", [])
        rec.summary["synthesis_skipped"] = manifest.get("synthesis_skipped", 0)
    rec.save()
    return prep, rec


# --------------------------------------------------------------------------- 01 baselines

def clean_breakdown(arch: str, logits: torch.Tensor, prep: Prepared, split: str = "test") -> list[dict]:
    """Clean EER (and accuracy) of one detector per vocoder, per codec and per speaker.

    Per vocoder: every bonafide clip against that vocoder's spoofs (ASVspoof's per-attack EER). Per
    codec and per speaker: the bonafide and spoof clips of that codec or speaker. Groups with one class only
    get no EER.
    """
    from helpers.evaluation.metrics import accuracy, bonafide_score, eer

    t = prep.table[prep.table.split == split].reset_index(drop=True)
    trials = prep.sets[split].trials
    t = t.set_index("trial").loc[trials].reset_index()
    y, score, pred = prep.sets[split].y, bonafide_score(logits), logits.argmax(1)
    rows = []
    for by, column in (("vocoder", "attack"), ("codec", "codec"), ("speaker", "speaker")):
        for value in sorted(t[column].unique()):
            if by == "vocoder":
                if value == "-":
                    continue
                mask = torch.tensor(((t[column] == value) | (t.label == "bonafide")).to_numpy())
            else:
                mask = torch.tensor((t[column] == value).to_numpy())
            rows.append({"model": arch, "by": by, "group": value, "n": int(mask.sum()),
                         "n_bonafide": int((y[mask] == 0).sum()), "eer": eer(y[mask], score[mask]),
                         "accuracy": accuracy(y[mask], pred[mask])})
    return rows


MIN_SPEAKER_CLIPS = 5     # per-speaker rows of system_breakdown: fewer bonafide clips give an EER of 0 or 1 by chance
MAX_SPEAKER_ROWS = 20     # and a bootstrap per row: the largest speakers only (ASVspoof has dozens)


def system_breakdown(arch: str, logits: torch.Tensor, prep: Prepared, split: str = "test", n_boot: int = 1000,
                     seed: int = 0) -> list[dict]:
    """Clean EER with 95% bootstrap CIs (:func:`helpers.evaluation.metrics.eer_by_group`) of one detector:
    per spoofing system (every bonafide clip against that system's spoofs, ASVspoof's per-attack EER), pooled
    over the seen and over the unseen systems, per family, per codec condition (both classes of it), and per
    bonafide speaker (that speaker's bonafide clips against every spoof: whether a pooled EER comes from the
    spoofs or from one speaker's recordings that the detector cannot tell from them; the ``MAX_SPEAKER_ROWS``
    speakers with the most bonafide test clips, each with at least ``MIN_SPEAKER_CLIPS``). 01's ``breakdown``
    has another per-speaker EER: a speaker's bonafide clips against the spoofs made from them."""
    import numpy as np
    import pandas as pd

    from helpers.evaluation.metrics import bonafide_score, eer_by_group

    t = prep.table[prep.table.split == split].set_index("trial").loc[prep.sets[split].trials].reset_index()
    if "system" not in t:
        return []
    bona = (t.label == "bonafide").to_numpy()
    groups: dict[str, np.ndarray] = {}
    extra: dict[str, dict] = {}
    for sid in sorted(t.loc[~bona, "system"].unique()):
        rows = t[t.system == sid]
        key = f"system:{sid}"
        groups[key] = bona | (t.system == sid).to_numpy()
        extra[key] = {"by": "system", "system": sid, "family": rows.family.iloc[0], "seen": rows.seen.iloc[0]}
    for kind in ("seen", "unseen"):
        if ((t.seen == kind) & ~bona).any():
            groups[f"seen:{kind}"] = bona | (t.seen == kind).to_numpy()
            extra[f"seen:{kind}"] = {"by": "seen", "system": f"all {kind}", "family": "-", "seen": kind}
    for fam in sorted(t.loc[~bona, "family"].unique()):
        groups[f"family:{fam}"] = bona | (t.family == fam).to_numpy()
        extra[f"family:{fam}"] = {"by": "family", "system": "-", "family": fam, "seen": "-"}
    for codec in sorted(t.codec.unique()):
        groups[f"codec:{codec}"] = (t.codec == codec).to_numpy()
        extra[f"codec:{codec}"] = {"by": "codec", "system": "-", "family": "-", "seen": "-", "codec": codec}
    speakers = t.loc[bona, "speaker"].value_counts() if "speaker" in t else pd.Series(dtype=int)
    for spk in sorted(speakers[speakers >= MIN_SPEAKER_CLIPS].index[:MAX_SPEAKER_ROWS]):   # the largest first
        key = f"bonafide_speaker:{spk}"
        groups[key] = ~bona | (bona & (t.speaker == spk).to_numpy())
        extra[key] = {"by": "bonafide_speaker", "system": "all", "family": "-", "seen": "-", "speaker": spk}
    rows = eer_by_group(prep.sets[split].y.numpy(), bonafide_score(logits).numpy(), groups, n_boot=n_boot, seed=seed,
                        **extra)
    return [{"model": arch, **r} for r in rows]


def run_baselines(profile: str, prep: Prepared, models: list[str], cfg: TrainConfig,
                  device: str | torch.device = "cpu") -> tuple[dict[str, TrainResult], BaselinesStage]:
    """Train (or reuse) each baseline and evaluate it on the whole test split."""
    problem = augment_features_problem(cfg.augment, prep.params.features)
    if problem:
        raise ValueError(f"{problem} (FEATURES as 00 prepared the data: rerun 00 with FEATURES 'lfcc' for 'eq')")
    runs, records, breakdown, per_system = {}, [], [], []
    x_test, y_test = prep.xy("test")
    for arch in models:
        res = baseline(arch, prep, cfg, profile, device=str(device))
        runs[arch] = res
        logits = predict(res.model, x_test)
        records.append(record(arch, "baseline_clean", "clean", y_test, logits, clean_logits=logits,
                              scope="full test split"))
        breakdown += clean_breakdown(arch, logits, prep)
        per_system += system_breakdown(arch, logits, prep, seed=cfg.seed)
    rec = BaselinesStage(**BaselinesStage.head(profile, prep), train=asdict(cfg),
                         checkpoints={a: rel(profile, r.checkpoint) for a, r in runs.items()},
                         histories={a: r.history for a, r in runs.items()},
                         reused={a: r.reused for a, r in runs.items()},
                         train_seconds={a: r.seconds for a, r in runs.items()}, full_test_records=records,
                         breakdown=breakdown, per_system=per_system)
    rec.save()
    return runs, rec


# --------------------------------------------------------------------------- 02 Pixle

def pixle_jobs(profile: str, prep: Prepared, cfg: AttackConfig, n_attack: int | None, attack_batch: int,
               device: str | torch.device = "cpu") -> tuple[torch.Tensor, dict[str, AttackJob]]:
    """02's attacks: the seeded test subset, and one cached Pixle job per baseline (arch -> job)."""
    base = read_stage(profile, BaselinesStage)
    x_all, y_all = prep.xy("test")
    subset = attack_subset(y_all, n_attack, cfg.seed)
    x, y = x_all[subset], y_all[subset]
    jobs = {}
    for arch in base.checkpoints:
        model = load_detector(profile, arch, "baseline", prep, device)
        folder = attack_cache_dir(cache_dir(profile), model.checkpoint_id, cfg, "none", subset_key(prep, subset))
        jobs[arch] = AttackJob(model, x, y, cfg, folder, attack_batch, tag=arch)
    return subset, jobs


def run_pixle(profile: str, prep: Prepared, cfg: AttackConfig, n_attack: int | None, attack_batch: int,
              device: str | torch.device = "cpu"):
    """Attack every baseline on a seeded test subset; records baseline clean / under Pixle, and the budget curve."""
    from helpers.evaluation.attack_loop import robust_accuracy_curve

    subset, jobs = pixle_jobs(profile, prep, cfg, n_attack, attack_batch, device)
    budgets = list(range(0, cfg.restarts * cfg.max_iterations + 1, max(1, cfg.max_iterations // 5)))
    runs, detectors, records, dirs, curves = {}, {}, [], {}, {}
    for arch, job in jobs.items():
        run, model, y = job.run(device), job.model, job.y
        clean = predict(model, job.x)
        records.append(record(arch, "baseline_clean", "clean", y, clean, clean_logits=clean))
        records.append(record(arch, "baseline_pixle", "non-adaptive", y, predict(model, run.adv), clean_logits=clean,
                              run=run))
        curves[arch] = robust_accuracy_curve(y, clean.argmax(1), run, budgets)
        runs[arch], detectors[arch], dirs[arch] = run, model, rel(profile, job.cache_dir)
    rec = PixleStage(**PixleStage.head(profile, prep), attack=asdict(cfg), subset=subset.tolist(), records=records,
                     adv_cache=dirs, budget_curve={"candidates": budgets, **curves},
                     attack_seconds={a: r.seconds for a, r in runs.items()})
    rec.save()
    return runs, detectors, rec


# --------------------------------------------------------------------------- 03 / 04 the defended conditions

@dataclass
class DefenseEvaluation:
    records: list[dict]            # non-adaptive and adaptive
    adaptive_dir: Path
    adaptive_run: AttackRun
    blurred_adv: torch.Tensor      # the non-adaptive adversarial images after the blur (for figures)


def adaptive_job(profile: str, arch: str, model: torch.nn.Module, condition: str, clips: Attacked, blur: BlurConfig,
                 attack_batch: int, prep: Prepared) -> AttackJob:
    """The adaptive attack on ``Defended(model, blur)`` (seed + 3), cached per detector, blur and chunk grid."""
    seed = clips.config.seed
    # the random blur's draws follow the chunk grid and Pixle's forward batches: both are in the key
    folder = attack_cache_dir(cache_dir(profile), model.checkpoint_id, clips.config,
                              f"{blur.tag()}-grid{attack_batch}-tb{clips.config.target_batch}",
                              subset_key(prep, clips.subset))
    return AttackJob(Defended(model, blur.make(seed + 3), eot=blur.eot), clips.x, clips.y, clips.config, folder,
                     attack_batch, tag=f"{arch} {condition} adaptive")


def evaluate_defense(profile: str, arch: str, model: torch.nn.Module, condition: str, clips: Attacked,
                     bare_run: AttackRun, blur: BlurConfig, attack_batch: int, prep: Prepared,
                     device: str | torch.device = "cpu") -> DefenseEvaluation:
    """A detector behind the blur, evaluated as the thesis did (non-adaptive) and adaptively.

    *Non-adaptive* (the thesis): the adversarial images Pixle made against the bare ``model``
    (``bare_run``) are blurred, then classified; attack success, queries and L0 count the clips
    that attack worked on (the bare model's correct clips). *Adaptive*: Pixle queries
    ``Defended(model, blur)``, as any black-box attacker of the deployed pipeline can
    (:func:`adaptive_job`). Clean accuracy is measured with the blur on. Seeds: clean +1,
    non-adaptive +2, attack +3, adaptive +4.
    """
    seed, x, y = clips.config.seed, clips.x, clips.y
    clean_blur = predict(model, x, blur.eval_batch, preprocess=blur.make(seed + 1))
    draw = blur.make(seed + 2)    # one sigma per evaluation batch, as the thesis's loader
    blurred = torch.cat([draw(bare_run.adv[i:i + blur.eval_batch]) for i in range(0, len(y), blur.eval_batch)])
    adv_blur = predict(model, blurred, blur.eval_batch)
    recs = [record(arch, condition, "non-adaptive", y, adv_blur, clean_logits=clean_blur, run=bare_run)]
    job = adaptive_job(profile, arch, model, condition, clips, blur, attack_batch, prep)
    run = job.run(device)
    adv_logits = predict(model, run.adv, blur.eval_batch, preprocess=blur.make(seed + 4))
    recs.append(record(arch, condition, "adaptive", y, adv_logits, clean_logits=clean_blur, run=run, eot=blur.eot))
    return DefenseEvaluation(recs, job.cache_dir, run, blurred)


def sigma_sweep(models: dict[str, torch.nn.Module], clips: Attacked, bare_runs: dict[str, AttackRun],
                sigmas: list[float], kernel_size: int) -> list[dict]:
    """Clean and non-adaptive accuracy under a fixed-sigma blur, per model and sigma."""
    rows = []
    for arch, model in models.items():
        for s in sigmas:
            f = GaussianBlur(kernel_size, float(s))
            for setting, images in (("clean", clips.x), ("Pixle (non-adaptive)", bare_runs[arch].adv)):
                acc = float((predict(model, images, preprocess=f).argmax(1) == clips.y).float().mean())
                rows.append({"model": arch, "sigma": s, "setting": setting, "accuracy": acc})
    return rows


def smoothing_models(profile: str, prep: Prepared, device: str | torch.device = "cpu") -> tuple[Attacked, dict]:
    """What 03 defends: 02's attacked clips and every baseline 02 attacked (arch -> detector)."""
    clips = attacked_clips(profile, prep)
    return clips, {a: load_detector(profile, a, "baseline", prep, device) for a in clips.stage.adv_cache}


def smoothing_jobs(profile: str, prep: Prepared, blur: BlurConfig, attack_batch: int,
                   device: str | torch.device = "cpu") -> list[AttackJob]:
    """03's attacks: each baseline's adaptive attack behind the blur."""
    clips, models = smoothing_models(profile, prep, device)
    return [adaptive_job(profile, a, m, "smoothing_pixle", clips, blur, attack_batch, prep) for a, m in models.items()]


def run_smoothing(profile: str, prep: Prepared, blur: BlurConfig, sigmas: list[float], attack_batch: int,
                  device: str | torch.device = "cpu"):
    """03: every baseline behind the blur, non-adaptive and adaptive, plus the sigma sweep."""
    clips, models = smoothing_models(profile, prep, device)
    bare = {a: load_attack(clips.stage.path(d), len(clips.y)) for a, d in clips.stage.adv_cache.items()}
    evals = {a: evaluate_defense(profile, a, m, "smoothing_pixle", clips, bare[a], blur, attack_batch, prep, device)
             for a, m in models.items()}
    rec = SmoothingStage(**SmoothingStage.head(profile, prep), blur=asdict(blur),
                         records=[r for e in evals.values() for r in e.records],
                         sigma_sweep=sigma_sweep(models, clips, bare, sigmas, blur.kernel_size),
                         adaptive_adv_cache={a: rel(profile, e.adaptive_dir) for a, e in evals.items()})
    rec.save()
    return clips, models, bare, evals, rec


def adversarial_setup(profile: str, prep: Prepared, restarts: int, iterations: int) -> tuple[Attacked, BaselinesStage,
                                                                                            BlurConfig, dict]:
    """What 04 builds on: 02's attacked clips, 01's baselines, 03's blur, and the Pixle budget inside training."""
    clips = attacked_clips(profile, prep)
    train_attack = {**clips.config.kwargs(), "restarts": restarts, "max_iterations": iterations}
    return clips, read_stage(profile, BaselinesStage), read_stage(profile, SmoothingStage).blur_config(), train_attack


def adversarial_models(profile: str, prep: Prepared, cfg: TrainConfig, init: Literal["scratch", "baseline"],
                       restarts: int, iterations: int, device: str | torch.device = "cpu",
                       trainer: Callable[..., TrainResult] = train) -> dict[str, TrainResult]:
    """04's training: each baseline's architecture trained adversarially (thesis: from scratch; CPU profiles:
    fine-tuning the baseline), or reused from its checkpoint; each model on ``device`` with its ``checkpoint_id``.
    ``trainer``: :func:`helpers.models.training.train`'s signature (see :func:`helpers.experiments.pipeline.baseline`)."""
    _, base, _, train_attack = adversarial_setup(profile, prep, restarts, iterations)
    runs = {}
    for arch in base.checkpoints:
        start = None
        if init == "baseline":
            start = baseline(arch, prep, TrainConfig(**base.train), profile, device=str(device), progress=False)
        res = adversarial(arch, prep, cfg, train_attack, profile, init=start, device=str(device), trainer=trainer)
        res.model = res.model.to(device)
        res.model.checkpoint_id = detector_id(res.checkpoint)
        runs[arch] = res
    return runs


def adversarial_job(profile: str, arch: str, model: torch.nn.Module, clips: Attacked, attack_batch: int,
                    prep: Prepared) -> AttackJob:
    """Pixle on an adversarially trained detector (no preprocessing, so already adaptive)."""
    folder = attack_cache_dir(cache_dir(profile), model.checkpoint_id, clips.config, "none",
                              subset_key(prep, clips.subset))
    return AttackJob(model, clips.x, clips.y, clips.config, folder, attack_batch, tag=f"{arch} AT")


def adversarial_jobs(profile: str, prep: Prepared, cfg: TrainConfig, init: Literal["scratch", "baseline"],
                     restarts: int, iterations: int, attack_batch: int,
                     device: str | torch.device = "cpu") -> list[AttackJob]:
    """04's attacks (its training finished): per detector, Pixle on it bare and adaptively behind the blur."""
    clips, _, blur, _ = adversarial_setup(profile, prep, restarts, iterations)
    jobs = []
    for arch, res in adversarial_models(profile, prep, cfg, init, restarts, iterations, device).items():
        jobs += [adversarial_job(profile, arch, res.model, clips, attack_batch, prep),
                 adaptive_job(profile, arch, res.model, "combined_pixle", clips, blur, attack_batch, prep)]
    return jobs


def run_adversarial(profile: str, prep: Prepared, cfg: TrainConfig, init: Literal["scratch", "baseline"],
                    restarts: int, iterations: int, attack_batch: int, device: str | torch.device = "cpu"):
    """04: adversarial training (:func:`adversarial_models`), then its three conditions: clean, under Pixle
    (no preprocessing, so already adaptive), and behind the blur."""
    clips, _, blur, train_attack = adversarial_setup(profile, prep, restarts, iterations)
    runs = adversarial_models(profile, prep, cfg, init, restarts, iterations, device)
    records, dirs, adaptive_dirs = [], {}, {}
    for arch, res in runs.items():
        model = res.model
        job = adversarial_job(profile, arch, model, clips, attack_batch, prep)
        run = job.run(device)
        clean = predict(model, clips.x)
        records.append(record(arch, "adv_training_clean", "clean", clips.y, clean, clean_logits=clean))
        records.append(record(arch, "adv_training_pixle", "non-adaptive", clips.y, predict(model, run.adv),
                              clean_logits=clean, run=run, note="no preprocessing: attacking the model is already adaptive"))
        ev = evaluate_defense(profile, arch, model, "combined_pixle", clips, run, blur, attack_batch, prep, device)
        records += ev.records
        dirs[arch], adaptive_dirs[arch] = rel(profile, job.cache_dir), rel(profile, ev.adaptive_dir)
    rec = AdversarialStage(**AdversarialStage.head(profile, prep), init=init, train=asdict(cfg), train_attack=train_attack,
                           checkpoints={a: rel(profile, r.checkpoint) for a, r in runs.items()},
                           histories={a: r.history for a, r in runs.items()},
                           train_seconds={a: r.seconds for a, r in runs.items()}, records=records, adv_cache=dirs,
                           adaptive_adv_cache=adaptive_dirs)
    rec.save()
    return runs, rec


def records_frame(records: list[dict], columns: tuple[str, ...] = ("model", "condition", "evaluation", "clean_accuracy",
                                                                    "accuracy", "balanced_accuracy", "eer",
                                                                    "attack_success_rate", "queries", "l0")):
    """The summary columns of condition records as a DataFrame (what the notebooks display)."""
    import pandas as pd

    return pd.DataFrame([{c: r.get(c) for c in columns} for r in records])


__all__ = ["MissingStepError", "StageRecord", "DataStage", "BaselinesStage", "PixleStage", "SmoothingStage",
           "AdversarialStage", "STAGES", "read_stage", "data_params", "train_config", "attack_config", "BlurConfig",
           "attack_subset", "load_prepared", "load_detector", "attacked_clips", "Attacked", "run_data",
           "run_baselines", "pixle_jobs", "run_pixle", "adaptive_job", "evaluate_defense", "sigma_sweep",
           "smoothing_models", "smoothing_jobs", "run_smoothing", "adversarial_models", "adversarial_job",
           "adversarial_jobs", "run_adversarial",
           "records_frame", "detector_id", "subset_key"]
