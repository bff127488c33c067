"""Interruption and caching: a SIGKILLed run resumes to the same result; keys follow parameters."""

import os
import signal
import subprocess
import sys
import textwrap

import torch
from safetensors.torch import load_file

from helpers.evaluation.attack_loop import AttackConfig, attack_cache_dir, attack_dataset, load_attack
from helpers.paths import ROOT
from tests.conftest import RegionModel, region_images

TRAIN_SCRIPT = textwrap.dedent("""
    import sys, time, torch
    from helpers.models.training import TrainConfig, train
    g = torch.Generator().manual_seed(0)
    x = torch.rand(48, 3, 16, 16, generator=g); y = torch.arange(48) % 2; x[y == 1, 0] = x[y == 1, 0] * 0.5 + 0.5
    slow = sys.argv[2] == "slow"
    def on_epoch(e, row):
        print("epoch", e, flush=True)
        if slow: time.sleep(30)
    train("resnet18", 3, (x, y), (x, y), TrainConfig(epochs=3, batch_size=16, lr=0.01, seed=5), sys.argv[1],
          progress=False, on_epoch=on_epoch)
""")


def _run_train(ckpt, mode):
    return subprocess.Popen([sys.executable, "-c", TRAIN_SCRIPT, str(ckpt), mode], cwd=ROOT,
                            stdout=subprocess.PIPE, text=True)


def test_sigkill_during_training_then_resume_gives_the_same_weights(tmp_path):
    ref = tmp_path / "ref.safetensors"
    assert _run_train(ref, "fast").wait(timeout=300) == 0
    cut = tmp_path / "cut.safetensors"
    p = _run_train(cut, "slow")
    line = p.stdout.readline()                  # the first epoch's checkpoint is on disk ...
    assert line.startswith("epoch 1")
    os.kill(p.pid, signal.SIGKILL)              # ... and the run dies hard
    p.wait()
    assert not any(f.name.endswith(".tmp") for f in tmp_path.iterdir())   # no half-written file left behind
    assert _run_train(cut, "fast").wait(timeout=300) == 0
    a, b = load_file(str(ref)), load_file(str(cut))
    for k in a:
        if k.startswith("model.") and a[k].is_floating_point():
            assert torch.allclose(a[k], b[k], atol=1e-5), k


def test_interrupted_attack_resumes_from_finished_chunks(tmp_path):
    model = RegionModel()
    x, y = region_images(12)
    cfg = AttackConfig(restarts=2, max_iterations=5, x_dimensions=(0.1, 0.2), y_dimensions=(2, 10), seed=1)
    full = attack_dataset(model, x, y, cfg, tmp_path / "full", batch_size=4, progress=False)
    folder = tmp_path / "cut"
    attack_dataset(model, x[:8], y[:8], cfg, folder, batch_size=4, progress=False)    # "killed" after 2 chunks
    calls_before = model.calls
    resumed = attack_dataset(model, x, y, cfg, folder, batch_size=4, progress=False)
    assert torch.equal(resumed.adv, full.adv) and torch.equal(resumed.queries, full.queries)
    assert model.calls - calls_before < full.queries.sum()       # only the missing chunk was attacked
    again = attack_dataset(model, x, y, cfg, folder, batch_size=4, progress=False)
    assert again.from_cache
    loaded = load_attack(folder)                                  # what later notebooks read
    assert torch.equal(loaded.adv, full.adv) and torch.equal(loaded.success, full.success)


def test_cache_keys_follow_only_the_parameters_that_matter(tmp_path):
    base = AttackConfig(restarts=2, max_iterations=5)
    same = attack_cache_dir(tmp_path, "m", AttackConfig(restarts=2, max_iterations=5, target_batch=7, block=3), "none", "d")
    assert same == attack_cache_dir(tmp_path, "m", base, "none", "d")            # speed knobs do not change results
    assert attack_cache_dir(tmp_path, "m", AttackConfig(restarts=3, max_iterations=5), "none", "d") != same
    assert attack_cache_dir(tmp_path, "m", base, "blur", "d") != same
    assert attack_cache_dir(tmp_path, "m", base, "none", "other-data") != same


def test_no_pickle_loading_anywhere():
    """Weights and caches are safetensors only: no torch.load / pickle in the package."""
    for f in (ROOT / "helpers").glob("*.py"):
        text = f.read_text()
        assert "torch.load(" not in text and "import pickle" not in text and "shell=True" not in text, f.name
