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
import scipy.signal as sps
from tqdm.auto import tqdm

from helpers.audio import TARGET_SR, AudioError, list_audio, load_audio, trim_silence, write_flac
from helpers.io import atomic_write, cache_key, save_json
from helpers.keys import KeysRecord
from helpers.paths import interim_dir, raw_dir

Vocoder = Literal["griffinlim", "world", "lpc"]
VOCODERS: tuple[Vocoder, ...] = ("griffinlim", "world", "lpc")
ASTERISK_PACKAGE = "asterisk-core-sounds-en-wav"
ASTERISK_SUBDIR = Path("usr/share/asterisk/sounds/en_US_f_Allison")
KEYS_REL = Path("keys/CM/trial_metadata.txt")
GROUPS_REL = Path("keys/CM/trial_groups.txt")
FLAC_REL = Path("flac")


class SpeechSourceError(RuntimeError):
    """The bonafide speech folder is missing, empty or holds no audio."""


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
        folder = Path(speech_dir)
        if not folder.exists():
            raise SpeechSourceError(f"SPEECH_DIR {folder} does not exist; point it at a folder of "
                                    "speech recordings (wav/flac), or leave it empty for the default")
        if not folder.is_dir():
            raise SpeechSourceError(f"SPEECH_DIR {folder} is not a folder")
        files = list_audio(folder)
        if not files:
            raise SpeechSourceError(f"SPEECH_DIR {folder} holds no audio files "
                                    "(.flac/.wav/.ogg/.mp3 searched recursively)")
        return files
    folder = fetch_asterisk_speech()
    files = [p for p in list_audio(folder) if "silence" not in p.relative_to(folder).parts]
    if not files:
        raise SpeechSourceError(f"{folder} holds no audio files")
    return files


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
    segment_s: float = 3.0
    min_segment_s: float = 1.0
    vocoders: tuple[str, ...] = VOCODERS
    max_sources: int | None = None  # use only the first N recordings (sorted), for small profiles
    seed: int = 2022


def _worker_init() -> None:
    """One thread per worker process: the pool already uses every core."""
    import torch

    torch.set_num_threads(1)
    os.environ["OMP_NUM_THREADS"] = "1"


def _process_source(args: tuple[int, str, CopySynthConfig, str]) -> tuple[list[str], list[str], list[str]]:
    """Worker: one source recording -> bonafide segments and their vocoded copies."""
    idx, path, cfg, out_dir = args
    flac_dir = Path(out_dir) / FLAC_REL
    lines, groups, problems = [], [], []
    try:
        wav, info = load_audio(path)
    except AudioError as exc:
        return [], [], [str(exc)]
    wav = trim_silence(wav)
    speaker = Path(path).parent.name.replace(" ", "_") or "-"
    for s, piece in enumerate(segment(wav, cfg.segment_s, cfg.min_segment_s)):
        utt = f"CS_{idx:05d}_{s:02d}"
        variants = [("bonafide", "-", piece)]
        for v in cfg.vocoders:
            variants.append((v, v, None))
        for name, attack, data in variants:
            trial = utt if name == "bonafide" else f"{utt}_{name}"
            target = flac_dir / f"{trial}.flac"
            if not target.exists():
                if data is None:
                    data = vocode(piece, name, seed=cfg.seed + idx)  # type: ignore[arg-type]
                write_flac(target, data)
            label = "bonafide" if name == "bonafide" else "spoof"
            rec = KeysRecord(speaker=speaker, trial=trial, codec="nocodec", source="copysynth",
                             attack=attack, label=label, trim="notrim", subset="eval",
                             vocoder="bonafide" if label == "bonafide" else "traditional_vocoder",
                             task="-", team="-", gender_pair="-", language="-")
            lines.append(rec.to_line())
            groups.append(f"{trial} {utt[:8]}")
    return lines, groups, problems


def build_copysynth(speech_dir: str | None = None, cfg: CopySynthConfig = CopySynthConfig(),
                    root: Path | None = None, workers: int | None = None) -> Path:
    """Build (or reuse) the copy-synthesis corpus; returns its root folder.

    The folder name is derived from the configuration and the source files, so a changed
    parameter builds a new corpus and an interrupted build resumes (finished FLACs are kept;
    the keys file is written last, atomically).
    """
    files = resolve_speech_files(speech_dir)
    if cfg.max_sources:
        files = files[: cfg.max_sources]
    key = cache_key({"cfg": cfg.__dict__, "files": [str(f) for f in files],
                     "sizes": [f.stat().st_size for f in files]})
    root = Path(root or interim_dir() / "copysynth" / key)
    manifest = root / "manifest.json"
    if manifest.exists() and (root / KEYS_REL).exists():
        return root
    (root / FLAC_REL).mkdir(parents=True, exist_ok=True)
    workers = workers or min(os.cpu_count() or 1, 8)
    jobs = [(i, str(f), cfg, str(root)) for i, f in enumerate(files)]
    all_lines, all_groups, problems = [], [], []
    with ProcessPoolExecutor(max_workers=workers, initializer=_worker_init) as pool:
        for lines, groups, probs in tqdm(pool.map(_process_source, jobs, chunksize=2),
                                         total=len(jobs), desc="copy-synthesis", unit="rec"):
            all_lines += lines
            all_groups += groups
            problems += probs
    if not all_lines:
        raise SpeechSourceError(f"no usable speech: every source was shorter than "
                                f"{cfg.min_segment_s}s after trimming or failed to decode: {problems[:3]}")
    atomic_write(root / GROUPS_REL, "".join(g + "\n" for g in all_groups))
    atomic_write(root / KEYS_REL, "".join(line + "\n" for line in all_lines))
    save_json(manifest, {"dataset": "copysynth", "config": cfg.__dict__, "n_sources": len(files),
                         "speech_dir": str(speech_dir or "asterisk"), "n_trials": len(all_lines),
                         "skipped_sources": problems})
    return root


__all__ = ["VOCODERS", "CopySynthConfig", "SpeechSourceError", "build_copysynth", "fetch_asterisk_speech",
           "resolve_speech_files", "segment", "vocode", "vocode_griffinlim", "vocode_world", "vocode_lpc"]
