"""One loader for either corpus: keys file + audio folder -> a table of trials, sampled and split.

``load_corpus(keys_path, audio_dir)`` works for the official unpack layout
(``keys/DF/CM/trial_metadata.txt`` + ``ASVspoof2021_DF_eval/flac/``) and for the copy-synthesis
corpus (``keys/CM/trial_metadata.txt`` + ``flac/``). Every trial's audio path is confined to the
audio folder; a trial without audio, or audio without a keys line, is an error (or, with
``on_missing="skip"``, a warning and a line in ``skipped.csv``).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from helpers.data.keys import KeysFormatError, read_keys_frame, validate_trial_id

Dataset = Literal["copysynth", "asvspoof2021_df"]
CLASSES: tuple[str, str] = ("bonafide", "spoof")  # class index 0 = bonafide, 1 = spoof (ImageFolder order)
SPLITS: tuple[str, ...] = ("train", "val", "test")


class CorpusError(RuntimeError):
    """A corpus whose keys and audio disagree."""


@dataclass(frozen=True)
class CorpusLayout:
    keys: Path
    audio_dir: Path
    groups: Path | None = None  # optional "trial group" sidecar


def audio_path(audio_dir: Path, trial: str) -> Path:
    """``audio_dir/<trial>.flac``, refusing any trial id that would leave ``audio_dir``."""
    validate_trial_id(trial)
    base = Path(audio_dir).resolve()
    p = (base / f"{trial}.flac").resolve()
    if base not in p.parents:
        raise KeysFormatError(f"trial {trial!r} resolves outside the audio folder {base}")
    return p


def load_corpus(layout: CorpusLayout, on_missing: Literal["error", "skip"] = "error",
                check_orphans: bool = True) -> tuple[pd.DataFrame, list[dict]]:
    """Read the keys, attach audio paths and split groups; returns the table and skipped rows."""
    df = read_keys_frame(layout.keys)
    audio_dir = Path(layout.audio_dir)
    if not audio_dir.is_dir():
        raise CorpusError(f"audio folder {audio_dir} does not exist (keys: {layout.keys})")
    df["path"] = [str(audio_path(audio_dir, t)) for t in df["trial"]]
    exists = np.array([Path(p).exists() for p in df["path"]])
    skipped: list[dict] = []
    if not exists.all():
        missing = df.loc[~exists, "trial"].tolist()
        msg = (f"{len(missing)} trial(s) in {layout.keys} have no audio in {audio_dir}, e.g. "
               f"{missing[:3]}; extract the matching archive part or remove the lines")
        if on_missing == "error":
            raise CorpusError(msg + " (or set ON_MISSING='skip')")
        warnings.warn(msg, stacklevel=2)
        skipped += [{"file": str(layout.keys), "trial": t, "reason": "audio missing"} for t in missing]
        df = df.loc[exists].reset_index(drop=True)
    if check_orphans:
        known = set(df["trial"])
        orphans = sorted(p.stem for p in audio_dir.glob("*.flac") if p.stem not in known)
        if orphans and on_missing == "error":
            # Only an error for a corpus that should be complete (copy-synthesis); an ASVspoof
            # part holds audio of trials sampled out, so callers pass check_orphans=False there.
            raise CorpusError(f"{len(orphans)} audio file(s) in {audio_dir} have no line in "
                              f"{layout.keys}, e.g. {orphans[:3]}; add keys lines or remove the files")
        skipped += [{"file": str(audio_dir / f"{t}.flac"), "trial": t, "reason": "no keys line"}
                    for t in orphans]
    df["group"] = _groups(df, layout.groups)   # the source recording (copy-synthesis) or the speaker
    df["y"] = (df["label"] == "spoof").astype(int)
    return df, skipped


def _groups(df: pd.DataFrame, groups_file: Path | None) -> pd.Series:
    """Split unit: the sidecar's source utterance, else the speaker (if several), else the trial."""
    if groups_file is not None and Path(groups_file).exists():
        mapping = dict(line.split() for line in Path(groups_file).read_text().splitlines() if line.strip())
        return df["trial"].map(mapping).fillna(df["trial"])
    if df["speaker"].nunique() > 1:
        return df["speaker"]
    return df["trial"]


def sample_trials(df: pd.DataFrame, n: int | None, bonafide_share: float | None = 0.5,
                  seed: int = 2022) -> pd.DataFrame:
    """A seeded sample of ``n`` trials stratified by label (and by attack within spoof).

    ``bonafide_share=None`` keeps the corpus's own class mix (ASVspoof 2021 DF: about 3.7%
    bonafide); ``0.5`` balances the classes. If a class has too few trials, all are taken and
    the shortfall is reported in the returned frame's ``attrs["note"]``.
    """
    if bonafide_share is None and (n is None or n >= len(df)):
        return df.reset_index(drop=True)
    rng = np.random.default_rng(seed)
    share = float((df["label"] == "bonafide").mean()) if bonafide_share is None else bonafide_share
    if n is None:  # the largest sample with the requested class mix
        n_b, n_s = int((df["label"] == "bonafide").sum()), int((df["label"] == "spoof").sum())
        n = int(min(n_b / share if share > 0 else float("inf"), n_s / (1 - share) if share < 1 else float("inf")))
    want = {"bonafide": int(round(n * share)), "spoof": n - int(round(n * share))}
    parts, note = [], []
    for label, k in want.items():
        pool = df[df["label"] == label]
        if k > len(pool):
            note.append(f"asked for {k} {label} trials, corpus has {len(pool)}")
            k = len(pool)
        if label == "spoof" and k > 0:  # proportional by attack, remainder at random
            take = _stratified(pool, "attack", k, rng)
        else:
            take = pool.iloc[rng.permutation(len(pool))[:k]]
        parts.append(take)
    out = pd.concat(parts).sort_values("trial").reset_index(drop=True)
    out.attrs["note"] = "; ".join(note)
    return out


def _stratified(pool: pd.DataFrame, col: str, k: int, rng: np.random.Generator) -> pd.DataFrame:
    counts = pool[col].value_counts(sort=False).sort_index()
    alloc = np.floor(counts / counts.sum() * k).astype(int)
    rest = k - int(alloc.sum())
    if rest > 0:
        extra = rng.choice(len(counts), size=rest, replace=False, p=None) if rest <= len(counts) else \
            rng.choice(len(counts), size=rest, replace=True)
        for i in np.atleast_1d(extra):
            alloc.iloc[int(i)] += 1
    chosen = []
    for value, m in alloc.items():
        sub = pool[pool[col] == value]
        m = min(int(m), len(sub))
        chosen.append(sub.iloc[rng.permutation(len(sub))[:m]])
    got = pd.concat(chosen)
    if len(got) < k:  # a stratum was too small: fill from the rest
        left = pool.drop(got.index)
        got = pd.concat([got, left.iloc[rng.permutation(len(left))[: k - len(got)]]])
    return got


def split_by_group(df: pd.DataFrame, fractions: tuple[float, float, float] = (0.7, 0.1, 0.2),
                   seed: int = 2022, test_groups: tuple[str, ...] | list[str] | set[str] = ()) -> pd.DataFrame:
    """Assign ``split`` in {train, val, test} so that no group straddles two splits.

    Groups are shuffled with the seed and filled into splits in order until each split holds
    its fraction of the trials. Deterministic for a given seed and table. ``test_groups`` go to
    test whatever the draw, on top of its share: the other groups are split as if they were the
    whole table, so the test split still holds others besides them.
    """
    if abs(sum(fractions) - 1.0) > 1e-6:
        raise ValueError(f"split fractions {fractions} must sum to 1")
    held = set(test_groups)
    groups = np.array(sorted(set(df["group"].unique()) - held))
    rng = np.random.default_rng(seed)
    groups = groups[rng.permutation(len(groups))]
    sizes = df.groupby("group").size()
    bounds = np.cumsum(fractions) * int(sizes.loc[list(groups)].sum())
    assign, filled, idx = {g: "test" for g in held}, 0, 0
    for g in groups:
        while idx < len(SPLITS) - 1 and filled >= bounds[idx] - 1e-9:
            idx += 1
        assign[g] = SPLITS[idx]
        filled += int(sizes[g])
    out = df.copy()
    out["split"] = out["group"].map(assign)
    return out


SplitBy = Literal["source", "speaker", "clip"]
MIN_SPEAKERS_FOR_SPEAKER_SPLIT = 3


def split_units(df: pd.DataFrame, by: SplitBy) -> tuple[pd.Series, str]:
    """The unit no split may straddle, and the grouping actually used.

    ``source``: a recording and every copy made from it (leak-free; the default). ``speaker``:
    test voices are never heard in training; falls back to ``source`` (and says so) when the
    corpus has fewer than three speakers. ``clip``: every clip on its own, as the thesis's
    ``random_split`` did; on copy-synthesis it puts a recording's vocoded copies on both sides.
    """
    if by == "clip":
        return df["trial"], "clip"
    if by == "speaker":
        n_speakers = df.loc[~_follows_text(df), "speaker"].nunique()   # TTS voices are not bonafide speakers
        if n_speakers >= MIN_SPEAKERS_FOR_SPEAKER_SPLIT:
            return df["speaker"], "speaker"
        return df["group"], f"source (SPLIT_BY='speaker' asked, but the corpus has {n_speakers} speaker(s))"
    if by == "source":
        return df["group"], "source"
    raise ValueError(f"SPLIT_BY={by!r}; choose 'source', 'speaker' or 'clip'")


def mark_systems(df: pd.DataFrame, unseen: tuple[str, ...] | list[str] = ()) -> pd.DataFrame:
    """Add ``system`` (the keys' attack, ``-`` for bonafide), ``family`` (the keys' vocoder column:
    the system's family on the offline corpus) and ``seen`` (``bonafide`` / ``seen`` / ``unseen``)."""
    out = df.copy()
    spoof = out["label"] == "spoof"
    out["system"] = out["attack"].where(spoof, "-")
    out["family"] = out["vocoder"].where(spoof, "bonafide") if "vocoder" in out else "-"
    out["seen"] = "bonafide"
    out.loc[spoof, "seen"] = ["unseen" if a in set(unseen) else "seen" for a in out.loc[spoof, "attack"]]
    return out


def _follows_text(df: pd.DataFrame) -> pd.Series:
    """Spoofs synthesised from text (no bonafide source): their unit is their sentence (group ``SENT_*``)."""
    if "group" not in df:
        return pd.Series(False, index=df.index)
    return (df["label"] == "spoof") & df["group"].astype(str).str.startswith("SENT_")


def assign_splits(df: pd.DataFrame, fractions: tuple[float, float, float] = (0.7, 0.1, 0.2), seed: int = 2022,
                  by: SplitBy = "source", unseen: tuple[str, ...] | list[str] = (),
                  hold_voice_speakers: bool = False, _held_speakers: tuple[str, ...] = ()) -> pd.DataFrame:
    """``split`` column by the chosen unit; ``attrs["split_by"]`` says which grouping was used.

    Clip-level splits are stratified by label (each split holds each class's share within one
    clip; the thesis's unseeded ``random_split`` matched it only on average). Group-level splits
    keep whole groups together (:func:`split_by_group`): bonafide clips and their copies by the
    chosen unit, text-to-speech clips by their sentence, each with the same fractions.

    ``unseen`` systems are evaluation-only, as ASVspoof 2019 LA's A07-A19: their spoofs go to
    ``test`` and never to train or validation; an unseen copy whose bonafide source landed in
    train or validation is dropped (it would put that recording on both sides), and
    ``attrs["note"]`` says how many.

    ``hold_voice_speakers``: a speaker whose own recordings an unseen voice was built from
    (``SpoofSystem.built_from``: S07 and festvox_ru_nsh) is a test speaker (``test_speakers``), as
    ASVspoof's evaluation-only systems spoof evaluation speakers (``_held_speakers`` carries them into the
    split of the other clips). Otherwise (the default) that
    speaker is drawn like any other: where it lands in train, the detector learns its voice as
    bonafide and meets the spoof of that voice only in test. A split by clip keeps no unit together,
    so it holds nobody back.
    """
    unseen = tuple(unseen)
    if unseen:
        mask = df["attack"].isin(unseen) & (df["label"] == "spoof")
        rest = assign_splits(df.loc[~mask], fractions, seed, by,
                             _held_speakers=voices_built_from(unseen) if hold_voice_speakers else ())
        held = df.loc[mask].copy()
        held["split"] = "test"
        if by != "clip" and len(held):
            units_rest, _ = split_units(rest, by)
            side = dict(zip(units_rest, rest["split"]))
            units_held, _ = split_units(df, by)
            where = units_held.loc[held.index].map(side)
            text = _follows_text(held)
            leak = where.isin(["train", "val"]) & ~text
            dropped = int(leak.sum())
            held = held.loc[~leak]
        else:
            dropped = 0
        out = pd.concat([rest, held]).sort_index()
        out.attrs["split_by"] = rest.attrs.get("split_by", by)
        note = rest.attrs.get("note", df.attrs.get("note", ""))
        if dropped:
            note = "; ".join(x for x in (note, f"{dropped} unseen-system copies of train/validation recordings "
                                               "dropped (their source is on the other side)") if x)
        out.attrs["note"] = note
        return out
    units, used = split_units(df, by)
    if used != "clip":
        text = _follows_text(df)
        speaker = df.get("speaker", pd.Series("", index=df.index))
        held = sorted(set(units[~text & speaker.isin(_held_speakers)]))
        if text.any():   # TTS clips: split by sentence, apart from the speakers' units
            a = split_by_group(df.loc[~text].assign(group=units[~text]), fractions, seed,
                               test_groups=held).assign(group=df["group"])
            b = split_by_group(df.loc[text], fractions, seed + 1)
            out = pd.concat([a, b]).sort_index()
            out.attrs.update(df.attrs)
            out.attrs["split_by"] = used
            return _note_held(out, speaker[units.isin(held)])
    if used == "clip":
        out = df.copy()
        out["split"] = ""
        rng = np.random.default_rng(seed)
        bounds = np.cumsum(fractions)
        for _, idx in out.groupby("label").groups.items():
            idx = np.array(sorted(idx))[rng.permutation(len(idx))]
            cuts = np.rint(bounds * len(idx)).astype(int)
            for name, lo, hi in zip(SPLITS, np.r_[0, cuts[:-1]], cuts):
                out.loc[idx[lo:hi], "split"] = name
    else:
        out = split_by_group(df.assign(group=units), fractions, seed, test_groups=held).assign(group=df["group"])
        out = _note_held(out, speaker[units.isin(held)])
    out.attrs["split_by"] = used
    return out


def voices_built_from(systems: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """The corpus speakers whose own recordings these systems' voices were built from (S07: festvox_ru_nsh)."""
    from helpers.data.synthesis import SYSTEMS

    return tuple(sorted({SYSTEMS[s].built_from for s in systems if s in SYSTEMS and SYSTEMS[s].built_from}))


def _note_held(out: pd.DataFrame, speakers: pd.Series) -> pd.DataFrame:
    """``attrs["note"]`` names the speakers held in the test split (:func:`assign_splits`): ``speakers``, one per
    held clip."""
    if len(speakers):
        who = ", ".join(sorted(set(speakers)))
        out.attrs["note"] = "; ".join(x for x in (out.attrs.get("note", ""), f"speaker {who} in the test split "
                                                  "only: an unseen system's voice was built from their recordings") if x)
    return out
