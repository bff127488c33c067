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
from typing import Callable, Literal

import pandas as pd
import torch

from helpers.data import corpus as C
from helpers.data.copysynth import CopySynthConfig, build_copysynth
from helpers.data.synthesis import DEFAULT_SYSTEMS, DEFAULT_UNSEEN, check_unseen
from helpers.data.features import FeatureConfig, FeatureSet, cached_features
from helpers.io import atomic_write, cache_key, load_json, read_or_quarantine, save_json
from helpers.models.detectors import MODEL_VERSION
from helpers.paths import checkpoints_dir, interim_dir, metrics_dir, profile_dir
from helpers.models.training import TrainConfig, TrainResult, pixle_generator, train


@dataclass(frozen=True)
class DataParams:
    dataset: Literal["copysynth", "asvspoof2021_df"] = "copysynth"
    seed: int = 2022
    speech_dir: str | None = None           # copysynth: folder of real speech (default: Asterisk prompts)
    asvspoof_root: str | None = None        # asvspoof2021_df: local copy (else $ASVSPOOF2021_DF_ROOT, else download)
    asvspoof_parts: tuple[str, ...] = ("part00",)
    max_sources: int | None = None          # copysynth: at most N recordings
    speech_sources: tuple[str, ...] = ()    # copysynth: Debian speech packages (helpers.data.speech_sources); () = Asterisk 8 kHz
    minutes_per_speaker: float | None = None    # copysynth: cap per voice, so no voice dominates
    codecs: tuple[str, ...] = ("nocodec",)  # copysynth: ASVspoof 2021 DF codec conditions (helpers.data.codecs)
    spoof_systems: tuple[str, ...] = DEFAULT_SYSTEMS   # copysynth: spoofing system ids (helpers.data.synthesis.SYSTEMS)
    unseen_systems: tuple[str, ...] = DEFAULT_UNSEEN   # evaluation-only systems: test split only (ASVspoof 2019 LA)
    segment_s: float = 3.0
    n_trials: int | None = None             # sample size (None = every trial, or all that the share allows)
    bonafide_share: float | None = 0.5      # None = the corpus's own mix
    split: tuple[float, float, float] = (0.7, 0.1, 0.2)
    split_by: Literal["source", "speaker", "clip"] = "source"   # the unit no split straddles (corpus.split_units)
    unseen_voice_speaker: Literal["drawn", "test"] = "drawn"    # the speaker an unseen voice was built from (S07)
    features: str = "thesis_rgb32"
    feature_size: int = 32
    on_error: Literal["error", "skip"] = "error"

    def feature_config(self) -> FeatureConfig:
        return FeatureConfig(name=self.features, size=self.feature_size)  # type: ignore[arg-type]

    def key_fields(self) -> dict:
        """The fields that name a corpus build and a sample: every field but ``unseen_voice_speaker``, whose effect
        (the speakers it holds in test) :func:`prepare_data` adds to the key only where it changes the split, so
        the default keeps the keys of runs made before the switch existed."""
        return {k: v for k, v in asdict(self).items() if k != "unseen_voice_speaker"}


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

    def protocol(self) -> dict:
        """How the clips were sampled and split, and the image shape the detectors see: every metrics file records
        it (the report names it)."""
        t = self.table
        test = t[t.split == "test"]
        return {"bonafide_share": self.params.bonafide_share, "split_by": C.split_units(t, self.params.split_by)[1],
                "split": list(self.params.split), "n_trials": len(t),
                "test_bonafide_share": float((test.label == "bonafide").mean()) if len(test) else None,
                "n_test": len(test), "n_test_bonafide": int((test.label == "bonafide").sum()),
                "feature_shape": list(self.feature_config.shape),
                **({"held_in_test": list(held)} if (held := held_speakers(self.params, t)) else {})}

    def describe(self) -> dict:
        t = self.table
        return {"dataset": self.params.dataset, "corpus_root": str(self.corpus_root), "data_key": self.key,
                "features": self.params.features, "feature_shape": list(self.feature_config.shape),
                "n_trials": len(t), "by_split": {s: {lab: int(((t.split == s) & (t.label == lab)).sum())
                                                     for lab in C.CLASSES} for s in C.SPLITS},
                "by_attack": t["attack"].value_counts().to_dict(), "n_skipped": len(self.skipped),
                "by_system": ({s: t[t.split == s].groupby(["system", "seen"]).size().rename("n").reset_index()
                               .to_dict("records") for s in C.SPLITS} if "system" in t else {})}


def build_corpus(p: DataParams) -> tuple[Path, C.CorpusLayout, bool]:
    """Build or locate the corpus; returns (root, layout, whether every audio file must be keyed)."""
    if p.dataset == "copysynth":
        check_unseen(p.spoof_systems, p.unseen_systems)
        root = build_copysynth(p.speech_dir or os.environ.get("SPEECH_DIR") or None,
                               CopySynthConfig(segment_s=p.segment_s, max_sources=p.max_sources, seed=p.seed,
                                               sources=tuple(p.speech_sources),
                                               minutes_per_speaker=p.minutes_per_speaker, codecs=tuple(p.codecs),
                                               systems=tuple(p.spoof_systems)))
        return root, C.CorpusLayout(root / "keys/CM/trial_metadata.txt", root / "flac",
                                    root / "keys/CM/trial_groups.txt"), True
    if p.dataset == "asvspoof2021_df":
        from helpers.data.asvspoof import prepare_asvspoof

        local = p.asvspoof_root or os.environ.get("ASVSPOOF2021_DF_ROOT")
        out = interim_dir() / "asvspoof2021_df" / cache_key({"p": p.key_fields(), "local": local})
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
    held = held_speakers(p, df)
    key = cache_key({"corpus": corpus_key, "p": p.key_fields(), **({"test_speakers": held} if held else {})})
    folder = interim_dir() / "prepared" / key
    table_file = folder / "trials.csv"
    table = read_or_quarantine(table_file, _read_table)
    attrs_file = folder / "trials_attrs.json"
    if table is None:
        sample = C.mark_systems(C.sample_trials(df, p.n_trials, p.bonafide_share, p.seed), p.unseen_systems)
        table = C.assign_splits(sample, p.split, p.seed, p.split_by, unseen=p.unseen_systems,
                                hold_voice_speakers=bool(held))
        save_json(attrs_file, {k: v for k, v in table.attrs.items() if isinstance(v, (str, int, float))})
        atomic_write(table_file, table.to_csv(index=False))
    else:   # the sampling note and the split actually used survive a reuse of the cached table
        table.attrs.update(read_or_quarantine(attrs_file, load_json) or {})
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


def held_speakers(p: DataParams, corpus: pd.DataFrame) -> tuple[str, ...]:
    """The corpus speakers ``UNSEEN_VOICE_SPEAKER = "test"`` holds in the test split: those an unseen voice was
    built from (S07: festvox_ru_nsh) that the corpus holds, under a split that keeps speakers together; () where
    the switch changes nothing (then the cache keys do not change either)."""
    if p.unseen_voice_speaker != "test" or p.split_by == "clip" or "speaker" not in corpus:
        return ()
    return tuple(s for s in C.voices_built_from(p.unseen_systems) if s in set(corpus["speaker"]))


def _read_table(path: Path) -> pd.DataFrame:
    table = pd.read_csv(path, dtype=str, keep_default_na=False)
    missing = {"trial", "path", "label", "split", "y", "group", "speaker"} - set(table.columns)
    if missing:
        raise ValueError(f"columns {sorted(missing)} missing")
    table["y"] = table["y"].astype(int)
    return table


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

@dataclass(frozen=True)
class TrainingSpec:
    """Where a detector's checkpoint lives and what its metadata says: one definition for the notebooks'
    single-process training and for :mod:`helpers.distributed.stage_runner`'s DDP training, so each finds the other's."""

    checkpoint: Path
    meta: dict


def baseline_spec(arch: str, prep: Prepared, cfg: TrainConfig, profile: str) -> TrainingSpec:
    key = cache_key({"d": prep.key, "t": asdict(cfg), "m": MODEL_VERSION})
    return TrainingSpec(checkpoints_dir(profile) / f"{arch}-baseline-{key}.safetensors",
                        {"features": prep.params.features, "kind": "baseline", "data_key": prep.key})


def adversarial_spec(arch: str, prep: Prepared, cfg: TrainConfig, attack_kwargs: dict, profile: str,
                     init_checkpoint: Path | None) -> TrainingSpec:
    same_result = {k: v for k, v in attack_kwargs.items() if k not in ("block", "target_batch", "progress")}
    key = cache_key({"d": prep.key, "t": asdict(cfg), "a": same_result, "m": MODEL_VERSION,
                     "init": None if init_checkpoint is None else Path(init_checkpoint).name})
    return TrainingSpec(checkpoints_dir(profile) / f"{arch}-adversarial-{key}.safetensors",
                        {"features": prep.params.features, "kind": "adversarial", "data_key": prep.key,
                         "attack": attack_kwargs, "init": "scratch" if init_checkpoint is None else "baseline"})


def training_val(prep: Prepared) -> tuple[torch.Tensor, torch.Tensor]:
    """The validation split, or the test split when a protocol has none (the thesis reported its only
    held-out split, so its curves are on the clips it reports)."""
    return prep.xy("val") if len(prep.sets["val"]) else prep.xy("test")


def baseline(arch: str, prep: Prepared, cfg: TrainConfig, profile: str, device: str = "cpu",
             progress: bool = True, trainer: Callable[..., TrainResult] = train) -> TrainResult:
    """Train the thesis baseline, or reuse / resume its checkpoint.

    ``trainer``: :func:`helpers.models.training.train`'s signature; :mod:`helpers.distributed.stage_runner`
    passes the DDP one (:func:`helpers.distributed.ddp.ddp_trainer`), which writes the same checkpoint.
    """
    spec = baseline_spec(arch, prep, cfg, profile)
    return trainer(arch, prep.feature_config.channels, prep.xy("train"), training_val(prep), cfg, spec.checkpoint,
                 spec.meta, device=device, progress=progress)


def adversarial(arch: str, prep: Prepared, cfg: TrainConfig, attack_kwargs: dict, profile: str,
                init: TrainResult | None = None, device: str = "cpu", progress: bool = True,
                trainer: Callable[..., TrainResult] = train) -> TrainResult:
    """Adversarial training (clean + Pixle loss against a frozen copy), reused / resumed from its checkpoint.

    ``init`` fine-tunes from a trained baseline (CPU profiles); ``None`` trains from scratch (the thesis).
    ``trainer``: see :func:`baseline`.
    """
    spec = adversarial_spec(arch, prep, cfg, attack_kwargs, profile, None if init is None else init.checkpoint)
    gen = pixle_generator(attack_kwargs, seed=cfg.seed)
    return trainer(arch, prep.feature_config.channels, prep.xy("train"), training_val(prep), cfg, spec.checkpoint,
                 spec.meta, adv=gen, init=None if init is None else init.model, device=device, progress=progress)
