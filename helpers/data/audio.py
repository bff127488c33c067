"""Robust audio loading: any sample rate, channel count or sample format in, 16 kHz mono float out.

Real corpora are messy. :func:`load_audio` decodes with soundfile (libsndfile: FLAC, WAV in
8/16/24/32-bit integer and float, OGG, MP3), or with PyAV (FFmpeg's decoders) for the containers
libsndfile does not read (M4A/AAC, ``PYAV_SUFFIXES``), mixes stereo down, resamples with torchaudio, and records
every conversion it made. A file that cannot be decoded, is empty, or holds no samples raises
:class:`AudioError` naming the file and what to do.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
import torchaudio.functional as AF

TARGET_SR = 16_000
AUDIO_SUFFIXES = (".flac", ".wav", ".ogg", ".mp3", ".aiff", ".aif")
PYAV_SUFFIXES = (".m4a", ".mp4", ".aac")    # decoded with PyAV: libsndfile has no AAC decoder


class AudioError(RuntimeError):
    """An audio file that cannot be used."""


@dataclass
class AudioInfo:
    path: str
    original_sr: int
    original_channels: int
    original_subtype: str
    conversions: list[str] = field(default_factory=list)


def load_audio(path: str | Path, target_sr: int = TARGET_SR) -> tuple[np.ndarray, AudioInfo]:
    """Decode ``path`` to mono float32 at ``target_sr``; returns the samples and what was converted."""
    path = Path(path)
    if not path.exists():
        raise AudioError(f"{path}: file does not exist; check the keys file or the audio folder")
    if path.stat().st_size == 0:
        raise AudioError(f"{path}: file is empty (0 bytes); re-download or re-extract it, "
                         "or remove its keys line")
    try:
        if path.suffix.lower() in PYAV_SUFFIXES:
            data, sr, subtype = _pyav_read(path)
        else:
            data, sr = sf.read(str(path), dtype="float32", always_2d=True)
            subtype = sf.info(str(path)).subtype
    except Exception as exc:  # libsndfile raises LibsndfileError / RuntimeError, PyAV its FFmpegError
        raise AudioError(f"{path}: cannot be decoded as audio ({exc}); the file is truncated or "
                         "not audio — re-download or re-extract it, or remove its keys line") from exc
    if data.shape[0] == 0:
        raise AudioError(f"{path}: holds no samples; remove its keys line or replace the file")
    info = AudioInfo(str(path), int(sr), int(data.shape[1]), str(subtype))
    if data.shape[1] > 1:
        data = data.mean(axis=1, keepdims=True)
        info.conversions.append(f"mixed {info.original_channels} channels to mono")
    wav = data[:, 0]
    if not np.all(np.isfinite(wav)):
        raise AudioError(f"{path}: contains NaN or infinite samples; the file is corrupt")
    if sr != target_sr:
        wav = resample(wav, sr, target_sr)
        info.conversions.append(f"resampled {sr} Hz -> {target_sr} Hz")
    if info.original_subtype not in ("PCM_16",):
        info.conversions.append(f"decoded {info.original_subtype} to float32")
    return wav.astype(np.float32, copy=False), info


def _pyav_read(path: Path) -> tuple[np.ndarray, int, str]:
    """Decode the first audio stream with PyAV: (frames, channels) float32, its rate, its codec name."""
    import av

    with av.open(str(path)) as container:
        if not container.streams.audio:
            raise AudioError(f"{path}: holds no audio stream")
        stream = container.streams.audio[0]
        channels = stream.codec_context.channels
        chunks = []
        for frame in container.decode(stream):
            a = frame.to_ndarray()
            if np.issubdtype(a.dtype, np.integer):    # s16 / s32 decoders: scale to [-1, 1)
                a = a.astype(np.float32) / float(np.iinfo(a.dtype).max + 1)
            a = a.astype(np.float32, copy=False)
            # planar formats come as (channels, n), packed ones as (1, n * channels)
            chunks.append(a.T if frame.format.is_planar else a.reshape(-1, channels))
        sr = int(stream.codec_context.sample_rate or stream.rate)
        name = stream.codec_context.name.upper()
    data = np.concatenate(chunks) if chunks else np.zeros((0, max(1, channels)), np.float32)
    return data, sr, name


def resample(wav: np.ndarray, sr_in: int, sr_out: int) -> np.ndarray:
    """Band-limited resampling (torchaudio's windowed sinc)."""
    if sr_in == sr_out:
        return wav
    t = torch.from_numpy(np.ascontiguousarray(wav, dtype=np.float32))
    return AF.resample(t, sr_in, sr_out).numpy()


def write_flac(path: str | Path, wav: np.ndarray, sr: int = TARGET_SR) -> None:
    """Write 16-bit FLAC atomically (clipped to [-1, 1])."""
    from helpers.io import atomic_path

    with atomic_path(path, suffix=".flac") as tmp:
        sf.write(str(tmp), np.clip(wav, -1.0, 1.0), sr, subtype="PCM_16", format="FLAC")


def trim_silence(wav: np.ndarray, top_db: float = 35.0) -> np.ndarray:
    """Trim leading and trailing silence (librosa's energy-based trim)."""
    import librosa

    if wav.size == 0 or np.max(np.abs(wav)) == 0:
        return wav[:0]
    trimmed, _ = librosa.effects.trim(wav, top_db=top_db)
    return trimmed


def list_audio(folder: str | Path) -> list[Path]:
    """All audio files under ``folder``, sorted, following the suffixes soundfile decodes."""
    folder = Path(folder)
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES)


