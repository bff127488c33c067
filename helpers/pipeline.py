"""The steps the notebooks share: prepare the data, train or reuse the detectors, write metrics.

Each step is cached under a key derived from the parameters that shape it, so a notebook run
on its own recomputes what it needs, a re-run reuses everything, and a changed parameter
recomputes only what depends on it.
"""

from __future__ import annotations

import csv
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

import pandas as pd
import torch

from helpers import corpus as C
from helpers.copysynth import CopySynthConfig, build_copysynth
from helpers.features import FeatureConfig, FeatureSet, cached_features
from helpers.io import cache_key, load_json, save_json
from helpers.models import MODEL_VERSION
from helpers.paths import checkpoints_dir, interim_dir, metrics_dir, profile_dir
from helpers.training import TrainConfig, TrainResult, pixle_generator, train


@dataclass(frozen=True)
class DataParams:
    dataset: Literal["copysynth", "asvspoof2021_df"] = "copysynth"
    seed: int = 2022
    speech_dir: str | None = None           # copysynth: folder of real speech (default: Asterisk prompts)
    asvspoof_root: str | None = None        # asvspoof2021_df: local copy (else $ASVSPOOF2021_DF_ROOT, else download)
    asvspoof_parts: tuple[str, ...] = ("part00",)
    max_sources: int | None = None          # copysynth: use the first N recordings
    segment_s: float = 3.0
    n_trials: int | None = None             # sample size (None = every trial, or all that the share allows)
    bonafide_share: float | None = 0.5      # None = the corpus's own mix
    split: tuple[float, float, float] = (0.7, 0.1, 0.2)
    features: str = "thesis_rgb32"
    feature_size: int = 32
    on_error: Literal["error", "skip"] = "error"

    def feature_config(self) -> FeatureConfig:
        return FeatureConfig(name=self.features, size=self.feature_size)  # type: ignore[arg-type]


@dataclass
class Prepared:
    params: DataParams
    key: str
    corpus_root: Path
    table: pd.DataFrame                       # sampled trials with split, label, attack, path
    sets: dict[str, FeatureSet] = field(default_factory=dict)
    skipped: list[dict] = field(default_factory=list)
    extraction_seconds: float = 0.0

    @property
    def feature_config(self) -> FeatureConfig:
        return self.params.feature_config()

    def xy(self, split: str) -> tuple[torch.Tensor, torch.Tensor]:
        return self.sets[split].x, self.sets[split].y

    def describe(self) -> dict:
        t = self.table
        return {"dataset": self.params.dataset, "corpus_root": str(self.corpus_root), "data_key": self.key,
                "features": self.params.features, "feature_shape": list(self.feature_config.shape),
                "n_trials": len(t), "by_split": {s: {lab: int(((t.split == s) & (t.label == lab)).sum())
                                                     for lab in C.CLASSES} for s in C.SPLITS},
                "by_attack": t["attack"].value_counts().to_dict(), "n_skipped": len(self.skipped)}


def build_corpus(p: DataParams) -> tuple[Path, C.CorpusLayout, bool]:
    """Build or locate the corpus; returns (root, layout, whether every audio file must be keyed)."""
    if p.dataset == "copysynth":
        root = build_copysynth(p.speech_dir or os.environ.get("SPEECH_DIR") or None,
                               CopySynthConfig(segment_s=p.segment_s, max_sources=p.max_sources, seed=p.seed))
        return root, C.CorpusLayout(root / "keys/CM/trial_metadata.txt", root / "flac",
                                    root / "keys/CM/trial_groups.txt"), True
    if p.dataset == "asvspoof2021_df":
        from helpers.asvspoof import prepare_asvspoof

        local = p.asvspoof_root or os.environ.get("ASVSPOOF2021_DF_ROOT")
        out = interim_dir() / "asvspoof2021_df" / cache_key({"p": asdict(p), "local": local})
        prepare_asvspoof(out, lambda df: C.sample_trials(df, p.n_trials, p.bonafide_share, p.seed),
                         root=Path(local) if local else None, parts=tuple(p.asvspoof_parts))
        return out, C.CorpusLayout(out / "keys/CM/trial_metadata.txt", out / "flac"), True
    raise ValueError(f"unknown DATASET {p.dataset!r}; choose 'copysynth' or 'asvspoof2021_df'")


def prepare_data(p: DataParams, profile: str | None = None, device: str = "cpu", progress: bool = True) -> Prepared:
    """Corpus -> seeded sample -> group-disjoint splits -> cached feature tensors per split."""
    root, layout, strict = build_corpus(p)
    df, skipped = C.load_corpus(layout, on_missing="skip" if p.on_error == "skip" else "error",
                                check_orphans=strict)
    corpus_key = root.name
    key = cache_key({"corpus": corpus_key, "p": asdict(p)})
    folder = interim_dir() / "prepared" / key
    table_file = folder / "trials.csv"
    if table_file.exists():
        table = pd.read_csv(table_file, dtype=str, keep_default_na=False)
        table["y"] = table["y"].astype(int)
    else:
        sample = C.sample_trials(df, p.n_trials, p.bonafide_share, p.seed)
        table = C.split_by_group(sample, p.split, p.seed)
        folder.mkdir(parents=True, exist_ok=True)
        from helpers.io import atomic_write

        atomic_write(table_file, table.to_csv(index=False))
    prep = Prepared(p, key, root, table, skipped=list(skipped))
    cfg = p.feature_config()
    for split in C.SPLITS:
        part = table[table["split"] == split]
        fs = cached_features(folder / f"{split}-{cfg.name}-{cfg.key()}.safetensors", part["path"].tolist(),
                             part["y"].tolist(), part["trial"].tolist(), cfg, device, desc=f"features {split}",
                             on_error=p.on_error, skipped=prep.skipped)
        prep.sets[split] = fs
        prep.extraction_seconds += fs.seconds
    if profile is not None and prep.skipped:
        write_skipped(profile, prep.skipped)
    conversions = [c for fs in prep.sets.values() for c in fs.conversions]
    if profile is not None and conversions:
        _write_csv(profile_dir(profile) / "conversions.csv", conversions, ["file", "trial", "conversions"])
    return prep


def write_skipped(profile: str, rows: list[dict]) -> Path:
    """``outputs/<profile>/skipped.csv``: every file a run skipped, and why."""
    return _write_csv(profile_dir(profile) / "skipped.csv", rows, ["file", "trial", "reason"])


def _write_csv(path: Path, rows: list[dict], fields: list[str]) -> Path:
    import io

    from helpers.io import atomic_write

    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=fields)
    w.writeheader()
    w.writerows(rows)
    return atomic_write(path, buf.getvalue())


# --------------------------------------------------------------------------- detectors

def train_config(epochs: int, batch_size: int, lr: float, momentum: float, seed: int,
                 max_batches: int | None = None, early_stop_patience: int | None = None) -> TrainConfig:
    return TrainConfig(epochs=epochs, batch_size=batch_size, lr=lr, momentum=momentum, seed=seed,
                       max_batches=max_batches, early_stop_patience=early_stop_patience)


def baseline(arch: str, prep: Prepared, cfg: TrainConfig, profile: str, device: str = "cpu",
             progress: bool = True) -> TrainResult:
    """Train the thesis baseline, or reuse / resume its checkpoint."""
    ckpt = checkpoints_dir(profile) / f"{arch}-baseline-{cache_key({'d': prep.key, 't': asdict(cfg), 'm': MODEL_VERSION})}.safetensors"
    meta = {"features": prep.params.features, "kind": "baseline", "data_key": prep.key}
    return train(arch, prep.feature_config.channels, prep.xy("train"), prep.xy("val"), cfg, ckpt, meta,
                 device=device, progress=progress)


def adversarial(arch: str, prep: Prepared, cfg: TrainConfig, attack_kwargs: dict, profile: str,
                init: TrainResult | None = None, device: str = "cpu", progress: bool = True) -> TrainResult:
    """Adversarial training (clean + Pixle loss against a frozen copy), reused / resumed from its checkpoint.

    ``init`` fine-tunes from a trained baseline (CPU profiles); ``None`` trains from scratch (the thesis).
    """
    same_result = {k: v for k, v in attack_kwargs.items() if k not in ("block", "target_batch", "progress")}
    key = cache_key({"d": prep.key, "t": asdict(cfg), "a": same_result, "m": MODEL_VERSION,
                     "init": None if init is None else str(init.checkpoint)})
    ckpt = checkpoints_dir(profile) / f"{arch}-adversarial-{key}.safetensors"
    meta = {"features": prep.params.features, "kind": "adversarial", "data_key": prep.key,
            "attack": attack_kwargs, "init": "scratch" if init is None else "baseline"}
    gen = pixle_generator(attack_kwargs, seed=cfg.seed)
    return train(arch, prep.feature_config.channels, prep.xy("train"), prep.xy("val"), cfg, ckpt, meta, adv=gen,
                 init=None if init is None else init.model, device=device, progress=progress)


# --------------------------------------------------------------------------- metrics files

def save_metrics(profile: str, name: str, payload: dict, prep: Prepared | None = None) -> Path:
    """``outputs/<profile>/metrics/<name>.json`` with the corpus and profile that produced it."""
    head = {"profile": profile}
    if prep is not None:
        head.update({"dataset": prep.params.dataset, "features": prep.params.features, "data_key": prep.key})
    return save_json(metrics_dir(profile) / f"{name}.json", {**head, **payload})


def load_metrics(profile: str, name: str) -> dict | None:
    path = metrics_dir(profile) / f"{name}.json"
    return load_json(path) if path.exists() else None


# --------------------------------------------------------------------------- between notebooks

class MissingStepError(RuntimeError):
    """A notebook needs the output of an earlier one that has not run for this profile."""


def _require(profile: str, name: str, producer: str) -> dict:
    data = load_metrics(profile, name)
    if data is None:
        raise MissingStepError(f"outputs/{profile}/metrics/{name}.json is missing: run {producer} first "
                               f"(python run_all.py --profile {profile} --only {producer[:2]})")
    return data


def load_prepared(profile: str, progress: bool = False) -> Prepared:
    """The data 00_data.ipynb prepared for this profile (from the cache; recomputed if it was deleted)."""
    meta = _require(profile, "00_data", "00_data.ipynb")
    p = meta["data_params"]
    p["split"] = tuple(p["split"])
    p["asvspoof_parts"] = tuple(p["asvspoof_parts"])
    return prepare_data(DataParams(**p), profile, progress=progress)


def load_detector(profile: str, arch: str, kind: Literal["baseline", "adversarial"], prep: Prepared,
                  device: str = "cpu"):
    """A trained detector from the checkpoint recorded by 01 (baseline) or 04 (adversarial)."""
    from helpers.models import build_model
    from helpers.training import load_checkpoint

    name, producer = ("01_baselines", "01_baselines.ipynb") if kind == "baseline" else \
        ("04_adversarial_training", "04_adversarial_training.ipynb")
    meta = _require(profile, name, producer)
    if arch not in meta.get("checkpoints", {}):
        raise MissingStepError(f"{name}.json has no {arch} checkpoint; add it to MODELS and run {producer}")
    model = build_model(arch, prep.feature_config.channels)  # type: ignore[arg-type]
    path = Path(meta["checkpoints"][arch])
    load_checkpoint(path, model, expect={"arch": arch, "features": prep.params.features,
                                         "in_channels": prep.feature_config.channels, "model_version": MODEL_VERSION})
    model.checkpoint_id = path.stem   # names the weights in attack caches: a retrained model is attacked afresh
    return model.to(device).to(memory_format=torch.channels_last).eval()


def attack_subset(y: torch.Tensor, n: int | None, seed: int) -> torch.Tensor:
    """Indices of up to ``n`` test clips, class-balanced where possible, seeded and sorted."""
    if n is None or n >= len(y):
        return torch.arange(len(y))
    g = torch.Generator().manual_seed(seed)
    per = [(y == c).nonzero().flatten() for c in (0, 1)]
    per = [p[torch.randperm(len(p), generator=g)] for p in per]
    half = n // 2
    take = [per[0][: max(half, n - len(per[1]))], per[1][: max(n - half, n - len(per[0]))]]
    idx = torch.cat(take)[:n]
    return idx.sort().values


def attacked_subset(profile: str, prep: Prepared):
    """What 02_pixle_attack.ipynb attacked: (its AttackConfig, subset indices, x, y, its metrics)."""
    from helpers.evaluation import AttackConfig

    pix = _require(profile, "02_pixle", "02_pixle_attack.ipynb")
    a = pix["attack"]
    cfg = AttackConfig(**{**a, "x_dimensions": tuple(a["x_dimensions"]), "y_dimensions": tuple(a["y_dimensions"])})
    subset = torch.tensor(pix["subset"], dtype=torch.long)
    x_all, y_all = prep.xy("test")
    return cfg, subset, x_all[subset], y_all[subset], pix
