import numpy as np
import pytest
import soundfile as sf
import torch

from helpers.data.audio import AudioError, load_audio
from helpers.data.features import FeatureConfig, cached_features, extract, render_via_figure, load_features
from tests.conftest import speechlike


def test_real_asvspoof_flac_decodes(shared_data):
    wav, info = load_audio(shared_data / "LA_T_1000137.flac")
    assert info.original_sr == 16000 and info.original_channels == 1 and info.conversions == []
    assert wav.dtype == np.float32 and 2.0 < len(wav) / 16000 < 3.0 and np.isfinite(wav).all()


@pytest.mark.parametrize("sr", [8000, 22050, 44100, 48000])
@pytest.mark.parametrize("subtype", ["PCM_U8", "PCM_16", "PCM_24", "PCM_32", "FLOAT"])
def test_rates_channels_and_formats_are_converted_and_recorded(tmp_path, sr, subtype):
    x = speechlike(1.0, sr)
    stereo = np.stack([x, 0.5 * x], 1)
    f = tmp_path / f"a_{sr}_{subtype}.wav"
    sf.write(f, stereo, sr, subtype=subtype)
    before = f.read_bytes()
    wav, info = load_audio(f)
    assert abs(len(wav) - 16000) <= 2
    assert info.original_sr == sr and info.original_channels == 2
    assert "mixed 2 channels to mono" in info.conversions
    if sr != 16000:
        assert f"resampled {sr} Hz -> 16000 Hz" in info.conversions
    assert f.read_bytes() == before          # input never modified


def test_broken_inputs_raise_naming_the_file(tmp_path, shared_data):
    empty = tmp_path / "empty.flac"
    empty.write_bytes(b"")
    with pytest.raises(AudioError, match="empty.flac: file is empty"):
        load_audio(empty)
    junk = tmp_path / "junk.flac"
    junk.write_bytes(b"this is not audio at all" * 20)
    with pytest.raises(AudioError, match="junk.flac: cannot be decoded"):
        load_audio(junk)
    trunc = tmp_path / "trunc.flac"
    trunc.write_bytes((shared_data / "LA_T_1000137.flac").read_bytes()[:200])
    with pytest.raises(AudioError, match="trunc.flac"):
        load_audio(trunc)
    with pytest.raises(AudioError, match="does not exist"):
        load_audio(tmp_path / "missing.flac")


@pytest.mark.parametrize("name,shape", [("thesis_rgb32", (3, 32, 32)), ("logspec", (1, 48, 48))])
def test_feature_shapes_ranges_and_silence(name, shape):
    cfg = FeatureConfig(name=name, size=shape[1])
    for wav in (speechlike(2.0), np.zeros(16000, np.float32), np.zeros(100, np.float32)):
        f = extract(wav, cfg)
        assert f.shape == shape
        assert torch.isfinite(f).all() and f.min() >= 0 and f.max() <= 1


def test_direct_image_matches_figure_rendering():
    from helpers.reporting import figures as plots

    plots.style()          # the notebooks' style (tight bounding boxes) must not change the reference
    wav = speechlike(2.0)
    fast, slow = extract(wav, FeatureConfig()), render_via_figure(wav, FeatureConfig())
    assert np.corrcoef(fast.flatten(), slow.flatten())[0, 1] > 0.99


def test_feature_cache_roundtrip(tmp_path):
    paths = []
    for i in range(3):
        p = tmp_path / f"c{i}.flac"
        sf.write(p, speechlike(1.0, seed=i), 16000)
        paths.append(str(p))
    target = tmp_path / "cache" / "train.safetensors"
    fs = cached_features(target, paths, [0, 1, 1], ["c0", "c1", "c2"], FeatureConfig())
    again = load_features(target)
    assert torch.equal(fs.x, again.x) and again.trials == ["c0", "c1", "c2"] and again.y.tolist() == [0, 1, 1]


def test_skip_mode_records_bad_files(tmp_path):
    good = tmp_path / "g.flac"
    sf.write(good, speechlike(1.0), 16000)
    bad = tmp_path / "b.flac"
    bad.write_bytes(b"nope")
    skipped = []
    fs = cached_features(tmp_path / "f.safetensors", [str(good), str(bad)], [0, 1], ["g", "b"], FeatureConfig(),
                         on_error="skip", skipped=skipped)
    assert fs.trials == ["g"] and skipped[0]["trial"] == "b" and "b.flac" in skipped[0]["reason"]


def test_conversions_are_recorded_with_the_features(tmp_path):
    f = tmp_path / "stereo48k.wav"
    sf.write(f, np.stack([speechlike(1.0, 48000)] * 2, 1), 48000, subtype="PCM_24")
    target = tmp_path / "feat.safetensors"
    fs = cached_features(target, [str(f)], [0], ["s48"], FeatureConfig())
    assert fs.conversions and "resampled 48000 Hz -> 16000 Hz" in fs.conversions[0]["conversions"]
    assert load_features(target).conversions == fs.conversions


# --------------------------------------------------------------------------- high-resolution front ends

@pytest.mark.parametrize("name,rows", [("lfcc", 60), ("lfcc_cmn", 60), ("loglin", 257)])
def test_hires_front_end_shape_range_and_fixed_length(name, rows):
    from helpers.data.features import FeatureConfig, extract

    cfg = FeatureConfig(name=name)
    g = torch.Generator().manual_seed(0)
    for n in (48000, 20000, 70000, 100):           # exact, short (repeated), long (cropped), tiny
        wav = (0.1 * torch.randn(n, generator=g)).numpy()
        x = extract(wav, cfg)
        assert x.shape == cfg.shape == (1, rows, 301)
        assert torch.isfinite(x).all() and x.min() >= 0 and x.max() <= 1 and x.std() > 0
    assert extract(np.zeros(48000, dtype=np.float32), cfg).isfinite().all()   # silence: finite
    assert cfg.stem == "imagenet" and FeatureConfig().stem == "cifar"


def test_lfcc_is_torchaudios_lfcc_with_deltas_squashed():
    import torchaudio
    import torchaudio.functional as AF

    from helpers.data.features import LFCC_SCALES, FeatureConfig, lfcc

    wav = 0.1 * torch.randn(48000, generator=torch.Generator().manual_seed(1))
    ref = torchaudio.transforms.LFCC(sample_rate=16000, n_filter=20, n_lfcc=20,
                                     speckwargs={"n_fft": 512, "win_length": 320, "hop_length": 160, "center": True})(wav)
    d = AF.compute_deltas(ref)
    full = torch.cat([ref, d, AF.compute_deltas(d)])
    img = lfcc(wav, FeatureConfig(name="lfcc"))[0]
    back = torch.logit(img[:20].double().clamp(1e-12, 1 - 1e-12)).float()
    assert torch.allclose(back[0] * LFCC_SCALES[0], full[0], atol=1e-2, rtol=1e-3)
    assert torch.allclose(back[1:20] * LFCC_SCALES[1], full[1:20], atol=1e-2, rtol=1e-3)
    assert torch.allclose(img, torch.sigmoid(full / torch.tensor([LFCC_SCALES[0]] + [LFCC_SCALES[1]] * 19
                                                                  + [LFCC_SCALES[2]] * 20 + [LFCC_SCALES[3]] * 20)[:, None]),
                          atol=1e-5)


def test_lfcc_cmn_removes_a_fixed_filter_and_the_level_exactly_and_nothing_else():
    """CMN: the cepstral rows of ``lfcc_cmn`` are ``lfcc``'s minus their mean over frames (deltas untouched), so a
    constant dB per band (any level) leaves the image unchanged, where plain LFCC moves; a real filter on the audio
    moves it far less than it moves plain LFCC."""
    from helpers.data.features import LFCC_SCALES, FeatureConfig, lfcc, lfcc_db_from_image, lfcc_image_from_db

    wav = 0.1 * torch.randn(2, 48000, generator=torch.Generator().manual_seed(4))
    plain, cmn = lfcc(wav, FeatureConfig(name="lfcc")), lfcc(wav, FeatureConfig(name="lfcc_cmn"))
    assert cmn.shape == plain.shape == (2, 1, 60, 301)
    assert torch.allclose(cmn[:, :, 20:], plain[:, :, 20:], atol=1e-6)      # deltas and delta-deltas as LFCC's
    c = torch.logit(plain[:, 0, :20].double()) * torch.tensor([LFCC_SCALES[0]] + [LFCC_SCALES[1]] * 19)[:, None]
    expect = torch.sigmoid((c - c.mean(-1, keepdim=True)) / torch.tensor([LFCC_SCALES[0]] + [LFCC_SCALES[1]] * 19)[:, None])
    assert torch.allclose(cmn[:, 0, :20].double(), expect, atol=1e-4)
    # a fixed filter: a roll-off of 30 dB over the top 8 bands and a 12 dB level change
    db = lfcc_db_from_image(plain)
    response = torch.cat([torch.zeros(12), torch.linspace(-4, -30, 8)]) - 12.0
    shifted = db + response[None, :, None]
    assert torch.allclose(lfcc_image_from_db(shifted, cmn=True), lfcc_image_from_db(db, cmn=True), atol=1e-5)
    assert (lfcc_image_from_db(shifted) - lfcc_image_from_db(db)).abs().amax() > 0.1
    # on audio: a gain is exact (the 80 dB floor moves with the clip's peak); a 10 dB treble cut nearly
    assert torch.allclose(lfcc(0.25 * wav, FeatureConfig(name="lfcc_cmn")), cmn, atol=1e-4)
    assert (lfcc(0.25 * wav, FeatureConfig(name="lfcc")) - plain).abs().amax() > 0.1
    import torchaudio.functional as AF

    shelf = AF.treble_biquad(wav, 16000, gain=-10.0, central_freq=4000.0)
    moved_cmn = (lfcc(shelf, FeatureConfig(name="lfcc_cmn")) - cmn).abs().amax()
    moved_plain = (lfcc(shelf, FeatureConfig(name="lfcc")) - plain).abs().amax()
    assert moved_cmn < 0.05 and moved_plain > 4 * moved_cmn


@pytest.mark.parametrize("name", ["lfcc", "lfcc_cmn", "loglin"])
def test_hires_batch_equals_each_clip_alone(name):
    from helpers.data.features import FeatureConfig, extract, hires_batch

    cfg = FeatureConfig(name=name)
    wav = 0.1 * torch.randn(3, 48000, generator=torch.Generator().manual_seed(2))
    wav[1] *= 0.01                                     # a quiet clip: its own 80 dB floor, not the batch's
    batch = hires_batch(wav, cfg)
    for i in range(3):
        assert torch.allclose(batch[i], extract(wav[i].numpy(), cfg), atol=1e-5)


def test_thesis_feature_cache_key_unchanged_by_the_crop_field():
    from helpers.data.features import FeatureConfig

    assert FeatureConfig().key() == "2561935a7ee9"     # the key of every existing thesis_rgb32 cache
    assert FeatureConfig(name="lfcc").key() != FeatureConfig(name="lfcc", crop_s=4.0).key()


def test_hires_features_are_differentiable_for_waveform_attacks():
    from helpers.data.features import FeatureConfig, hires_batch

    wav = (0.1 * torch.randn(2, 48000, generator=torch.Generator().manual_seed(3))).requires_grad_()
    for name in ("lfcc", "lfcc_cmn", "loglin"):
        hires_batch(wav, FeatureConfig(name=name)).sum().backward()
        assert wav.grad is not None and torch.isfinite(wav.grad).all() and wav.grad.abs().sum() > 0
        wav.grad = None
