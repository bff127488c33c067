"""The offline corpus (``DATASET = "copysynth"``): real speech as bonafide, real synthesis systems as spoofs.

Bonafide = segments of real speech recordings. Spoof = speech made the way deepfakes are made
(:mod:`helpers.data.synthesis` lists the systems, each with an ASVspoof-style id and a family):

- **text-to-speech** by installed engines (Piper VITS, Festival HTS / unit selection / diphone,
  Flite clustergen / diphone, eSpeak NG formant), reading sentences from the bonafide sources'
  own transcripts (:mod:`helpers.data.sentences`), language-matched where the engine has the
  language;
- **copy synthesis the way TTS pipelines drive vocoders** (Frank & Schoenherr, WaveFake, NeurIPS
  2021; Wang & Yamagishi, ICASSP 2023): an 80-band mel spectrogram with a TTS front end's analysis
  (n_fft 1024, hop 256, fmax 8 kHz) inverted by Griffin-Lim (S12); WORLD with a 40-coefficient coded
  envelope and coded band aperiodicity (S13); an order-16 LPC vocoder (S14). The full-STFT
  Griffin-Lim (D01) and full-envelope WORLD (D02) re-synthesise the very representation the features
  are made of; they stay available as diagnostic systems, outside the default list.

The spoof budget is balanced: about as many spoofs as bonafide clips, shared equally among the
systems that can run here (a copy-synthesis system copies one bonafide segment in every
``n_systems``, :func:`copy_choice`; a TTS system renders as many clips). A system whose engine or
voice is missing is left out with the command that installs it (``manifest.json`` lists the
systems that ran and those left out); a sentence that makes an engine fail or produce silence is skipped and listed
(``keys/CM/synthesis_skipped.csv``), never an empty clip.

The corpus is written in the common layout (``keys/CM/trial_metadata.txt`` in the official
13-column format, the system id in ``attack`` and its family in ``vocoder``, plus
``flac/<trial>.flac``) so that every notebook reads it like ASVspoof. A sidecar
``keys/CM/trial_groups.txt`` maps each trial to its split unit (a source recording and its copies;
a sentence and its TTS renderings), ``keys/CM/systems.csv`` describes each system used.

Bonafide speech comes from ``SPEECH_DIR``, from the Asterisk English prompts (8 kHz, the
original default), or, with ``CopySynthConfig(sources=...)``, from wideband multi-speaker Debian
packages (:mod:`helpers.data.speech_sources`). Every spoof is passed through a bonafide source codec
(a copy: its own source's; a TTS clip: one drawn from the bonafide recordings of its language), so
coding traces never give the bonafide class away, and the ASVspoof 2021 DF codec conditions
(:mod:`helpers.data.codecs`) are applied to both classes alike, seeded and balanced.
``keys/CM/trial_info.csv`` keeps, per trial, the system, family, sentence, source codec and
package, and ``LICENSES.md`` the licence of every source, text and engine used.
"""

from __future__ import annotations

import math
import os
import shutil
import subprocess
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Literal

import numpy as np
import pandas as pd

from helpers.data.audio import TARGET_SR, AudioError, list_audio, trim_silence, write_flac
from helpers.data.codecs import CODEC_VERSION, CodecError, apply_codec, apply_source_codec, assign_codecs
from helpers.io import atomic_write, cache_key, save_json
from helpers.data.keys import KeysRecord
from helpers.paths import interim_dir, raw_dir
from helpers.progress import progress_iter
from helpers.data.speech_sources import (SpeechItem, SpeechSourceError, balanced_subset, cap_minutes_per_speaker,
                                    gather_speech, licences_markdown, load_speech, speech_dir_items)
from helpers.data.sentences import (Sentence, festvox_ru_prompts, gather_sentences, pick_sentences, text_packages,
                                    text_licences_markdown)
from helpers.data.synthesis import (DEFAULT_SYSTEMS, SYNTH_VERSION, SYSTEMS, SpoofSystem, accepts, available_systems,
                                    check_system, synthesize, system_cache_dir, system_languages)
from helpers.data.synthesis import licences_markdown as synthesis_licences

Vocoder = Literal["mel_griffinlim", "world_coded", "lpc", "griffinlim", "world"]
VOCODERS: tuple[Vocoder, ...] = ("mel_griffinlim", "world_coded", "lpc", "griffinlim", "world")
ASTERISK_PACKAGE = "asterisk-core-sounds-en-wav"
ASTERISK_SUBDIR = Path("usr/share/asterisk/sounds/en_US_f_Allison")
KEYS_REL = Path("keys/CM/trial_metadata.txt")
GROUPS_REL = Path("keys/CM/trial_groups.txt")
INFO_REL = Path("keys/CM/trial_info.csv")
SYSTEMS_REL = Path("keys/CM/systems.csv")
SKIPPED_REL = Path("keys/CM/synthesis_skipped.csv")
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
    import scipy.signal as sps     # here, not at the top: scipy.signal costs every notebook's kernel about 2 s

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


def vocode_mel_griffinlim(wav: np.ndarray, sr: int = TARGET_SR, n_fft: int = 1024, hop: int = 256,
                          n_mels: int = 80, fmax: float = 8000.0, n_iter: int = 60, seed: int = 0) -> np.ndarray:
    """What a TTS acoustic model hands its vocoder: an 80-band log-mel spectrogram with the analysis of
    Tacotron 2 / HiFi-GAN front ends (n_fft 1024, hop 256, Slaney mel basis up to 8 kHz, log of the
    magnitude clamped at 1e-5), mapped back to a linear magnitude by the mel basis's pseudo-inverse
    and phase-reconstructed by Griffin-Lim (Griffin & Lim 1984; Shen et al. 2018)."""
    import librosa
    import torch
    import torchaudio.transforms as T

    torch.manual_seed(seed)
    x = torch.from_numpy(wav.astype(np.float32))
    spec = T.Spectrogram(n_fft=n_fft, hop_length=hop, power=1.0)(x)                  # (513, frames)
    basis = torch.from_numpy(librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels, fmin=0.0, fmax=fmax))
    log_mel = torch.log(torch.clamp(basis @ spec, min=1e-5))                          # the TTS representation
    mag = torch.clamp(torch.linalg.pinv(basis) @ torch.exp(log_mel), min=0.0)
    y = T.GriffinLim(n_fft=n_fft, hop_length=hop, power=1.0, n_iter=n_iter)(mag)
    return _fit_length(y.numpy(), len(wav))


def vocode_world_coded(wav: np.ndarray, sr: int = TARGET_SR, frame_period: float = 5.0,
                       n_coeffs: int = 40) -> np.ndarray:
    """WORLD as statistical parametric TTS uses it: the CheapTrick envelope coded to ``n_coeffs``
    mel-cepstral coefficients and D4C aperiodicity coded to band aperiodicities (pyworld's
    ``code_spectral_envelope`` / ``code_aperiodicity``), decoded and synthesised (Morise et al. 2016;
    the setting of Merlin and of ASVspoof 2019 LA's WORLD-based systems)."""
    import pyworld as pw

    x = wav.astype(np.float64)
    f0, t = _world_f0(x, sr, frame_period)
    sp = pw.cheaptrick(x, f0, t, sr)
    ap = pw.d4c(x, f0, t, sr)
    fft_size = pw.get_cheaptrick_fft_size(sr)
    sp_hat = pw.decode_spectral_envelope(np.ascontiguousarray(pw.code_spectral_envelope(sp, sr, n_coeffs)), sr, fft_size)
    ap_hat = pw.decode_aperiodicity(np.ascontiguousarray(pw.code_aperiodicity(ap, sr)), sr, fft_size)
    y = pw.synthesize(f0, np.ascontiguousarray(sp_hat), np.ascontiguousarray(ap_hat), sr, frame_period)
    return _fit_length(y.astype(np.float32), len(wav))


def vocode(wav: np.ndarray, vocoder: Vocoder, seed: int = 0) -> np.ndarray:
    """Copy-synthesise ``wav`` with one of :data:`VOCODERS` (a system's ``options["vocoder"]``)."""
    if vocoder == "mel_griffinlim":
        return vocode_mel_griffinlim(wav, seed=seed)
    if vocoder == "world_coded":
        return vocode_world_coded(wav)
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
    copy alike (TTS clips get their own balanced assignment), so a codec never tells the classes apart.
    ``systems`` are spoofing system ids of :data:`helpers.data.synthesis.SYSTEMS`; which of them are
    unseen is a property of the split, not of the corpus (``helpers.data.corpus.assign_splits``).
    """

    segment_s: float = 3.0
    min_segment_s: float = 1.0
    systems: tuple[str, ...] = DEFAULT_SYSTEMS
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


_Job = tuple[int, SpeechItem, str, CopySynthConfig, str, tuple[str, ...], int]


def copy_choice(seed: int, idx: int, seg: int, copy_ids: tuple[str, ...], n_systems: int) -> str | None:
    """The copy-synthesis system (if any) that copies segment ``seg`` of recording ``idx``.

    Segments cycle through ``n_systems`` slots (a seeded offset, then one slot per recording and
    segment); slot ``k < len(copy_ids)`` is copied by ``copy_ids[k]``, the other slots by no one, so each
    copy system copies about ``1 / n_systems`` of the bonafide segments of every speaker, the same
    share every TTS system gets.
    """
    if not copy_ids or n_systems <= 0:
        return None
    offset = int(np.random.default_rng([seed, 31]).integers(n_systems))
    slot = (offset + idx + seg) % n_systems
    return copy_ids[slot] if slot < len(copy_ids) else None


def _keys_line(speaker: str, trial: str, codec: str, source: str, system: SpoofSystem | None, language: str) -> str:
    label = "bonafide" if system is None else "spoof"
    return KeysRecord(speaker=speaker, trial=trial, codec=codec, source=source,
                      attack="-" if system is None else system.id, label=label, trim="notrim", subset="eval",
                      vocoder="bonafide" if system is None else system.family, task="-", team="-",
                      gender_pair="-", language=language or "-").to_line()


def _process_source(args: _Job) -> tuple[list[str], list[str], list[dict], list[str]]:
    """Worker: one source recording -> bonafide segments and the copies chosen for them.

    Bonafide: the decoded source segment, then the DF codec. Spoof: the segment copy-synthesised,
    passed through the source's own codec (G.722, Vorbis or none), then the same DF codec.
    """
    idx, item, codec, cfg, out_dir, copy_ids, n_systems = args
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
        chosen = copy_choice(cfg.seed, idx, s, copy_ids, n_systems)
        for system in (None, *([SYSTEMS[chosen]] if chosen else [])):
            trial = utt if system is None else f"{utt}_{system.id}"
            target = flac_dir / f"{trial}.flac"
            if not target.exists():
                if system is None:
                    data = piece
                else:
                    data = vocode(piece, system.options["vocoder"], seed=cfg.seed + idx)
                    data = apply_source_codec(data, item.source_codec)
                write_flac(target, apply_codec(data, codec))  # type: ignore[arg-type]
            lines.append(_keys_line(item.speaker, trial, codec, item.source, system, item.language))
            groups.append(f"{trial} {group}")
            infos.append({"trial": trial, "group": group, "label": "bonafide" if system is None else "spoof",
                          "system": "-" if system is None else system.id,
                          "family": "bonafide" if system is None else system.family, "sentence": "",
                          "speaker": item.speaker, "language": item.language, "source": item.source,
                          "source_package": item.source_package, "source_codec": item.source_codec, "codec": codec,
                          "source_file": _rel_source(item.path), "seconds": round(len(piece) / TARGET_SR, 3)})
    return lines, groups, infos, problems


_TtsJob = tuple[str, str, str, str, str, str, int, str, str, CopySynthConfig, str]


def _process_tts(args: _TtsJob) -> tuple[list[str], list[str], list[dict], list[str]]:
    """Worker: one cached TTS rendering -> its first ``n_pieces`` segments, source codec, DF codec."""
    sid, sentence_id, text_source, language, text, wav_path, n_pieces, source_codec, codec, cfg, out_dir = args
    system = SYSTEMS[sid]
    lines, groups, infos = [], [], []
    import soundfile as sf

    wav, _ = sf.read(wav_path, dtype="float32")
    group = f"SENT_{sentence_id}"
    speaker = f"{sid}_{language}"
    for k, piece in enumerate(segment(wav, cfg.segment_s, cfg.min_segment_s)[:n_pieces]):
        trial = f"{sid}_{sentence_id}_{k:02d}"
        target = Path(out_dir) / FLAC_REL / f"{trial}.flac"
        if not target.exists():
            write_flac(target, apply_codec(apply_source_codec(piece, source_codec), codec))  # type: ignore[arg-type]
        lines.append(_keys_line(speaker, trial, codec, f"tts_{text_source}", system, language))
        groups.append(f"{trial} {group}")
        infos.append({"trial": trial, "group": group, "label": "spoof", "system": sid, "family": system.family,
                      "sentence": text, "speaker": speaker, "language": language, "source": f"tts_{text_source}",
                      "source_package": text_source, "source_codec": source_codec, "codec": codec,
                      "source_file": f"{sid}/{Path(wav_path).name}", "seconds": round(len(piece) / TARGET_SR, 3)})
    return lines, groups, infos, []


def _n_pieces(n_samples: int, cfg: CopySynthConfig) -> int:
    step, least = int(round(cfg.segment_s * TARGET_SR)), int(round(cfg.min_segment_s * TARGET_SR))
    return n_samples // step + (1 if n_samples % step >= least else 0)


def _rel_source(path: Path) -> str:
    for base in (raw_dir(),):
        try:
            return str(Path(path).resolve().relative_to(base.resolve()))
        except ValueError:
            pass
    return Path(path).name


SentenceSource = Callable[[list[str], tuple[str, ...]], dict[str, list[Sentence]]]


def _default_sentences(languages: list[str], sources: tuple[str, ...]) -> dict[str, list[Sentence]]:
    return gather_sentences(text_packages(sources, languages), languages)


def _tts_plan(systems: list[SpoofSystem], items: list[SpeechItem], n_per_system: int, cfg: CopySynthConfig,
              out_dir: Path, workers: int, sentence_source: SentenceSource,
              missing: list[dict]) -> tuple[list[tuple], list[dict], dict[str, float]]:
    """Synthesise (cached) and plan the TTS clips: one job per rendering, ``n_per_system`` clips per system."""
    import soundfile as sf

    if not systems or n_per_system <= 0:
        return [], [], {}
    languages = sorted({it.language for it in items if it.language not in ("", "-")}) or ["en"]
    pool = sentence_source(languages, tuple(cfg.sources))
    codecs_by_lang: dict[str, list[str]] = {}
    for it in items:
        codecs_by_lang.setdefault(it.language, []).append(it.source_codec)
    all_codecs = [it.source_codec for it in items]
    rng = np.random.default_rng([cfg.seed, 77])
    jobs, failed, seconds = [], [], {}
    for k, system in enumerate(systems):
        langs = [l for l in system_languages(system, languages) if pool.get(l)]
        if not langs:
            why = (f"no sentences in the languages it speaks ({', '.join(system_languages(system, languages)) or 'none'}) "
                   f"among the bonafide's ({', '.join(languages)})")
            print(f"spoofing system {system.id} ({system.name}) is left out: {why}")
            missing.append({"system": system.id, "name": system.name, "reason": why, "install": ""})
            continue
        exclude: list[str] = []
        if system.id == "S07":   # its own prompts would re-splice the bonafide recordings almost whole
            try:
                exclude = festvox_ru_prompts()
            except (SpeechSourceError, OSError) as exc:
                why = f"its own prompt list (festvox-ru) could not be read ({exc}), so it might re-read them"
                print(f"spoofing system {system.id} ({system.name}) is left out: {why}")
                missing.append({"system": system.id, "name": system.name, "reason": why, "install": ""})
                continue
        chosen = pick_sentences(pool, langs, n_per_system + n_per_system // 4 + 2, cfg.seed + k, exclude=exclude,
                                keep=lambda sent, sy=system: accepts(sy, sent))
        res = synthesize(system, chosen, workers=workers)
        failed += res.failed
        seconds[system.id] = round(res.seconds, 1)
        got = 0
        for sent in chosen:
            if got >= n_per_system or sent.id not in res.clips:
                continue
            take = min(_n_pieces(sf.info(str(res.clips[sent.id])).frames, cfg), n_per_system - got)
            if take <= 0:
                failed.append({"system": system.id, "sentence": sent.id, "language": sent.language, "text": sent.text,
                               "reason": f"shorter than {cfg.min_segment_s} s after trimming"})
                continue
            src_codec = str(rng.choice(codecs_by_lang.get(sent.language) or all_codecs))
            jobs.append((system.id, sent.id, sent.source, sent.language, sent.text, str(res.clips[sent.id]), take,
                         src_codec))
            got += take
    codecs = assign_codecs(len(jobs), tuple(cfg.codecs), cfg.seed + 1)
    return [(*j, c, cfg, str(out_dir)) for j, c in zip(jobs, codecs)], failed, seconds


def _run_pool(fn, jobs: list, workers: int, desc: str, unit: str) -> tuple[list[str], list[str], list[dict], list[str]]:
    lines, groups, infos, problems = [], [], [], []
    if not jobs:
        return lines, groups, infos, problems
    with ProcessPoolExecutor(max_workers=workers, initializer=_worker_init) as pool:
        for ln, gr, inf, pr in progress_iter(pool.map(fn, jobs, chunksize=2), total=len(jobs), desc=desc, unit=unit):
            lines += ln
            groups += gr
            infos += inf
            problems += pr
    return lines, groups, infos, problems


def build_copysynth(speech_dir: str | None = None, cfg: CopySynthConfig = CopySynthConfig(),
                    root: Path | None = None, workers: int | None = None,
                    check: Callable[[SpoofSystem], str | None] = check_system,
                    sentence_source: SentenceSource = _default_sentences) -> Path:
    """Build (or reuse) the corpus; returns its root folder.

    The folder name is derived from the configuration, the source files and the systems that can
    run here, so a changed parameter (or a newly installed engine) builds a new corpus, and an
    interrupted build resumes (finished FLACs and syntheses are kept; the keys file is written last,
    atomically). Besides the keys and the groups sidecar it writes ``keys/CM/trial_info.csv``,
    ``keys/CM/systems.csv``, ``keys/CM/synthesis_skipped.csv`` and ``LICENSES.md``.
    """
    t_start = time.perf_counter()
    items = resolve_speech_items(speech_dir, cfg)
    systems, missing = available_systems(cfg.systems, check=check)
    assigned = assign_codecs(len(items), tuple(cfg.codecs), cfg.seed)
    key = cache_key({"cfg": cfg.__dict__, "files": [str(it.path) for it in items],
                     "sizes": [it.path.stat().st_size for it in items],
                     "speakers": [it.speaker for it in items], "codec_version": CODEC_VERSION,
                     "systems_run": [s.id for s in systems], "synth_version": SYNTH_VERSION,
                     "synth_caches": [system_cache_dir(s).name for s in systems if s.is_tts]})
    root = Path(root or interim_dir() / "copysynth" / key)
    manifest = root / "manifest.json"
    if manifest.exists() and (root / KEYS_REL).exists():
        return root
    (root / FLAC_REL).mkdir(parents=True, exist_ok=True)
    workers = workers or min(os.cpu_count() or 1, 8)
    copy_ids = tuple(s.id for s in systems if not s.is_tts)
    jobs = [(i, it, c, cfg, str(root), copy_ids, len(systems)) for i, (it, c) in enumerate(zip(items, assigned))]
    all_lines, all_groups, all_infos, problems = _run_pool(_process_source, jobs, workers, "bonafide + copies",
                                                           "recordings")
    n_bona = sum(1 for i in all_infos if i["label"] == "bonafide")
    if not n_bona:
        raise SpeechSourceError(f"no usable speech: every source was shorter than "
                                f"{cfg.min_segment_s}s after trimming or failed to decode: {problems[:3]}")
    per_system = math.ceil(n_bona / max(1, len(systems)))
    tts_jobs, failed, synth_seconds = _tts_plan([s for s in systems if s.is_tts], items, per_system, cfg, root,
                                                workers, sentence_source, missing)
    lines, groups, infos, _ = _run_pool(_process_tts, tts_jobs, workers, "text-to-speech clips", "renderings")
    all_lines += lines
    all_groups += groups
    all_infos += infos
    info = pd.DataFrame(all_infos)
    ran = [s for s in systems if s.id in set(info["system"])]
    table = systems_table(info, ran)
    atomic_write(root / SYSTEMS_REL, table.to_csv(index=False))
    atomic_write(root / SKIPPED_REL, pd.DataFrame(failed, columns=["system", "sentence", "language", "text",
                                                                   "reason"]).to_csv(index=False))
    used_texts = sorted({i["source_package"] for i in all_infos if i["label"] == "spoof" and i["system"] in
                         {s.id for s in ran if s.is_tts}})
    atomic_write(root / "LICENSES.md", licences_markdown(items) + "\n" + text_licences_markdown(used_texts)
                 + "\n" + synthesis_licences(ran))
    atomic_write(root / INFO_REL, info.to_csv(index=False))
    atomic_write(root / GROUPS_REL, "".join(g + "\n" for g in all_groups))
    atomic_write(root / KEYS_REL, "".join(line + "\n" for line in all_lines))
    save_json(manifest, {"dataset": "copysynth", "config": cfg.__dict__, "n_sources": len(items),
                         "speech_dir": str(speech_dir or ("sources" if cfg.sources else "asterisk")),
                         "n_trials": len(all_lines), "n_speakers": int(info["speaker"].nunique()),
                         "n_bonafide": n_bona, "clips_per_system_target": per_system,
                         "systems_run": [s.id for s in ran], "systems_missing": missing,
                         "trials_per_system": info["system"].value_counts().to_dict(),
                         "synthesis_seconds": synth_seconds, "synthesis_skipped": len(failed),
                         "trials_per_codec": info["codec"].value_counts().to_dict(),
                         "sources_per_package": pd.Series([it.source_package for it in items]).value_counts().to_dict(),
                         "skipped_sources": problems, "build_seconds": round(time.perf_counter() - t_start, 1)})
    return root


def systems_table(info: pd.DataFrame, systems: list[SpoofSystem]) -> pd.DataFrame:
    """One row per system used: id, family, engine, voice, languages, licence, clips, minutes."""
    rows = []
    for s in systems:
        sub = info[info["system"] == s.id]
        rows.append({"system": s.id, "name": s.name, "family": s.family, "engine": s.engine, "voice": s.voice,
                     "languages": ",".join(sorted(set(sub["language"]))), "licence": s.licence,
                     "clips": len(sub), "minutes": round(float(sub["seconds"].sum()) / 60, 2)})
    return pd.DataFrame(rows, columns=["system", "name", "family", "engine", "voice", "languages", "licence",
                                       "clips", "minutes"])


__all__ = ["VOCODERS", "CopySynthConfig", "SpeechSourceError", "build_copysynth", "copy_choice", "fetch_asterisk_speech",
           "resolve_speech_files", "resolve_speech_items", "segment", "systems_table", "vocode", "vocode_griffinlim",
           "vocode_lpc", "vocode_mel_griffinlim", "vocode_world", "vocode_world_coded"]
