import copy

import pytest
import torch

from helpers.models.detectors import Normalize, build_model, predict
from helpers.models.training import (CheckpointMismatchError, TrainConfig, load_checkpoint, pixle_generator, train)


@pytest.mark.parametrize("arch", ["resnet18", "resnet50"])
@pytest.mark.parametrize("shape", [(3, 32, 32), (1, 48, 48)])
def test_output_shapes_and_cifar_stem(arch, shape):
    m = build_model(arch, shape[0], seed=0).eval()
    out = m(torch.rand(2, *shape))
    assert out.shape == (2, 2)
    assert m.net.conv1.kernel_size == (3, 3) and m.net.conv1.stride == (1, 1)
    assert isinstance(m.net.maxpool, torch.nn.Identity)


@pytest.mark.parametrize("arch", ["resnet18", "resnet50"])
@pytest.mark.parametrize("stem,channels", [("cifar", 3), ("cifar", 4), ("imagenet", 1)])
def test_resnet_is_torchvisions_weight_for_weight_and_output_for_output(arch, stem, channels):
    """helpers.models.resnet builds torchvision's ResNet without importing torchvision: a seeded detector has the
    same parameter names, the same weights bit for bit (the RNG consumed in the same order) and the same outputs;
    so checkpoints and every measured number carry over."""
    import torchvision.models.resnet as tv

    from helpers.models import detectors

    ours = build_model(arch, channels, seed=3, stem=stem)
    with pytest.MonkeyPatch.context() as mp:       # the same Detector on torchvision's classes
        for name in ("BasicBlock", "Bottleneck", "ResNet"):
            mp.setattr(detectors, name, getattr(tv, name))
        theirs = build_model(arch, channels, seed=3, stem=stem)
    assert type(theirs.net) is tv.ResNet and type(ours.net) is not tv.ResNet
    a, b = ours.state_dict(), theirs.state_dict()
    assert list(a) == list(b)
    assert all(torch.equal(a[k], b[k]) for k in a), [k for k in a if not torch.equal(a[k], b[k])][:3]
    # outputs with random normalisation layers (ResNet-50's zero-initialised residual branches would otherwise hide
    # its blocks: every BatchNorm weight, bias and running statistic drawn in [0.5, 1.5))
    g = torch.Generator().manual_seed(1)
    state = {k: torch.rand(v.shape, generator=g) + 0.5 if v.is_floating_point() and v.dim() == 1 else v
             for k, v in a.items()}
    ours.load_state_dict(state), theirs.load_state_dict(state)
    x = torch.rand(4, channels, 32, 32, generator=torch.Generator().manual_seed(0))
    assert torch.equal(ours.eval()(x), theirs.eval()(x))
    ours.train(), theirs.train()
    assert torch.equal(ours(x), theirs(x))


def test_importing_the_pipeline_does_not_import_torchvision():
    """The ResNet is ours so that a notebook's imports skip torchvision (and the torch._dynamo it pulls in)."""
    import subprocess
    import sys

    code = ("import sys, helpers.experiments.stages, helpers.experiments.certified, helpers.score, "
            "helpers.reporting.figures; print(sorted(m for m in sys.modules if m.split('.')[0] == 'torchvision' "
            "or m.startswith('torch._dynamo')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]", out


def test_resnet50_residual_branches_start_at_zero_and_resnet18_does_not():
    r50, r18 = build_model("resnet50", 3, seed=0), build_model("resnet18", 3, seed=0)
    assert all(torch.count_nonzero(b.bn3.weight) == 0 for layer in (r50.net.layer1, r50.net.layer4) for b in layer)
    assert all(torch.all(b.bn2.weight == 1) for b in r18.net.layer1)
    x = torch.rand(2, 3, 32, 32)
    assert torch.isfinite(r50.eval()(x)).all()


def test_normalisation_is_the_first_layer():
    m = build_model("resnet18", 3, seed=0).eval()
    assert isinstance(m.normalize, Normalize)
    x = torch.rand(2, 3, 32, 32)
    manual = m.net((x - torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)) / torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1))
    assert torch.allclose(m(x), manual, atol=1e-5)


def _toy(n=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 3, 16, 16, generator=g) * 0.5
    y = torch.arange(n) % 2
    x[y == 1, 0] += 0.5          # class 1: a bright red channel
    return x.clamp(0, 1), y


def test_training_lowers_loss_and_checkpoint_roundtrip(tmp_path):
    x, y = _toy()
    cfg = TrainConfig(epochs=3, batch_size=16, lr=0.01, seed=1)
    ck = tmp_path / "m.safetensors"
    res = train("resnet18", 3, (x, y), (x, y), cfg, ck, {"features": "toy"}, progress=False)
    assert res.history[-1]["train_loss"] < res.history[0]["train_loss"]
    assert res.history[-1]["val_accuracy"] >= 0.9
    fresh = build_model("resnet18", 3)
    meta = load_checkpoint(ck, fresh, expect={"arch": "resnet18", "features": "toy"})
    assert meta["complete"] and meta["epoch"] == 3
    assert torch.allclose(predict(fresh, x), predict(res.model, x), atol=1e-6)
    with pytest.MonkeyPatch.context() as mp:    # a finished run is reused without an optimizer (torch._dynamo)
        mp.setattr(torch.optim, "SGD", None)
        again = train("resnet18", 3, (x, y), (x, y), cfg, ck, {"features": "toy"}, progress=False)
    assert again.reused and again.history == res.history
    assert torch.allclose(predict(again.model, x), predict(fresh, x), atol=1e-6)


def test_mismatched_checkpoint_is_refused_before_loading(tmp_path):
    x, y = _toy(16)
    ck = tmp_path / "m.safetensors"
    train("resnet18", 3, (x, y), (x, y), TrainConfig(epochs=1, batch_size=8), ck, {"features": "thesis_rgb32"}, progress=False)
    other = build_model("resnet50", 3)
    before = copy.deepcopy(other.state_dict())
    with pytest.raises(CheckpointMismatchError, match="arch='resnet18'.*expects arch='resnet50'"):
        load_checkpoint(ck, other, expect={"arch": "resnet50"})
    with pytest.raises(CheckpointMismatchError, match="features='thesis_rgb32'.*features='logspec'"):
        load_checkpoint(ck, build_model("resnet18", 3), expect={"features": "logspec"})
    assert all(torch.equal(before[k], v) for k, v in other.state_dict().items())   # nothing loaded half-way


def test_checkpoint_of_an_older_model_version_is_refused(tmp_path, monkeypatch):
    import helpers.models.training as T
    x, y = _toy(16)
    ck = tmp_path / "m.safetensors"
    monkeypatch.setattr(T, "MODEL_VERSION", 1)
    train("resnet18", 3, (x, y), (x, y), TrainConfig(epochs=1, batch_size=8), ck, {"features": "toy"}, progress=False)
    monkeypatch.undo()
    with pytest.raises(CheckpointMismatchError, match="model_version=1.*expects model_version=2"):
        train("resnet18", 3, (x, y), (x, y), TrainConfig(epochs=1, batch_size=8), ck, {"features": "toy"}, progress=False)


def test_resume_after_interruption_matches_uninterrupted(tmp_path):
    x, y = _toy(48)
    cfg = TrainConfig(epochs=3, batch_size=16, lr=0.01, seed=2)
    full = train("resnet18", 3, (x, y), (x, y), cfg, tmp_path / "full.safetensors", progress=False)

    class Interrupt(Exception):
        pass

    def die(epoch, row):
        if epoch == 2:
            raise Interrupt
    ck = tmp_path / "cut.safetensors"
    with pytest.raises(Interrupt):
        train("resnet18", 3, (x, y), (x, y), cfg, ck, progress=False, on_epoch=die)
    resumed = train("resnet18", 3, (x, y), (x, y), cfg, ck, progress=False)
    assert resumed.resumed_from == 2
    assert [h["train_loss"] for h in resumed.history] == pytest.approx([h["train_loss"] for h in full.history], rel=1e-5)
    assert torch.allclose(predict(resumed.model, x), predict(full.model, x), atol=1e-4)


def test_adversarial_training_uses_pixle_and_lowers_adversarial_loss(tmp_path):
    x, y = _toy(48, seed=3)
    calls = []
    gen = pixle_generator({"restarts": 1, "max_iterations": 4, "x_dimensions": (0.1, 0.2), "y_dimensions": (2, 4)}, seed=0)

    def counting(frozen, xb, yb, ids, epoch):
        adv = gen(frozen, xb, yb, ids, epoch)
        calls.append(int((adv != xb).any(1).flatten(1).sum()))
        assert not frozen.training
        return adv
    cfg = TrainConfig(epochs=3, batch_size=16, lr=0.01, seed=0)
    res = train("resnet18", 3, (x, y), (x, y), cfg, tmp_path / "at.safetensors", adv=counting, progress=False)
    assert len(calls) == 9 and sum(calls) > 0          # every batch got Pixle examples that moved pixels
    assert res.history[-1]["train_adv_loss"] < res.history[0]["train_adv_loss"]


def test_early_stop_counts_epochs_without_improvement_and_resumes_from_history():
    from helpers.models.training import EarlyStop

    stop = EarlyStop(2)
    assert [stop.update(v) for v in (1.0, 0.9, 0.95, 0.96)] == [False, False, False, True]
    # a resumed run counts the epochs since its best one, as the uninterrupted run would have (NaN never improves)
    resumed = EarlyStop(2, [{"val_loss": 0.9}, {"val_loss": float("nan")}])
    assert resumed.best == 0.9 and resumed.bad == 1 and resumed.update(0.95) is True
    uninterrupted = EarlyStop(2)
    assert [uninterrupted.update(v) for v in (0.9, float("nan"), 0.95)] == [False, False, True]
    assert EarlyStop(None).update(5.0) is False
    by_eer = EarlyStop(1, [{"val_loss": 0.5, "val_eer": 0.2}], metric="val_eer")
    assert by_eer.best == 0.2 and by_eer.update(0.1) is False and by_eer.update(0.3) is True


def test_class_weights_give_each_class_equal_total_weight():
    from helpers.models.training import class_weights

    y = torch.tensor([0] * 3 + [1] * 97)
    w = class_weights(y)
    assert w[0] * 3 == pytest.approx(w[1] * 97) and (w[0] * 3 + w[1] * 97) == pytest.approx(100)
    assert torch.equal(class_weights(torch.tensor([1, 1, 1, 1])), torch.tensor([0.0, 0.5]))
    # the weighted loss of a constant "always spoof" predictor is the same as of "always bonafide" at any mix
    logits_spoof, logits_bona = torch.tensor([[0.0, 2.0]]).repeat(100, 1), torch.tensor([[2.0, 0.0]]).repeat(100, 1)
    import torch.nn.functional as F
    assert F.cross_entropy(logits_spoof, y, weight=w).item() == pytest.approx(F.cross_entropy(logits_bona, y, weight=w).item())
    assert F.cross_entropy(logits_spoof, y).item() < F.cross_entropy(logits_bona, y).item() - 1.0   # unweighted: not


def test_balanced_training_weights_the_minority_class(tmp_path):
    x, y = _toy(64)
    y = (torch.arange(64) >= 8).long()                 # 8 bonafide, 56 spoof
    x[y == 1, 0] = (x[y == 1, 0] + 0.5).clamp(0, 1)
    seen = []
    import helpers.models.training as T
    real = T.F.cross_entropy

    def spy(logits, target, weight=None, **kw):
        seen.append(weight)
        return real(logits, target, weight=weight, **kw)
    T.F.cross_entropy = spy
    try:
        train("resnet18", 3, (x, y), (x, y), TrainConfig(epochs=1, batch_size=16, balance="weighted"), None, progress=False)
    finally:
        T.F.cross_entropy = real
    w = next(s for s in seen if s is not None)
    assert w.tolist() == pytest.approx([64 / 16, 64 / 112])
    with pytest.raises(ValueError, match="balance='sampler'"):
        train("resnet18", 3, (x, y), (x, y), TrainConfig(epochs=1, balance="sampler"), None, progress=False)


def test_select_val_eer_keeps_the_best_epoch_and_survives_resume(tmp_path):
    x, y = _toy(48, seed=4)
    xv, yv = _toy(32, seed=5)
    cfg = TrainConfig(epochs=4, batch_size=16, lr=0.05, seed=3, select="val_eer", augment="noise+gain")
    res = train("resnet18", 3, (x, y), (xv, yv), cfg, tmp_path / "s.safetensors", progress=False)
    eers = [h["val_eer"] for h in res.history]
    best = min(range(len(eers)), key=lambda i: (eers[i], -i))   # ties: the latest epoch
    assert res.selected_epoch == best + 1
    from helpers.evaluation.metrics import bonafide_score, eer
    assert eer(yv, bonafide_score(predict(res.model, xv))) == pytest.approx(eers[best], abs=1e-6)
    again = train("resnet18", 3, (x, y), (xv, yv), cfg, tmp_path / "s.safetensors", progress=False)
    assert again.reused and again.selected_epoch == res.selected_epoch
    assert torch.allclose(predict(again.model, xv), predict(res.model, xv), atol=1e-6)

    class Interrupt(Exception):
        pass

    def die(epoch, row):
        if epoch == 2:
            raise Interrupt
    with pytest.raises(Interrupt):
        train("resnet18", 3, (x, y), (xv, yv), cfg, tmp_path / "cut.safetensors", progress=False, on_epoch=die)
    resumed = train("resnet18", 3, (x, y), (xv, yv), cfg, tmp_path / "cut.safetensors", progress=False)
    assert resumed.selected_epoch == res.selected_epoch
    assert torch.allclose(predict(resumed.model, xv), predict(res.model, xv), atol=1e-4)


def test_transform_hook_sees_every_training_batch_with_a_seeded_generator():
    x, y = _toy(40)
    calls = []

    def hook(xb, g):
        calls.append((xb.shape, torch.rand(1, generator=g).item()))
        return torch.zeros_like(xb)                   # the model only ever sees blank training images
    cfg = TrainConfig(epochs=2, batch_size=16, seed=7)
    res = train("resnet18", 3, (x, y), (x, y), cfg, None, progress=False, transform=hook)
    assert [c[0][0] for c in calls] == [16, 16, 8] * 2
    first = [c[1] for c in calls]
    calls.clear()
    train("resnet18", 3, (x, y), (x, y), cfg, None, progress=False, transform=hook)
    assert [c[1] for c in calls] == first and len(set(first)) == len(first)   # seeded, a fresh draw per batch
    assert res.history[-1]["train_accuracy"] <= 0.75   # blank images: no better than the class prior allows


@pytest.mark.parametrize("arch", ["resnet18", "resnet50"])
def test_imagenet_stem_sizes_a_high_resolution_image_like_the_cifar_stem_a_32x32_one(arch):
    from helpers.data.features import FeatureConfig

    fc = FeatureConfig(name="lfcc")
    m = build_model(arch, fc.channels, seed=0, stem=fc.stem).eval()
    assert m.net.conv1.kernel_size == (7, 7) and m.net.conv1.stride == (2, 2) and not isinstance(m.net.maxpool, torch.nn.Identity)
    x = torch.rand(2, *fc.shape)
    assert m(x).shape == (2, 2) and torch.isfinite(m(x)).all()
    stem_out = m.net.maxpool(m.net.relu(m.net.bn1(m.net.conv1(m.normalize(x)))))
    assert stem_out.shape == (2, 64, 15, 76)            # 60 x 301 -> 15 x 76: about the 32 x 32 of the CIFAR stem
    with pytest.raises(ValueError, match="unknown stem"):
        build_model(arch, 1, stem="vgg")


def test_training_builds_the_stem_the_feature_asks_for(tmp_path):
    from helpers.data.features import FeatureConfig

    fc = FeatureConfig(name="lfcc")
    g = torch.Generator().manual_seed(0)
    x, y = torch.rand(8, *fc.shape, generator=g), torch.arange(8) % 2
    res = train("resnet18", 1, (x, y), (x, y), TrainConfig(epochs=1, batch_size=8), tmp_path / "l.safetensors",
                {"features": "lfcc"}, progress=False)
    assert res.model.stem == "imagenet"
    with pytest.raises(CheckpointMismatchError, match="stem"):
        load_checkpoint(tmp_path / "l.safetensors", build_model("resnet18", 1), expect={"stem": "cifar"})


def test_fit_summary_reports_the_fit_and_the_selected_epoch():
    from helpers.models.training import fit_summary

    hist = [{"epoch": 1, "train_accuracy": 0.7, "val_eer": 0.3}, {"epoch": 2, "train_accuracy": 0.9, "val_eer": 0.1},
            {"epoch": 3, "train_accuracy": 0.97, "val_eer": float("nan")}, {"epoch": 4, "train_accuracy": 0.96, "val_eer": 0.2}]
    s = fit_summary(hist, "val_eer")
    assert s["fits"] and s["final_train_accuracy"] == 0.96 and s["best_val_eer"] == 0.1
    assert s["best_epoch"] == 2 and s["model_epoch"] == 2 and fit_summary(hist)["model_epoch"] == 4
    assert not fit_summary(hist[:2])["fits"] and fit_summary([])["epochs"] == 0


def test_best_epoch_takes_the_latest_of_equal_validation_eers():
    from helpers.models.training import best_epoch, fit_summary
    h = [{"epoch": 1, "val_eer": 0.2}, {"epoch": 2, "val_eer": 0.1}, {"epoch": 3, "val_eer": float("nan")},
         {"epoch": 4, "val_eer": 0.1}, {"epoch": 5, "val_eer": 0.15}]
    assert best_epoch(h) == 4
    assert best_epoch(h[:2]) == 2
    assert best_epoch([{"epoch": 1, "val_eer": float("nan")}]) is None
    assert fit_summary([{**r, "train_accuracy": 0.9} for r in h], select="val_eer")["model_epoch"] == 4
