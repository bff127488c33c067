"""Every attack keeps the one contract (helpers.attacks.base): a subclass of ``Attack``, parameters checked at
construction with the allowed range in the message, inputs checked, ``AttackResult`` returned, and every
submodule of the model in eval mode during the attack and back in its *own* mode afterwards."""

from __future__ import annotations

import importlib
import pkgutil

import numpy as np
import pytest
import torch
from torch import nn

import helpers.attacks
from helpers.attacks.audio import AudioPipeline, SquareAudio, StftPixle, attack_clips
from helpers.attacks.base import Attack, AttackResult, counter_uniform, step_uniform
from helpers.attacks.pixle import Pixle
from helpers.attacks.sparse_rs import SparseRS
from helpers.data.features import FeatureConfig
from tests.conftest import speechlike


@pytest.fixture(autouse=True)
def _one_thread(one_thread):
    """Every test here runs on one torch thread (conftest.one_thread)."""


class BNDetector(nn.Module):
    """A tiny detector with BatchNorm and Dropout: its outputs and buffers depend on its mode."""

    def __init__(self, in_channels: int = 3):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, 4, 3, stride=2)
        self.bn = nn.BatchNorm2d(4)
        self.drop = nn.Dropout(0.5)
        self.fc = nn.Linear(4, 2)

    def forward(self, x):
        return self.fc(self.drop(torch.relu(self.bn(self.conv(x))).mean((2, 3))))


class Wrapper(nn.Module):
    """A preprocessing wrapper (as a blur-defended model is): built in training mode, its detector in eval mode."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model, self.pre = model, nn.Identity()

    def forward(self, x):
        return self.model(self.pre(x))


def _images(n: int = 3) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.rand(n, 3, 32, 32, generator=torch.Generator().manual_seed(0)), torch.tensor([0, 1, 0][:n])


def _clips(n: int = 2, seconds: float = 0.3) -> tuple[torch.Tensor, torch.Tensor]:
    wav = torch.tensor(np.stack([speechlike(seconds, 16000, 120 + 15 * i, seed=i) for i in range(n)]))
    return wav, torch.tensor([0, 1][:n])


# one small instance of every attack, and the input it attacks
ATTACKS = {
    "Pixle": (lambda m: Pixle(m, restarts=1, max_iterations=3, seed=0), _images, False),
    "SparseRS": (lambda m: SparseRS(m, k=4, n_queries=3, seed=0), _images, False),
    "StftPixle": (lambda m: StftPixle(m, restarts=1, max_iterations=2, seed=0), _clips, True),
    "SquareAudio": (lambda m: SquareAudio(m, snr_db=30.0, n_queries=3, seed=0), _clips, True),
}
# (attack, a parameter out of range, the allowed range its message must state)
BAD_PARAMS = [
    ("Pixle", {"restarts": -1}, r"restarts=-1 is out of range; allowed: an integer in [0, inf]"),
    ("Pixle", {"max_iterations": 2.5}, r"max_iterations=2.5 is out of range; allowed: an integer in [0, inf]"),
    ("Pixle", {"pixel_mapping": "nearest"}, "choose one of ('random', 'similarity'"),
    ("Pixle", {"x_dimensions": (0, 4)}, "an integer in [1, inf] (pixels) or a float in [0, 1]"),
    ("Pixle", {"block": 0}, r"block=0 is out of range; allowed: an integer in [1, inf]"),
    ("SparseRS", {"k": 0}, r"k=0 is out of range; allowed: an integer in [1, inf]"),
    ("SparseRS", {"n_queries": 0}, r"n_queries=0 is out of range; allowed: an integer in [1, inf]"),
    ("SparseRS", {"alpha_init": 1.5}, r"alpha_init=1.5 is out of range; allowed: a number in (0, 1]"),
    ("SparseRS", {"loss": "hinge"}, "choose one of ('margin', 'ce')"),
    ("StftPixle", {"restarts": -2}, r"restarts=-2 is out of range; allowed: an integer in [0, inf]"),
    ("StftPixle", {"freq_dimensions": (2.0, 3.0)}, "freq_dimensions=(2.0, 3.0) is out of range"),
    ("StftPixle", {"n_fft": 64, "hop": 128}, r"hop=128 is out of range; allowed: an integer in [1, 64]"),
    ("SquareAudio", {"eps": 3.0, "snr_db": None}, r"eps=3.0 is out of range; allowed: a number in (0, 2]"),
    ("SquareAudio", {"p_init": 0.0}, r"p_init=0.0 is out of range; allowed: a number in (0, 1]"),
    ("SquareAudio", {"n_queries": -5}, r"n_queries=-5 is out of range; allowed: an integer in [1, inf]"),
]
DEFAULTS = {"SquareAudio": {"snr_db": 30.0}}
CLASSES = {"Pixle": Pixle, "SparseRS": SparseRS, "StftPixle": StftPixle, "SquareAudio": SquareAudio}


def _target(audio: bool, detector: nn.Module) -> nn.Module:
    return AudioPipeline(detector, FeatureConfig()) if audio else Wrapper(detector)


def test_every_attack_in_the_package_is_an_attack_and_is_tested_here():
    for mod in pkgutil.iter_modules(helpers.attacks.__path__):
        importlib.import_module(f"helpers.attacks.{mod.name}")

    def concrete(cls):
        for sub in cls.__subclasses__():
            yield from concrete(sub)
            if not getattr(sub, "__abstractmethods__", None):
                yield sub

    found = {c.__name__ for c in concrete(Attack) if c.__module__.startswith("helpers.")}
    assert found == set(ATTACKS), f"attacks without a contract test here: {found ^ set(ATTACKS)}"
    assert all(issubclass(c, Attack) for c in CLASSES.values())


@pytest.mark.parametrize("name,bad,message", BAD_PARAMS, ids=[f"{b[0]}-{next(iter(b[1]))}" for b in BAD_PARAMS])
def test_an_out_of_range_parameter_fails_at_construction_naming_the_range(name, bad, message):
    model = _target(ATTACKS[name][2], BNDetector())
    with pytest.raises(ValueError) as err:
        CLASSES[name](model, **{**DEFAULTS.get(name, {}), **bad})
    assert message in str(err.value) and name in str(err.value)


def test_numpy_integers_and_floats_are_accepted_where_python_ones_are():
    attack = SparseRS(Wrapper(BNDetector()), k=np.int64(4), n_queries=np.int32(3), alpha_init=np.float32(0.5))
    assert attack.k == 4


@pytest.mark.parametrize("name", list(ATTACKS))
def test_an_input_out_of_range_is_rejected_naming_the_range(name):
    make, data, audio = ATTACKS[name]
    x, y = data()
    with pytest.raises(ValueError, match=r"\[-1, 1\]" if audio else r"\[0, 1\]"):
        make(_target(audio, BNDetector()))(x * 5 + 2, y)
    with pytest.raises(ValueError, match="expects"):
        make(_target(audio, BNDetector()))(x[None, None], y)                 # wrong number of dimensions


@pytest.mark.parametrize("name", list(ATTACKS))
def test_result_type_and_fields(name):
    make, data, audio = ATTACKS[name]
    x, y = data()
    res = make(_target(audio, BNDetector().eval()))(x, y)
    assert type(res) is AttackResult
    b = len(y)
    assert res.adv.shape == x.shape and res.adv.dtype == x.dtype
    assert res.success.shape == (b,) and res.success.dtype == torch.bool
    assert res.queries.shape == (b,) and res.queries.dtype == torch.long and (res.queries >= 1).all()
    assert res.l0.shape == res.snr_db.shape == (b,)
    measured, other = (res.snr_db, res.l0) if audio else (res.l0.float(), res.snr_db)
    assert not measured.isnan().any() and other.isnan().all()          # L0 for images, SNR for audio
    assert res.seconds > 0
    cpu = res.cpu()
    assert type(cpu) is AttackResult and torch.equal(cpu.adv, res.adv) and cpu.seconds == res.seconds


@pytest.mark.parametrize("name", list(ATTACKS))
def test_eval_mode_during_the_attack_and_each_submodules_own_mode_after(name):
    """A wrapper in training mode around a detector in eval mode (the trap of a freshly built wrapper), and a
    detector with one submodule deliberately left in training mode: during the attack every submodule is in
    eval mode; afterwards each has its own flag back, and BatchNorm's running statistics are untouched."""
    make, data, audio = ATTACKS[name]
    x, y = data()
    det = BNDetector().eval()
    det.drop.train()                                     # a mixed state that must come back as it was
    target = _target(audio, det)
    assert target.training
    before = {n: m.training for n, m in target.named_modules()}
    buffers = {k: v.clone() for k, v in det.state_dict().items()}
    seen = []
    det.register_forward_pre_hook(lambda m, i: seen.append(any(s.training for s in target.modules())))
    make(target)(x, y)
    assert seen and not any(seen)                        # every query ran with every submodule in eval mode
    assert {n: m.training for n, m in target.named_modules()} == before
    assert all(torch.equal(v, det.state_dict()[k]) for k, v in buffers.items())


def test_modes_are_restored_when_the_attack_fails():
    class Broken(BNDetector):
        def forward(self, x):
            raise RuntimeError("detector failed")

    det = Broken().train()
    det.bn.eval()
    before = {n: m.training for n, m in det.named_modules()}
    with pytest.raises(RuntimeError, match="detector failed"):
        Pixle(det, restarts=1, max_iterations=2)(*_images())
    assert {n: m.training for n, m in det.named_modules()} == before


def test_attack_clips_of_several_lengths_equals_one_batch_per_length():
    wav_a, _ = _clips(2, 0.3)
    wav_b, _ = _clips(2, 0.35)
    waves = [wav_a[0], wav_b[0], wav_a[1], wav_b[1]]
    y, ids = torch.tensor([0, 1, 1, 0]), torch.tensor([10, 11, 12, 13])
    pipe = AudioPipeline(BNDetector().eval(), FeatureConfig())
    attack = SquareAudio(pipe, snr_db=30.0, n_queries=4, seed=1)
    res = attack_clips(attack, waves, y, ids)
    assert isinstance(res.adv, list) and [len(w) for w in res.adv] == [len(w) for w in waves]
    for idx in ([0, 2], [1, 3]):
        sel = torch.tensor(idx)
        part = attack(torch.stack([waves[i] for i in idx]), y[sel], ids=ids[sel])
        assert all(torch.equal(res.adv[i], part.adv[j]) for j, i in enumerate(idx))
        assert torch.equal(res.queries[sel], part.queries) and torch.equal(res.snr_db[sel], part.snr_db)
        assert torch.equal(res.success[sel], part.success)
    assert res.l0.isnan().all() and res.queries.dtype == torch.long


def test_step_uniform_is_counter_uniform_on_each_items_own_counters():
    ids = torch.tensor([0, 3])
    u = step_uniform(5, ids, step=2, steps=10, stride=7, width=4, offset=1)
    expect = torch.stack([counter_uniform(5, (i * 10 + 2) * 7 + 1 + torch.arange(4)) for i in (0, 3)])
    assert torch.equal(u, expect)
