"""DF codec conditions and source codecs: real encoders, aligned, deterministic, lossy where they should be."""

from __future__ import annotations

import numpy as np
import pytest

from helpers.data import codecs as K
from tests.conftest import speechlike

SR = 16000


def _broadband(seconds=2.0, seed=0):
    """Speech-like harmonics plus white noise, so there is energy up to 8 kHz."""
    x = speechlike(seconds, SR, seed=seed)
    return (x + 0.03 * np.random.default_rng(seed).standard_normal(len(x))).astype(np.float32)


def _err(x, y):
    return float(np.sum((x - y) ** 2) / np.sum(x ** 2))


def _share_above(y, hz):
    spec = np.abs(np.fft.rfft(y)) ** 2
    return float(spec[np.fft.rfftfreq(len(y), 1 / SR) > hz].sum() / spec.sum())


@pytest.mark.parametrize("codec", [c for c in K.DF_CODECS if c != "nocodec"])
def test_roundtrip_same_length_finite_changed_and_deterministic(codec):
    x = _broadband(1.7)                     # a length that is no multiple of any frame size
    y = K.encode_decode(x, codec)
    assert y.shape == x.shape and y.dtype == np.float32 and np.isfinite(y).all()
    assert _err(x, y) > 1e-4                # a lossy codec changed the samples
    assert _err(x, y) < 0.5                 # ... but is aligned and still the same sound
    assert np.array_equal(y, K.encode_decode(x, codec))


def test_nocodec_is_identity():
    x = _broadband(1.0)
    assert np.array_equal(K.encode_decode(x, "nocodec"), x)


@pytest.mark.parametrize("family", ["mp3", "m4a", "ogg"])
def test_low_bitrate_degrades_more_than_high(family):
    x = _broadband(2.0, seed=3)
    assert _err(x, K.encode_decode(x, f"low_{family}")) > 1.5 * _err(x, K.encode_decode(x, f"high_{family}"))


def test_low_mp3_band_limits():
    x = _broadband(2.0, seed=1)
    assert _share_above(K.encode_decode(x, "low_mp3"), 5000) < 0.5 * _share_above(x, 5000)
    assert _share_above(K.encode_decode(x, "high_mp3"), 5000) > 0.5 * _share_above(x, 5000)


def test_align_to_removes_a_known_delay():
    x = _broadband(1.0)
    y = np.concatenate([np.zeros(1105, np.float32), x, np.zeros(300, np.float32)])
    assert np.array_equal(K.align_to(y, x), x)
    assert len(K.align_to(x[:500], x)) == len(x)


@pytest.mark.parametrize("source_codec", ["g722", "vorbis"])
def test_source_codec_changes_signal_but_stays_aligned(source_codec):
    x = _broadband(1.3, seed=2)
    y = K.apply_source_codec(x, source_codec)
    assert y.shape == x.shape and np.isfinite(y).all()
    assert 1e-4 < _err(x, y) < 0.3
    assert np.array_equal(y, K.apply_source_codec(x, source_codec))


def _band_err(x, y, lo, hi):
    f = np.fft.rfftfreq(len(x), 1 / SR)
    X, Y = np.fft.rfft(x), np.fft.rfft(y)
    m = (f >= lo) & (f < hi)
    return float(np.sum(np.abs(X[m] - Y[m]) ** 2) / np.sum(np.abs(X[m]) ** 2))


def test_g722_codes_the_upper_subband_coarsely_and_pcm_is_identity():
    x = _broadband(1.5)
    y = K.apply_source_codec(x, "g722")      # G.722: 6-bit ADPCM below 4 kHz, 2-bit above
    assert _band_err(x, y, 4000, 8000) > 3 * _band_err(x, y, 0, 4000)
    assert np.array_equal(K.apply_source_codec(x, "pcm"), x)
    with pytest.raises(ValueError, match="unknown source codec"):
        K.apply_source_codec(x, "amr")


def test_apply_codec_cache(tmp_path):
    x = _broadband(1.0)
    y = K.apply_codec(x, "low_ogg", cache_dir=tmp_path)
    files = list(tmp_path.glob("low_ogg_*.npy"))
    assert len(files) == 1
    np.save(files[0], np.full_like(y, 0.25))             # a second call reads the cache
    assert np.all(K.apply_codec(x, "low_ogg", cache_dir=tmp_path) == 0.25)


def test_assign_codecs_is_balanced_and_seeded():
    a = K.assign_codecs(20, K.DF_CODECS, seed=4)
    counts = {c: a.count(c) for c in K.DF_CODECS}
    assert max(counts.values()) - min(counts.values()) <= 1 and len(a) == 20
    assert a == K.assign_codecs(20, K.DF_CODECS, seed=4) and a != K.assign_codecs(20, K.DF_CODECS, seed=5)
    with pytest.raises(ValueError, match="unknown codec"):
        K.assign_codecs(3, ("mp3",), seed=0)
