import numpy as np
import pytest
import torch
from torch import nn

from helpers.attacks.audio import (AudioPipeline, SquareAudio, StftPixle, features_batch, snr_db,
                                   square_p_schedule)
from helpers.defenses.smoothing import GaussianBlur
from helpers.data.features import FeatureConfig, extract
from tests.conftest import speechlike

CFG = FeatureConfig()


@pytest.fixture(autouse=True)
def _one_thread(one_thread):
    """Every test here runs on one torch thread (conftest.one_thread)."""


def clips(n: int = 6, seconds: float = 0.5) -> torch.Tensor:
    """Equal-length speech-like clips at 16 kHz with different pitch and level."""
    return torch.tensor(np.stack([speechlike(seconds, 16000, 110 + 12 * i, seed=i) * (0.5 + 0.1 * (i % 4))
                                  for i in range(n)]))


class BandDetector(nn.Module):
    """Spoof (1) when the mean green level of the top (high-frequency) rows exceeds ``thr``."""

    def __init__(self, thr: float, scale: float = 40.0):
        super().__init__()
        self.thr, self.scale = thr, scale

    def forward(self, x):
        z = (x[:, 1, :12, :].mean((1, 2)) - self.thr) * self.scale
        return torch.stack([-z, z], 1)


class TinyCNN(nn.Module):
    """A fixed random 2-layer CNN: a detector with no structure the attacks could exploit on purpose."""

    def __init__(self, seed: int = 0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.conv = nn.Conv2d(3, 4, 3, stride=2)
        self.fc = nn.Linear(4, 2)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=g) * 0.5)

    def forward(self, x):
        return self.fc(torch.relu(self.conv(x)).mean((2, 3)))


def band_pipeline(wav: torch.Tensor, above: float = 0.02) -> AudioPipeline:
    """Every clip bonafide, ``above`` below the decision threshold."""
    band = features_batch(wav, CFG)[:, 1, :12, :].mean((1, 2))
    return AudioPipeline(BandDetector(float(band.max()) + above), CFG)


def _recorded_equals_recomputed(pipe, res, y):
    with torch.no_grad():
        logits = pipe(res.adv)
    assert torch.allclose(logits[:, 0] - logits[:, 1], res.final_score, atol=1e-5)
    prob = torch.softmax(logits, 1).gather(1, y[:, None]).squeeze(1)
    assert torch.allclose(prob, res.final_prob, atol=1e-5)
    assert torch.equal(res.success, logits.argmax(1) != y)


# --------------------------------------------------------------------------- features and pipeline

@pytest.mark.parametrize("name", ["thesis_rgb32", "logspec"])
def test_features_batch_equals_extract_per_clip(name):
    cfg = FeatureConfig(name=name)
    wav = clips(5, 0.6)
    wav[3] = 0                                          # silence: the min-max degenerate case
    wav[4] = wav[4] * 3                                 # a louder clip: per-clip peak and min-max
    batch = features_batch(wav, cfg)
    ref = torch.stack([extract(w.numpy(), cfg) for w in wav])
    assert batch.shape == (5, *cfg.shape)
    diff = (batch - ref).abs()
    print(f"{name}: max |batch - extract| = {diff.max().item():.2e}")   # measured: 0 (bit-identical)
    assert diff.max() <= 1e-5
    short = torch.tensor(speechlike(0.015, 16000))[None]            # 240 samples < n_fft: padded
    assert (features_batch(short, cfg) - extract(short[0].numpy(), cfg)).abs().max() <= 1e-5


def test_pipeline_is_detector_on_preprocessed_features():
    wav = clips(3)
    model, blur = TinyCNN(), GaussianBlur(sigma=1.0)
    pipe = AudioPipeline(model, CFG, preprocess=blur)
    ref = model(blur(torch.stack([extract(w.numpy(), CFG) for w in wav])))
    assert torch.allclose(pipe(wav), ref, atol=1e-5)


def test_snr_db():
    x = clips(2)
    assert torch.allclose(snr_db(x, x * 1.1), torch.full((2,), 20.0), atol=1e-3)
    assert torch.isinf(snr_db(x, x)).all()


def test_square_p_schedule():
    assert square_p_schedule(0.05, 0, 10_000) == pytest.approx(0.05)
    assert square_p_schedule(0.05, 11, 10_000) == pytest.approx(0.025)
    assert square_p_schedule(0.05, 9_000, 10_000) == pytest.approx(0.05 / 512)
    assert square_p_schedule(0.05, 30, 100) == pytest.approx(0.05 / 64)  # 30/100 of the budget = 3000 of 10 000


# --------------------------------------------------------------------------- STFT-magnitude Pixle

def _pixle(pipe, **kw):
    args = dict(restarts=5, max_iterations=10, seed=3)
    args.update(kw)
    return StftPixle(pipe, **args)


def test_stft_pixle_changes_only_the_magnitude_and_records_its_scores():
    wav = clips(6)
    y = torch.zeros(6, dtype=torch.long)
    pipe = band_pipeline(wav)
    res = _pixle(pipe)(wav, y)
    print("STFT-Pixle success", res.success.tolist(), "queries", res.queries.tolist(), "snr", res.snr_db.tolist())
    assert res.success.float().mean() >= 0.5                      # measured: all 6 within 50 candidates
    assert (res.queries <= 51).all() and (res.queries >= 2).all()
    _recorded_equals_recomputed(pipe, res, y)
    assert res.adv.abs().max() <= 1
    # the returned audio is the inverse STFT of the new magnitude with the original phase
    attack = _pixle(pipe)
    spec0 = attack.stft(wav)
    mag0 = spec0.abs()
    resynth = attack.istft(res.adv_mag * torch.polar(torch.ones_like(mag0), spec0.angle()), wav.shape[1])
    assert torch.allclose(res.adv, resynth.clamp(-1, 1), atol=1e-5)
    # pixels are moved, not invented: every changed bin holds a magnitude of the original clip
    for i in range(6):
        changed = res.adv_mag[i] != mag0[i]
        assert bool(changed.any()) == bool(res.snr_db[i] < float("inf"))
        assert torch.isin(res.adv_mag[i][changed], mag0[i]).all()
    # SNR and L-inf are those of the returned perturbation
    d = (res.adv - wav).double()
    expected_snr = 10 * torch.log10(wav.double().pow(2).sum(1) / d.pow(2).sum(1))
    assert torch.allclose(res.snr_db.double(), expected_snr, atol=1e-3)
    assert torch.allclose(res.linf, d.abs().amax(1).float())


def test_stft_pixle_deterministic_and_batch_independent():
    wav = clips(6)
    pipe = AudioPipeline(TinyCNN(), CFG)
    y = pipe(wav).argmax(1)
    attack = _pixle(pipe, restarts=3, max_iterations=6, block=4)
    a = attack(wav, y)
    assert torch.equal(a.adv, attack(wav, y).adv)
    parts = [attack(wav[i:i + 4], y[i:i + 4], ids=torch.arange(i, min(i + 4, 6))) for i in (0, 4)]
    assert torch.equal(torch.cat([p.adv for p in parts]), a.adv)
    assert torch.equal(torch.cat([p.queries for p in parts]), a.queries)
    _recorded_equals_recomputed(pipe, a, y)
    assert (a.final_prob <= torch.softmax(pipe(wav), 1).gather(1, y[:, None]).squeeze(1) + 1e-6).all()
    b = _pixle(pipe, restarts=3, max_iterations=6, seed=4)(wav, y)
    assert not torch.equal(a.adv, b.adv)


# --------------------------------------------------------------------------- Square Attack on audio

def test_square_audio_respects_snr_budget_and_records_its_scores():
    wav = clips(6)
    y = torch.zeros(6, dtype=torch.long)
    pipe = band_pipeline(wav)
    res = SquareAudio(pipe, snr_db=30.0, n_queries=40, seed=1)(wav, y)
    assert res.success.all() and (res.queries == 2).all()          # full-band noise at 30 dB fools this toy
    assert (res.snr_db >= 30.0 - 1e-3).all()
    eps = wav.pow(2).mean(1).sqrt() * 10 ** (-30 / 20)
    assert (res.linf <= eps + 1e-6).all()
    _recorded_equals_recomputed(pipe, res, y)
    hard = SquareAudio(pipe, snr_db=45.0, n_queries=40, seed=1)(wav, y)     # too little noise to fool it
    assert not hard.success.any() and (hard.queries == 41).all()
    assert (hard.snr_db >= 45.0 - 1e-3).all()
    _recorded_equals_recomputed(pipe, hard, y)


def test_square_audio_absolute_eps_deterministic_and_batch_independent():
    wav = clips(6)
    pipe = AudioPipeline(TinyCNN(), CFG)
    y = pipe(wav).argmax(1)
    attack = SquareAudio(pipe, eps=0.004, n_queries=30, seed=2)
    a = attack(wav, y)
    assert ((a.adv - wav).abs().amax(1) <= 0.004 + 1e-6).all() and (a.linf <= 0.004 + 1e-6).all()
    assert a.adv.abs().max() <= 1
    assert (a.queries <= 31).all()
    _recorded_equals_recomputed(pipe, a, y)
    assert torch.equal(attack(wav, y).adv, a.adv)
    parts = [attack(wav[i:i + 4], y[i:i + 4], ids=torch.arange(i, min(i + 4, 6))) for i in (0, 4)]
    assert torch.equal(torch.cat([p.adv for p in parts]), a.adv)
    assert torch.equal(torch.cat([p.queries for p in parts]), a.queries)
    assert not torch.equal(SquareAudio(pipe, eps=0.004, n_queries=30, seed=3)(wav, y).adv, a.adv)


def test_skip_misclassified_and_argument_checks():
    wav = clips(3)
    pipe = band_pipeline(wav)
    wrong = torch.ones(3, dtype=torch.long)                            # the detector says bonafide
    for attack in (SquareAudio(pipe, snr_db=30, n_queries=10, skip_misclassified=True),
                   _pixle(pipe, skip_misclassified=True)):
        res = attack(wav, wrong)
        assert res.success.all() and (res.queries == 1).all() and torch.equal(res.adv, wav)
    with pytest.raises(ValueError, match="exactly one"):
        SquareAudio(pipe)
    with pytest.raises(ValueError, match=r"\[-1, 1\]"):
        SquareAudio(pipe, eps=0.01)(wav * 20, wrong)


def test_no_attack_switches_a_batchnorm_detector_into_training_mode():
    """A wrapper (audio pipeline, blur-defended model) is in training mode when built; restoring its flag after
    an attack once put the detector inside it into training mode, so BatchNorm used batch statistics and
    overwrote its running averages: clean decisions then depended on the batch. Every attack must leave the
    detector's mode, its BatchNorm buffers and its outputs as they were."""
    from helpers.attacks.pixle import Pixle
    from helpers.defenses.smoothing import Defended
    from helpers.models.detectors import build_model, predict
    from helpers.attacks.sparse_rs import SparseRS

    torch.manual_seed(0)
    model = build_model("resnet18").eval()
    buffers = {k: v.clone() for k, v in model.state_dict().items() if "running" in k}
    wav, y = clips(4), torch.tensor([0, 1, 0, 1])
    pipe = AudioPipeline(model, FeatureConfig())
    x = pipe.features(wav)
    before = predict(model, x)
    assert pipe.training and not model.training          # the trap: a fresh wrapper is in training mode
    SquareAudio(pipe, snr_db=30.0, n_queries=3, seed=0)(wav, y)
    StftPixle(pipe, restarts=1, max_iterations=2, seed=0)(wav, y)
    target = Defended(model, GaussianBlur(5, (0.5, 1.0), seed=0))
    SparseRS(target, k=4, n_queries=3, seed=0)(x, y)
    Pixle(target, restarts=1, max_iterations=2, seed=0)(x, y)
    assert not model.training and all(not m.training for m in model.modules())
    assert pipe.training and target.training              # each wrapper keeps its own flag
    with torch.inference_mode():
        pipe(wav[:1]), pipe(wav)                          # plain forward passes, batch 1 and 4
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in buffers.items())
    assert torch.equal(predict(model, x), before)
    assert torch.allclose(predict(model, x[:1]), before[:1], atol=1e-5)   # batch 1: float rounding only
