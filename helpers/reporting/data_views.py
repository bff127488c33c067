"""What 00_data shows about the prepared data: a summary, example clips, the feature check, throughput."""

from __future__ import annotations

import time

import numpy as np
import torch

from helpers.data.audio import load_audio
from helpers.data.features import FeatureConfig, extract, power_spectrogram, render_via_figure
from helpers.experiments.pipeline import Prepared


def data_summary_markdown(prep: Prepared) -> str:
    """One paragraph: corpus, size, per-split class counts, the split grouping, and what the default speech is."""
    d, proto = prep.describe(), prep.protocol()
    splits = ", ".join(f"{s}: {v['bonafide']} bonafide / {v['spoof']} spoof" for s, v in d["by_split"].items())
    text = (f"**{d['n_trials']} trials** from corpus `{d['dataset']}` ({splits}); split by **{proto['split_by']}**; "
            f"test bonafide share {proto['test_bonafide_share']:.3f}.")
    if prep.params.dataset == "copysynth" and prep.params.speech_sources and not prep.params.speech_dir:
        speakers = prep.table["speaker"].nunique() if "speaker" in prep.table else "?"
        text += (f"\n\nBonafide speech: **{speakers} speakers** from the Debian packages of "
                 f"{', '.join(f'`{s}`' for s in prep.params.speech_sources)} (16 kHz or more; table below); every spoof "
                 "went through its source recording's codec, and each recording's DF codec condition applies to both "
                 "classes.")
    elif prep.params.dataset == "copysynth" and not prep.params.speech_dir:
        text += ("\n\nThe bonafide speech is the Asterisk English prompts: **8 kHz recordings**, so everything above "
                 "4 kHz is empty in both classes. Name `SPEECH_SOURCES` (wideband Debian speech) or point `SPEECH_DIR` "
                 "at wideband speech (e.g. LibriSpeech) to give the detectors the full band.")
    return text


def example_clips(prep: Prepared) -> dict[str, np.ndarray]:
    """A bonafide clip and its copies by every vocoder (copy-synthesis), or spoofs of other attacks (ASVspoof)."""
    table = prep.table
    example = table[table["label"] == "bonafide"].iloc[0]
    if prep.params.dataset == "copysynth":   # a segment that has a copy (each is copied by at most one system)
        flac = prep.corpus_root.joinpath("flac")
        example = next((r for _, r in table[table["label"] == "bonafide"].iterrows()
                        if any(flac.glob(f"{r['trial']}_*.flac"))), example)
        paths = sorted(prep.corpus_root.joinpath("flac").glob(f"{example['trial']}*.flac"))
        names = ["bonafide" if p.stem == example["trial"] else f"spoof ({p.stem[len(example['trial']) + 1:]})"
                 for p in paths]
    else:
        rows = [example] + [r for _, r in table[table["label"] == "spoof"].drop_duplicates("attack").head(3).iterrows()]
        paths, names = [r["path"] for r in rows], [f"{r['label']} ({r['attack']})" for r in rows]
    return {n: load_audio(p)[0] for n, p in zip(names, paths)}


def direct_vs_figure(prep: Prepared) -> dict:
    """The array-painted image next to a figure-rendered one: pixel correlation and speed-up (shows both)."""
    from helpers.reporting import figures as plots

    wav = load_audio(prep.table[prep.table["label"] == "bonafide"].iloc[0]["path"])[0]
    cfg = prep.feature_config
    t0 = time.perf_counter()
    fast = extract(wav, cfg)
    t_fast = time.perf_counter() - t0
    t0 = time.perf_counter()
    slow = render_via_figure(wav, cfg) if cfg.name == "thesis_rgb32" else fast
    t_slow = time.perf_counter() - t0
    fig, axes = plots.plt.subplots(1, 2, figsize=(4, 2))
    plots.show_image(axes[0], fast, "direct")
    plots.show_image(axes[1], slow, "figure-rendered")
    return {"correlation": float(np.corrcoef(fast.flatten(), slow.flatten())[0, 1]),
            "speedup": t_slow / max(t_fast, 1e-9), "figure": fig}


def feature_throughput(prep: Prepared, n: int = 32) -> float:
    """Clips per second for decode + feature extraction over ``n`` clips; also checks every split's tensors."""
    t0 = time.perf_counter()
    sample = prep.table.head(n)
    for p in sample["path"]:
        extract(load_audio(p)[0], prep.feature_config)
    rate = len(sample) / (time.perf_counter() - t0)
    for split, fs in prep.sets.items():
        if len(fs) and not (torch.isfinite(fs.x).all() and fs.x.min() >= 0 and fs.x.max() <= 1):
            raise FloatingPointError(f"{split} features outside [0, 1] or not finite")
    return rate


def trial_info(prep: Prepared):
    """The corpus's per-trial sidecar (speaker, language, source package, source codec, DF codec), or None."""
    import pandas as pd

    path = prep.corpus_root / "keys" / "CM" / "trial_info.csv"
    return pd.read_csv(path, dtype=str, keep_default_na=False) if path.exists() else None


_SOURCE_RATE = {"g722": "16 kHz (G.722)", "pcm": "16 kHz (PCM)", "vorbis": "44.1 kHz (Vorbis)", "wav": "8 kHz (PCM)"}


def corpus_summary(prep: Prepared):
    """Per speaker of the whole corpus: language, source package, the source's rate and codec, bonafide
    recordings and minutes (from the FLAC headers)."""
    import pandas as pd
    import soundfile as sf

    info = trial_info(prep)
    if info is None:
        t = prep.table[prep.table.label == "bonafide"]
        return pd.DataFrame({"speaker": t["speaker"].unique()})
    bona = info[info.label == "bonafide"].copy()
    flac = prep.corpus_root / "flac"
    bona["seconds"] = [sf.info(str(flac / f"{t}.flac")).duration for t in bona["trial"]]
    out = (bona.groupby("speaker")
           .agg(language=("language", "first"), package=("source_package", "first"),
                source=("source_codec", lambda c: _SOURCE_RATE.get(c.iloc[0], c.iloc[0])),
                recordings=("group", "nunique"), bonafide_clips=("trial", "count"),
                minutes=("seconds", lambda s: round(s.sum() / 60, 2)))
           .reset_index().sort_values("minutes", ascending=False))
    return out


def coded_examples(prep: Prepared, codecs: tuple[str, ...] = ("low_mp3", "low_m4a", "low_ogg")) -> dict[str, np.ndarray]:
    """One bonafide clip as in the corpus, then re-encoded with DF codec conditions (to hear and see them)."""
    from helpers.data.codecs import apply_codec

    wav = load_audio(prep.table[prep.table["label"] == "bonafide"].iloc[0]["path"])[0]
    out = {"bonafide (as in the corpus)": wav}
    for c in codecs:
        try:
            out[f"bonafide, {c}"] = apply_codec(wav, c)
        except Exception as exc:   # an encoder missing on this machine: show the others
            print(f"{c}: {exc}")
    return out


def long_term_spectra(prep: Prepared, per_group: int = 12, seconds: float = 4.0, n_fft: int = 512):
    """The long-term average spectrum of each bonafide source package and each spoofing system, in dB below its
    own peak (each clip normalised to its peak, then averaged over up to ``per_group`` uncoded clips per group;
    coded clips only where a group has no uncoded one, and then ``coded`` is True). Long-format DataFrame:
    label, group, freq_hz, db, clips, coded. A file that cannot be read is named and left out.

    What it shows: a detector can learn a bonafide *recording condition* instead of a spoofing trace when the
    bonafide sources differ in band or tilt and the spoofs resemble one of them (README, "S07's speaker held in test").
    """
    import pandas as pd

    from helpers.data.audio import TARGET_SR, AudioError

    table = prep.table.copy()
    spoof_key = "system" if "system" in table and (table["system"] != "-").any() else "attack"
    source = table["source"] if "source" in table else pd.Series("bonafide", index=table.index)
    spoof_group = table[spoof_key] if spoof_key in table else pd.Series("spoof", index=table.index)
    table["_group"] = np.where(table["label"] == "bonafide", source.replace({"": "bonafide", "-": "bonafide"}),
                               spoof_group)
    table["_group"] = table["_group"].fillna("?")
    cfg = FeatureConfig(n_fft=n_fft, hop=n_fft // 4)
    freqs = np.fft.rfftfreq(n_fft, 1 / TARGET_SR)
    rows = []
    for (label, group), g in table.groupby(["label", "_group"], sort=True):
        plain = g[g["codec"] == "nocodec"] if "codec" in g else g
        coded = len(plain) == 0 and "codec" in g
        pick = (g if coded else plain).sort_values("trial").head(per_group)
        spectra = []
        for path in pick["path"]:
            try:
                wav = torch.as_tensor(load_audio(path)[0][: int(seconds * TARGET_SR)])
            except AudioError as exc:
                print(f"long-term spectra: left out {exc}")
                continue
            if len(wav) == 0:
                continue
            db = 10 * torch.log10(power_spectrogram(wav, cfg).mean(-1).clamp_min(1e-12))
            spectra.append((db - db.max()).numpy())
        if spectra:
            mean = np.mean(spectra, 0)
            rows += [{"label": label, "group": group, "freq_hz": f, "db": d, "clips": len(spectra), "coded": coded}
                     for f, d in zip(freqs, mean)]
    return pd.DataFrame(rows, columns=["label", "group", "freq_hz", "db", "clips", "coded"])
