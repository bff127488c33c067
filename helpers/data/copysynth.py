"""The offline vocoder copy-synthesis corpus (``DATASET = "copysynth"``).

Bonafide = real speech recordings; spoof = the same recordings analysed and resynthesised by a
vocoder, so a detector has to find vocoder artefacts rather than speaker or content. This is an
established way to make spoofed speech (Frank & Schönherr, WaveFake, NeurIPS 2021; Wang &
Yamagishi, "Spoofed training data for speech spoofing countermeasure can be efficiently created
using neural vocoders", ICASSP 2023). Three classic vocoders are used:

- ``griffinlim``: magnitude STFT, phase discarded and re-estimated by Griffin-Lim (torchaudio);
- ``world``: WORLD analysis/synthesis (pyworld; F0 by DIO + StoneMask, the fast path);
- ``lpc``: an LPC source-filter vocoder (order-16 LPC envelope driven by a pulse train at the
  WORLD F0 in voiced frames and white noise in unvoiced ones).

The corpus is written in the common layout (``keys/CM/trial_metadata.txt`` in the official
13-column format plus ``flac/<trial>.flac``) so that every notebook reads it like ASVspoof.
A sidecar ``keys/CM/trial_groups.txt`` maps each trial to its source utterance, so splits never
put a recording and its vocoded copies on both sides.

Bonafide speech comes from ``SPEECH_DIR``, from the Asterisk English prompts (8 kHz, the
original default), or, with ``CopySynthConfig(sources=...)``, from wideband multi-speaker Debian
packages (:mod:`helpers.data.speech_sources`). Every vocoded copy is passed through the codec its
source came in (G.722, Vorbis), so coding traces never give the bonafide class away, and the
ASVspoof 2021 DF codec conditions (:mod:`helpers.data.codecs`) are applied to both classes alike:
one condition per source recording, seeded and balanced, for its bonafide segments and all
their copies. ``keys/CM/trial_info.csv`` keeps, per trial, the source codec and package, and
``LICENSES.md`` the licence of every source used.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import scipy.signal as sps

from helpers.data.audio import TARGET_SR, AudioError, list_audio, trim_silence, write_flac
from helpers.data.codecs import CODEC_VERSION, CodecError, apply_codec, apply_source_codec, assign_codecs
from helpers.io import atomic_write, cache_key, save_json
from helpers.data.keys import KeysRecord
from helpers.paths import interim_dir, raw_dir
from helpers.progress import progress_iter
from helpers.data.speech_sources import (SpeechItem, SpeechSourceError, balanced_subset, cap_minutes_per_speaker,
                                    gather_speech, licences_markdown, load_speech, speech_dir_items)

Vocoder = Literal["griffinlim", "world", "lpc"]
VOCODERS: tuple[Vocoder, ...] = ("griffinlim", "world", "lpc")
ASTERISK_PACKAGE = "asterisk-core-sounds-en-wav"
ASTERISK_SUBDIR = Path("usr/share/asterisk/sounds/en_US_f_Allison")
KEYS_REL = Path("keys/CM/trial_metadata.txt")
GROUPS_REL = Path("keys/CM/trial_groups.txt")
INFO_REL = Path("keys/CM/trial_info.csv")
FLAC_REL = Path("flac")


# --------------------------------------------------------------------------- speech source

def fetch_asterisk_speech(dest: Path | None = None) -> Path:
    """Fetch the Asterisk English prompts (one speaker, 8 kHz, CC-BY-SA-3.0) with apt, unpacked.

    Uses ``apt-get download`` and ``dpkg-deb -x`` (no root needed for either, no shell strings).
    Cached: a second call returns the unpacked folder at once.
    """
    dest = Path(dest or raw_dir() / "asterisk")
    target = dest / ASTERISK_SUBDIR
    marker = dest / ".complete"
    if marker.exists() and target.is_dir():
        return target
    if shutil.which("apt-get") is None or shutil.which("dpkg-deb") is None:
        raise SpeechSourceError(
            "apt-get/dpkg-deb not found, so the default bonafide speech (Debian package "
            f"{ASTERISK_PACKAGE}) cannot be fetched. Point SPEECH_DIR at a folder of real speech "
            "recordings instead (e.g. LibriSpeech's dev-clean: SPEECH_DIR=/path/to/LibriSpeech/dev-clean)")
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest) as tmp:
        cmd = ["apt-get", "download", ASTERISK_PACKAGE]
        res = subprocess.run(cmd, cwd=tmp, capture_output=True, text=True)
        if res.returncode != 0:  # the package lists may be empty on a fresh machine
            subprocess.run(["apt-get", "update"], capture_output=True, text=True)
            res = subprocess.run(cmd, cwd=tmp, capture_output=True, text=True)
        debs = list(Path(tmp).glob("*.deb"))
        if res.returncode != 0 or not debs:
            raise SpeechSourceError(
                f"`apt-get download {ASTERISK_PACKAGE}` failed ({res.stderr.strip()[-300:]}). "
                "Run `apt-get update` as root, or set SPEECH_DIR to a folder of real speech")
        subprocess.run(["dpkg-deb", "-x", str(debs[0]), str(dest)], check=True)
    if not target.is_dir():
        raise SpeechSourceError(f"{debs[0].name} did not contain {ASTERISK_SUBDIR}")
    marker.write_text(ASTERISK_PACKAGE + "\n")
    return target


def resolve_speech_files(speech_dir: str | os.PathLike | None) -> list[Path]:
    """The bonafide recordings: ``speech_dir`` if given, else the Asterisk prompts (fetched)."""
    if speech_dir:
        return [it.path for it in speech_dir_items(speech_dir)]
    return [it.path for it in _legacy_asterisk_items()]


# --------------------------------------------------------------------------- segmentation

def segment(wav: np.ndarray, seg_s: float, min_s: float, sr: int = TARGET_SR) -> list[np.ndarray]:
    """Cut ``wav`` into consecutive ``seg_s``-second pieces, dropping pieces shorter than ``min_s``."""
    step = int(round(seg_s * sr))
    pieces = [wav[i:i + step] for i in range(0, len(wav), step)]
    return [p for p in pieces if len(p) >= int(round(min_s * sr))]


# --------------------------------------------------------------------------- vocoders

def vocode_griffinlim(wav: np.ndarray, sr: int = TARGET_SR, n_fft: int = 512, hop: int = 128,
                      n_iter: int = 32, seed: int = 0) -> np.ndarray:
    """Magnitude STFT -> Griffin-Lim phase reconstruction (torchaudio)."""
    import torch
    import torchaudio.transforms as T

    torch.manual_seed(seed)
    x = torch.from_numpy(wav.astype(np.float32))
    spec = T.Spectrogram(n_fft=n_fft, hop_length=hop, power=1.0)(x)
    y = T.GriffinLim(n_fft=n_fft, hop_length=hop, power=1.0, n_iter=n_iter)(spec)
    return _fit_length(y.numpy(), len(wav))


def _world_f0(x: np.ndarray, sr: int, frame_period: float) -> tuple[np.ndarray, np.ndarray]:
    import pyworld as pw

    f0, t = pw.dio(x, sr, frame_period=frame_period)
    f0 = pw.stonemask(x, f0, t, sr)
    return f0, t


def vocode_world(wav: np.ndarray, sr: int = TARGET_SR, frame_period: float = 5.0) -> np.ndarray:
    """WORLD analysis (DIO + StoneMask F0, CheapTrick envelope, D4C aperiodicity) and synthesis."""
    import pyworld as pw

    x = wav.astype(np.float64)
    f0, t = _world_f0(x, sr, frame_period)
    sp = pw.cheaptrick(x, f0, t, sr)
    ap = pw.d4c(x, f0, t, sr)
    y = pw.synthesize(f0, sp, ap, sr, frame_period)
    return _fit_length(y.astype(np.float32), len(wav))


def vocode_lpc(wav: np.ndarray, sr: int = TARGET_SR, order: int = 16, frame_ms: float = 25.0,
               hop_ms: float = 10.0, seed: int = 0) -> np.ndarray:
    """LPC source-filter vocoder: per-frame all-pole envelope excited by pulses (voiced) or noise."""
    import librosa

    rng = np.random.default_rng(seed)
    x = wav.astype(np.float64)
    flen, hop = int(sr * frame_ms / 1000), int(sr * hop_ms / 1000)
    f0, t = _world_f0(x, sr, frame_period=hop_ms)
    n_frames = 1 + max(0, (len(x) - flen) // hop)
    win = np.hanning(flen)
    out = np.zeros(len(x) + flen)
    norm = np.zeros(len(x) + flen)
    phase = 0.0
    for i in range(n_frames):
        seg = x[i * hop:i * hop + flen]
        if len(seg) < flen:
            seg = np.pad(seg, (0, flen - len(seg)))
        frame = seg * win
        energy = np.sqrt(np.mean(frame ** 2)) + 1e-9
        if energy < 1e-5:
            continue
        try:
            a = librosa.lpc(frame + 1e-9 * rng.standard_normal(flen), order=order)
        except (FloatingPointError, ValueError):
            continue
        if not np.all(np.isfinite(a)):
            continue
        f = f0[min(i, len(f0) - 1)]
        if f > 0:
            exc = np.zeros(flen)
            period = sr / f
            pos = phase
            while pos < flen:
                exc[int(pos)] = 1.0
                pos += period
            phase = pos - hop if pos - hop > 0 else 0.0
        else:
            exc = rng.standard_normal(flen)
            phase = 0.0
        y = sps.lfilter([1.0], a, exc)
        y *= energy / (np.sqrt(np.mean((y * win) ** 2)) + 1e-9)
        out[i * hop:i * hop + flen] += y * win
        norm[i * hop:i * hop + flen] += win ** 2
    out = out[:len(x)] / np.maximum(norm[:len(x)], 1e-3)
    peak = np.max(np.abs(out))
    if peak > 0.99:
        out *= 0.99 / peak
    return out.astype(np.float32)


def vocode(wav: np.ndarray, vocoder: Vocoder, seed: int = 0) -> np.ndarray:
    if vocoder == "griffinlim":
        return vocode_griffinlim(wav, seed=seed)
    if vocoder == "world":
        return vocode_world(wav)
    if vocoder == "lpc":
        return vocode_lpc(wav, seed=seed)
    raise ValueError(f"unknown vocoder {vocoder!r}; choose from {VOCODERS}")


def _fit_length(y: np.ndarray, n: int) -> np.ndarray:
    return y[:n] if len(y) >= n else np.pad(y, (0, n - len(y)))


# --------------------------------------------------------------------------- corpus build

@dataclass(frozen=True)
class CopySynthConfig:
    """What the corpus is made of.

    ``sources=()`` keeps the original behaviour: ``SPEECH_DIR`` if given, else the Asterisk
    English prompts (8 kHz). Naming sources (``("asterisk_g722", "festvox_ru", "tuxpaint")``,
    see :mod:`helpers.data.speech_sources`) builds from wideband multi-speaker Debian speech instead.
    ``codecs`` are ASVspoof 2021 DF conditions (:mod:`helpers.data.codecs`): one is assigned per
    source recording (seeded, balanced) and applied to its bonafide segments and to every
    vocoded copy alike, so a codec never tells the classes apart.
    """

    segment_s: float = 3.0
    min_segment_s: float = 1.0
    vocoders: tuple[str, ...] = VOCODERS
    max_sources: int | None = None  # at most N recordings (legacy: the first N sorted; sources: round-robin over speakers)
    seed: int = 2022
    sources: tuple[str, ...] = ()
    minutes_per_speaker: float | None = None
    codecs: tuple[str, ...] = ("nocodec",)


def _legacy_asterisk_items() -> list[SpeechItem]:
    folder = fetch_asterisk_speech()
    files = [p for p in list_audio(folder) if "silence" not in p.relative_to(folder).parts]
    if not files:
        raise SpeechSourceError(f"{folder} holds no audio files")
    return [SpeechItem(p, "ast_allison", "en", ASTERISK_PACKAGE, "pcm", "asterisk_wav") for p in files]


def resolve_speech_items(speech_dir: str | os.PathLike | None,
                         cfg: CopySynthConfig = CopySynthConfig()) -> list[SpeechItem]:
    """The bonafide recordings with speaker, language and source codec, selected as ``cfg`` says.

    ``speech_dir`` wins over ``cfg.sources``; without either, the Asterisk English prompts.
    """
    if speech_dir:
        if cfg.sources:
            print(f"SPEECH_DIR={speech_dir} is set: using it instead of the sources {list(cfg.sources)}")
        items = speech_dir_items(speech_dir)
    elif cfg.sources:
        items = gather_speech(cfg.sources, cfg.minutes_per_speaker, cfg.seed)
        return balanced_subset(items, cfg.max_sources, cfg.seed)
    else:
        items = _legacy_asterisk_items()
    if cfg.minutes_per_speaker is not None:
        items = cap_minutes_per_speaker(items, cfg.minutes_per_speaker, cfg.seed)
    return items[: cfg.max_sources] if cfg.max_sources else items


def _worker_init() -> None:
    """One thread per worker process: the pool already uses every core."""
    import torch

    torch.set_num_threads(1)
    os.environ["OMP_NUM_THREADS"] = "1"


_Job = tuple[int, SpeechItem, str, CopySynthConfig, str]


def _process_source(args: _Job) -> tuple[list[str], list[str], list[dict], list[str]]:
    """Worker: one source recording -> bonafide segments and their vocoded copies.

    Bonafide: the decoded source segment, then the DF codec. Spoof: the segment vocoded, passed
    through the source's own codec (G.722, Vorbis or none), then the same DF codec.
    """
    idx, item, codec, cfg, out_dir = args
    flac_dir = Path(out_dir) / FLAC_REL
    lines, groups, infos, problems = [], [], [], []
    try:
        wav = load_speech(item)
    except (AudioError, CodecError, OSError) as exc:
        return [], [], [], [str(exc)]
    except Exception as exc:  # e.g. a corrupt G.722 stream: PyAV raises its own errors
        return [], [], [], [f"{item.path}: cannot be decoded ({exc})"]
    wav = trim_silence(wav)
    group = f"CS_{idx:05d}"
    for s, piece in enumerate(segment(wav, cfg.segment_s, cfg.min_segment_s)):
        utt = f"{group}_{s:02d}"
        for name in ("bonafide", *cfg.vocoders):
            trial = utt if name == "bonafide" else f"{utt}_{name}"
            target = flac_dir / f"{trial}.flac"
            if not target.exists():
                if name == "bonafide":
                    data = piece
                else:
                    data = vocode(piece, name, seed=cfg.seed + idx)  # type: ignore[arg-type]
                    data = apply_source_codec(data, item.source_codec)
                write_flac(target, apply_codec(data, codec))  # type: ignore[arg-type]
            label = "bonafide" if name == "bonafide" else "spoof"
            rec = KeysRecord(speaker=item.speaker, trial=trial, codec=codec, source=item.source,
                             attack="-" if label == "bonafide" else name, label=label, trim="notrim",
                             subset="eval", vocoder="bonafide" if label == "bonafide" else "traditional_vocoder",
                             task="-", team="-", gender_pair="-", language=item.language or "-")
            lines.append(rec.to_line())
            groups.append(f"{trial} {group}")
            infos.append({"trial": trial, "group": group, "label": label, "speaker": item.speaker,
                          "language": item.language, "source": item.source, "source_package": item.source_package,
                          "source_codec": item.source_codec, "codec": codec, "source_file": _rel_source(item.path)})
    return lines, groups, infos, problems


def _rel_source(path: Path) -> str:
    for base in (raw_dir(),):
        try:
            return str(Path(path).resolve().relative_to(base.resolve()))
        except ValueError:
            pass
    return Path(path).name


def build_copysynth(speech_dir: str | None = None, cfg: CopySynthConfig = CopySynthConfig(),
                    root: Path | None = None, workers: int | None = None) -> Path:
    """Build (or reuse) the copy-synthesis corpus; returns its root folder.

    The folder name is derived from the configuration and the source files, so a changed
    parameter builds a new corpus and an interrupted build resumes (finished FLACs are kept;
    the keys file is written last, atomically). Besides the keys and the groups sidecar it
    writes ``keys/CM/trial_info.csv`` (per trial: speaker, language, source package, source
    codec, DF codec, source file) and ``LICENSES.md`` (the licence of every source package).
    """
    items = resolve_speech_items(speech_dir, cfg)
    assigned = assign_codecs(len(items), tuple(cfg.codecs), cfg.seed)
    key = cache_key({"cfg": cfg.__dict__, "files": [str(it.path) for it in items],
                     "sizes": [it.path.stat().st_size for it in items],
                     "speakers": [it.speaker for it in items], "codec_version": CODEC_VERSION})
    root = Path(root or interim_dir() / "copysynth" / key)
    manifest = root / "manifest.json"
    if manifest.exists() and (root / KEYS_REL).exists():
        return root
    (root / FLAC_REL).mkdir(parents=True, exist_ok=True)
    workers = workers or min(os.cpu_count() or 1, 8)
    jobs = [(i, it, c, cfg, str(root)) for i, (it, c) in enumerate(zip(items, assigned))]
    all_lines, all_groups, all_infos, problems = [], [], [], []
    with ProcessPoolExecutor(max_workers=workers, initializer=_worker_init) as pool:
        for lines, groups, infos, probs in progress_iter(pool.map(_process_source, jobs, chunksize=2),
                                                total=len(jobs), desc="copy-synthesis", unit="recordings"):
            all_lines += lines
            all_groups += groups
            all_infos += infos
            problems += probs
    if not all_lines:
        raise SpeechSourceError(f"no usable speech: every source was shorter than "
                                f"{cfg.min_segment_s}s after trimming or failed to decode: {problems[:3]}")
    atomic_write(root / "LICENSES.md", licences_markdown(items))
    atomic_write(root / INFO_REL, pd.DataFrame(all_infos).to_csv(index=False))
    atomic_write(root / GROUPS_REL, "".join(g + "\n" for g in all_groups))
    atomic_write(root / KEYS_REL, "".join(line + "\n" for line in all_lines))
    info = pd.DataFrame(all_infos)
    save_json(manifest, {"dataset": "copysynth", "config": cfg.__dict__, "n_sources": len(items),
                         "speech_dir": str(speech_dir or ("sources" if cfg.sources else "asterisk")),
                         "n_trials": len(all_lines), "n_speakers": int(info["speaker"].nunique()),
                         "trials_per_codec": info["codec"].value_counts().to_dict(),
                         "sources_per_package": pd.Series([it.source_package for it in items]).value_counts().to_dict(),
                         "skipped_sources": problems})
    return root


__all__ = ["VOCODERS", "CopySynthConfig", "SpeechSourceError", "build_copysynth", "fetch_asterisk_speech",
           "resolve_speech_files", "resolve_speech_items", "segment", "vocode", "vocode_griffinlim", "vocode_world", "vocode_lpc"]
