"""Lossy-codec conditions of ASVspoof 2021 DF, applied with real encoders.

ASVspoof 2021 DF evaluates detectors on speech passed through media codecs; its keys name the
condition in the ``codec`` column (``nocodec``, ``low_mp3``, ``high_mp3``, ``low_m4a``,
``high_m4a``, ``low_ogg``, ``high_ogg``; Liu et al., "ASVspoof 2021: Towards spoofed and deepfake
speech detection in the wild", IEEE/ACM TASLP 2023). This module encodes a 16 kHz waveform with
the real encoder, decodes it back, and returns 16 kHz float32 of the input's length, with the
encoder delay (MP3 padding, AAC priming) removed so the output is sample-aligned to the input.

Encoders (all run at 16 kHz mono; bitrates chosen for that rate, where "high" is near the
encoder's ceiling and "low" band-limits audibly):

==========  ==========================  ==============================  =======================
condition   encoder                     setting                         measured bitrate
==========  ==========================  ==============================  =======================
low_mp3     LAME via libsndfile         CBR 24 kbit/s                   24 kbit/s
high_mp3    LAME via libsndfile         CBR 128 kbit/s                  128 kbit/s
low_m4a     FFmpeg AAC-LC via PyAV      24 kbit/s, MP4 (.m4a)           ~27 kbit/s incl. container
high_m4a    FFmpeg AAC-LC via PyAV      64 kbit/s, MP4 (.m4a)           ~69 kbit/s incl. container
low_ogg     libvorbis via libsndfile    quality 0.0 (lowest VBR)        ~32 kbit/s
high_ogg    libvorbis via libsndfile    quality 1.0 (highest VBR)       ~75 kbit/s
==========  ==========================  ==============================  =======================

libsndfile (already used through ``soundfile``) writes MP3 and Ogg Vorbis since 1.1; it has no
AAC, so m4a goes through PyAV, whose wheels bundle FFmpeg with its native AAC encoder (and a
G.722 codec, used by :func:`apply_source_codec`). FFmpeg's AAC encoder tops out near 70 kbit/s
for 16 kHz mono, hence 64 kbit/s for ``high_m4a``.

Every encoder here is deterministic (no dithering, fixed settings): the same input gives the
same output, so no seed is needed; :func:`apply_codec` can also cache results on disk.
"""

from __future__ import annotations

import hashlib
import io
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from helpers.data.audio import TARGET_SR, resample

DFCodec = Literal["nocodec", "low_mp3", "high_mp3", "low_m4a", "high_m4a", "low_ogg", "high_ogg"]
DF_CODECS: tuple[DFCodec, ...] = ("nocodec", "low_mp3", "high_mp3", "low_m4a", "high_m4a", "low_ogg", "high_ogg")
SourceCodec = Literal["pcm", "g722", "vorbis"]
SOURCE_CODECS: tuple[SourceCodec, ...] = ("pcm", "g722", "vorbis")
CODEC_VERSION = 1  # bump when a setting changes: part of every cache key


class CodecError(RuntimeError):
    """An encoder is missing or failed."""


@dataclass(frozen=True)
class CodecSpec:
    """How one DF condition is produced: format, encoder and bitrate (kbit/s) or VBR quality."""

    name: str
    backend: Literal["none", "soundfile", "pyav"]
    fmt: str
    kbps: float | None = None
    quality: float | None = None  # Vorbis VBR quality in [0, 1] (libsndfile: 1 - compression_level)


CODEC_SPECS: dict[str, CodecSpec] = {
    "nocodec": CodecSpec("nocodec", "none", "-"),
    "low_mp3": CodecSpec("low_mp3", "soundfile", "MP3", kbps=24),
    "high_mp3": CodecSpec("high_mp3", "soundfile", "MP3", kbps=128),
    "low_m4a": CodecSpec("low_m4a", "pyav", "ipod", kbps=24),
    "high_m4a": CodecSpec("high_m4a", "pyav", "ipod", kbps=64),
    "low_ogg": CodecSpec("low_ogg", "soundfile", "OGG", quality=0.0),
    "high_ogg": CodecSpec("high_ogg", "soundfile", "OGG", quality=1.0),
}
# The bonafide sources' own codecs, re-applied to every vocoded copy:
G722_KBPS = 64
SOURCE_VORBIS_SR = 44_100  # Tux Paint's descriptions are 44.1 kHz Ogg Vorbis at ~80-160 kbit/s (stereo)
SOURCE_VORBIS_QUALITY = 0.5  # mono 44.1 kHz at quality 0.5: ~80 kbit/s


# ---------------------------------------------------------------------------- helpers

def _as_float(wav: np.ndarray) -> np.ndarray:
    wav = np.asarray(wav, dtype=np.float32)
    if wav.ndim != 1:
        raise ValueError(f"expected a mono waveform (1-D), got shape {wav.shape}")
    return np.clip(wav, -1.0, 1.0)


def align_to(y: np.ndarray, x: np.ndarray, max_lag: int = 4096) -> np.ndarray:
    """``y`` shifted by the encoder delay (0..``max_lag`` samples, found by cross-correlation
    with ``x``) and cut or zero-padded to ``len(x)``."""
    n = len(x)
    if n == 0:
        return y[:0].astype(np.float32)
    lag = 0
    if np.any(x) and np.any(y):
        m = 1 << int(np.ceil(np.log2(n + len(y) + max_lag)))
        c = np.fft.irfft(np.fft.rfft(y, m) * np.conj(np.fft.rfft(x, m)), m)
        window = c[: max_lag + 1]  # y lags x by 0..max_lag samples
        lag = int(np.argmax(window))
    out = y[lag:lag + n]
    if len(out) < n:
        out = np.pad(out, (0, n - len(out)))
    return out.astype(np.float32)


def _sf_roundtrip(wav: np.ndarray, sr: int, fmt: str, subtype: str, **kw) -> np.ndarray:
    import soundfile as sf

    if fmt not in sf.available_formats() or subtype not in sf.available_subtypes(fmt):
        raise CodecError(f"libsndfile {sf.__libsndfile_version__} cannot write {fmt}/{subtype}; "
                         "install soundfile>=0.12.1 (its wheels bundle libsndfile>=1.1 with MP3 and Vorbis)")
    buf = io.BytesIO()
    sf.write(buf, wav, sr, format=fmt, subtype=subtype, **kw)
    buf.seek(0)
    y, sr_out = sf.read(buf, dtype="float32", always_2d=True)
    y = y.mean(axis=1)
    return resample(y, sr_out, sr) if sr_out != sr else y


def _mp3_level(kbps: float, sr: int) -> float:
    """libsndfile's CBR mapping: bitrate = min + (1 - level) * (max - min) over LAME's table."""
    lo, hi = (8, 160) if sr <= 24_000 else (32, 320)
    return float(np.clip(1.0 - (kbps - lo) / (hi - lo), 0.0, 1.0))


def _pyav():
    try:
        import av
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise CodecError("PyAV is needed for m4a/AAC and G.722 (pip install av; its wheels bundle FFmpeg)") from exc
    return av


def _av_encode(wav: np.ndarray, sr: int, codec: str, fmt: str, kbps: float | None) -> bytes:
    av = _pyav()
    buf = io.BytesIO()
    with av.open(buf, "w", format=fmt) as out:
        stream = out.add_stream(codec, rate=sr, layout="mono")
        if kbps:
            stream.bit_rate = int(kbps * 1000)
        frame = av.AudioFrame.from_ndarray(wav[None, :].astype(np.float32), format="flt", layout="mono")
        frame.sample_rate = sr
        target_fmt = stream.codec_context.format.name if stream.codec_context.format else "fltp"
        rs = av.AudioResampler(format=target_fmt, layout="mono", rate=sr, frame_size=stream.codec_context.frame_size
                               or None)
        for f in list(rs.resample(frame)) + list(rs.resample(None)):
            for packet in stream.encode(f):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return buf.getvalue()


def _av_decode(data: bytes, fmt: str | None, sr: int) -> np.ndarray:
    av = _pyav()
    chunks = []
    with av.open(io.BytesIO(data), "r", format=fmt) as inp:
        rate = inp.streams.audio[0].rate
        for frame in inp.decode(audio=0):
            a = frame.to_ndarray()
            if a.dtype.kind == "i":
                a = a.astype(np.float32) / 32768.0
            chunks.append(a.reshape(-1) if a.shape[0] == 1 else a.mean(axis=0))
    y = np.concatenate(chunks).astype(np.float32) if chunks else np.zeros(0, np.float32)
    return resample(y, rate, sr) if rate != sr else y


# ---------------------------------------------------------------------------- public

def g722_encode(wav: np.ndarray, sr: int = 16000) -> bytes:
    """Raw 64 kbit/s G.722 (ITU-T G.722 sub-band ADPCM; FFmpeg's encoder through PyAV)."""
    x = _as_float(wav)
    if sr != 16000:
        x = resample(x, sr, 16000)
    return _av_encode(x, 16000, "g722", "g722", None)


def g722_decode(data: bytes) -> np.ndarray:
    """16 kHz float32 from raw G.722 bytes (e.g. Asterisk's ``.g722`` prompts)."""
    return _av_decode(data, "g722", 16000)


def encode_decode(wav: np.ndarray, codec: DFCodec, sr: int = TARGET_SR) -> np.ndarray:
    """One DF condition: encode ``wav`` with the real encoder and decode it, sample-aligned."""
    if codec not in CODEC_SPECS:
        raise ValueError(f"unknown codec condition {codec!r}; choose from {DF_CODECS}")
    spec = CODEC_SPECS[codec]
    x = _as_float(wav)
    if spec.backend == "none" or len(x) == 0:
        return x.copy()
    if spec.fmt == "MP3":
        y = _sf_roundtrip(x, sr, "MP3", "MPEG_LAYER_III", compression_level=_mp3_level(spec.kbps, sr),
                          bitrate_mode="CONSTANT")
    elif spec.fmt == "OGG":
        y = _sf_roundtrip(x, sr, "OGG", "VORBIS", compression_level=1.0 - float(spec.quality))
    else:
        y = _av_decode(_av_encode(x, sr, "aac", spec.fmt, spec.kbps), None, sr)
    return align_to(y, x)


def apply_codec(wav: np.ndarray, codec: DFCodec, sr: int = TARGET_SR,
                cache_dir: str | os.PathLike | None = None) -> np.ndarray:
    """:func:`encode_decode`, optionally cached on disk under a hash of the samples and settings."""
    if codec == "nocodec" or cache_dir is None:
        return encode_decode(wav, codec, sr)
    x = _as_float(wav)
    key = hashlib.sha256(x.tobytes() + f"|{codec}|{sr}|{CODEC_VERSION}".encode()).hexdigest()[:24]
    path = Path(cache_dir) / f"{codec}_{key}.npy"
    if path.exists():
        return np.load(path, allow_pickle=False)
    y = encode_decode(x, codec, sr)
    from helpers.io import atomic_path

    with atomic_path(path, suffix=".npy") as tmp:
        with open(tmp, "wb") as fh:
            np.save(fh, y, allow_pickle=False)
    return y


def apply_source_codec(wav: np.ndarray, source_codec: SourceCodec, sr: int = TARGET_SR) -> np.ndarray:
    """Pass ``wav`` through the codec its bonafide source came in, so a vocoded copy carries the
    same coding traces as the real recording (otherwise "has G.722 traces" would give the class
    away): G.722 at 64 kbit/s for ``g722``; Ogg Vorbis at 44.1 kHz for ``vorbis``; identity for ``pcm``."""
    x = _as_float(wav)
    if source_codec == "pcm" or len(x) == 0:
        return x.copy()
    if source_codec == "g722":
        y = g722_decode(g722_encode(x, sr))
        if sr != 16000:
            y = resample(y, 16000, sr)
        return align_to(y, x)
    if source_codec == "vorbis":
        up = resample(x, sr, SOURCE_VORBIS_SR)
        y = _sf_roundtrip(np.clip(up, -1, 1), SOURCE_VORBIS_SR, "OGG", "VORBIS",
                          compression_level=1.0 - SOURCE_VORBIS_QUALITY)
        return align_to(resample(y, SOURCE_VORBIS_SR, sr), x)
    raise ValueError(f"unknown source codec {source_codec!r}; choose from {SOURCE_CODECS}")


def assign_codecs(n: int, codecs: tuple[str, ...], seed: int) -> list[str]:
    """A seeded, balanced assignment of ``codecs`` to ``n`` items (counts differ by at most one)."""
    for c in codecs:
        if c not in CODEC_SPECS:
            raise ValueError(f"unknown codec condition {c!r}; choose from {DF_CODECS}")
    if not codecs:
        raise ValueError("at least one codec condition is needed (e.g. ('nocodec',))")
    base = [codecs[i % len(codecs)] for i in range(n)]
    rng = np.random.default_rng(seed)
    return [base[int(i)] for i in rng.permutation(n)]


__all__ = ["CODEC_SPECS", "DF_CODECS", "SOURCE_CODECS", "CodecError", "CodecSpec", "DFCodec", "SourceCodec",
           "align_to", "apply_codec", "apply_source_codec", "assign_codecs", "encode_decode", "g722_decode",
           "g722_encode"]
