"""helpers.distributed.ddp: 2 gloo processes on the CPU give the single-process results.

One module-scoped run of 2 processes (``torch.multiprocessing.spawn``) does the Pixle loop's chunks,
gather, sharded features and DDP training and leaves its results in files; the tests compare
them with the same stages run here in one process. Two ``torchrun`` runs of the CLI test a
killed rank and the resume that follows.
"""

from __future__ import annotations

import dataclasses
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import soundfile as sf
import torch
import torch.multiprocessing as mp
from safetensors.torch import load_file, save_file
from torch import nn

from helpers.attacks.pixle import Pixle
from helpers.distributed.ddp import (DistEnv, ddp_train, gather_in_order, init_from_env, rank_chunks, shard_indices,
                                     sharded_attack, sharded_features)
from helpers.evaluation.attack_loop import AttackConfig, AttackJob, attack_dataset, chunk_count, chunk_ranges
from helpers.data.features import FeatureConfig, compute_features, load_features, save_features
from helpers.paths import ROOT
from helpers.models.training import TrainConfig, data_hash, pixle_generator, read_checkpoint_meta, train
from tests.conftest import speechlike
from tests.toys import RegionModel, region_images, save_toy_features

WORLD = 2
PIXLE_SEED, SHARD = 5, 5
ATTACK = AttackConfig(restarts=3, max_iterations=6, y_dimensions=(2, 6), seed=PIXLE_SEED)
TRAIN = TrainConfig(epochs=1, batch_size=8, lr=0.05, momentum=0.9, seed=7)
# training.train's recipe through the shared step: class-weighted loss, augmentation, adversarial examples
RECIPE = dataclasses.replace(TRAIN, balance="weighted", augment="shift+noise")
AT_ATTACK = {"x_dimensions": (0.1, 0.2), "y_dimensions": (2, 4), "restarts": 1, "max_iterations": 3}
# 2 processes vs 1 after one epoch (45 items, batch 8: splits 4/4 and a last batch of 5 split 3/2),
# max |weight difference|. Without BatchNorm only float rounding separates them (measured 3e-8).
TOL_NO_BN = 1e-6
# With per-rank BatchNorm each rank normalises with its half batch's statistics: a real difference,
# measured 4.3e-3 after one epoch here; bounded loosely to show it stays small, not as a guarantee.
TOL_BN = 0.05
FEATURE_CFG = FeatureConfig()


class TinyNet(nn.Module):
    """A 3x8x8 -> 2 classifier: conv, (BatchNorm,) ReLU, pool, linear."""

    def __init__(self, bn: bool = False):
        super().__init__()
        torch.manual_seed(11)
        self.conv = nn.Conv2d(3, 6, 3, padding=1)
        self.bn = nn.BatchNorm2d(6) if bn else nn.Identity()
        self.head = nn.Linear(6, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.relu(self.bn(self.conv(x))).mean((2, 3)))


def _train_data() -> tuple[tuple[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(3)
    x = torch.rand(45, 3, 8, 8, generator=g)
    y = (x[:, 0].mean((1, 2)) > 0.5).long()
    return (x, y), (x[:9], y[:9])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wavs(folder: Path, write: bool) -> tuple[list[str], list[int], list[str]]:
    """Five short clips (odd, so the ranks get 3 and 2), one at 8 kHz (resampled: a conversion)."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = [str(folder / f"clip{i}.wav") for i in range(5)]
    if write:
        for i, p in enumerate(paths):
            sr = 8000 if i == 3 else 16000
            sf.write(p, speechlike(0.6 + 0.1 * i, sr, 110 + 15 * i, seed=i), sr, subtype="PCM_16")
    return paths, [i % 2 for i in range(5)], [f"T{i}" for i in range(5)]


def _worker(rank: int, port: int, out: str) -> None:
    os.environ.update({"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), "RANK": str(rank),
                       "WORLD_SIZE": str(WORLD), "LOCAL_RANK": str(rank), "LOCAL_WORLD_SIZE": str(WORLD)})
    torch.set_num_threads(1)
    out_dir = Path(out)
    env = init_from_env("cpu")
    try:
        # gather: 7 items over 2 ranks (4 + 3), floats and bools
        n = 7
        idx = shard_indices(n, env.rank, env.world_size)
        g_float = gather_in_order(idx.float() * 10, n, env)
        g_bool = gather_in_order(idx % 3 == 0, n, env)
        # Pixle
        x, y = region_images(24, seed=1, size=16)
        computed = [0]
        px = sharded_attack(AttackJob(RegionModel(), x, y, ATTACK, out_dir / "px", SHARD), env, progress=False,
                            on_chunk=lambda a, b: computed.__setitem__(0, computed[0] + 1))
        # features
        paths, labels, trials = _wavs(out_dir / "wav", write=env.is_main)
        env.barrier()
        sharded_features(paths, labels, trials, FEATURE_CFG, out_dir / "feat2.safetensors", env)
        # DDP training: no BatchNorm (tight) and per-rank BatchNorm (measured), one checkpoint
        tr, va = _train_data()
        plain = ddp_train("tiny", 3, tr, va, TRAIN, env, init=TinyNet(), progress=False,
                          checkpoint=out_dir / "ddp.safetensors")
        bn = ddp_train("tiny-bn", 3, tr, va, TRAIN, env, init=TinyNet(bn=True), progress=False)
        recipe = ddp_train("tiny-recipe", 3, tr, va, RECIPE, env, init=TinyNet(), progress=False,
                           adv=pixle_generator(AT_ATTACK, seed=7))
        if env.is_main:
            save_file({"g_float": g_float, "g_bool": g_bool, "computed": torch.tensor(computed[0]),
                       **{f"px.{k}": getattr(px, k) for k in ("adv", "success", "queries", "l0")},
                       **{f"plain.{k}": v.contiguous() for k, v in plain.model.state_dict().items()},
                       **{f"bn.{k}": v.contiguous() for k, v in bn.model.state_dict().items()},
                       **{f"recipe.{k}": v.contiguous() for k, v in recipe.model.state_dict().items()}},
                      str(out_dir / "rank0.safetensors"),
                      metadata={"plain_history": json.dumps(plain.history), "bn_history": json.dumps(bn.history)})
    finally:
        env.close()


@pytest.fixture(scope="module")
def two_procs(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    mp.spawn(_worker, args=(_free_port(), str(out)), nprocs=WORLD, join=True)
    return out


# --------------------------------------------------------------------------- unit

def test_shard_indices_disjoint_covering_unpadded():
    for n in (0, 1, 5, 7, 64, 101):
        for world in (1, 2, 3, 8):
            parts = [shard_indices(n, r, world) for r in range(world)]
            allv = torch.cat(parts)
            assert len(allv) == n                            # no padding: every item exactly once
            assert sorted(allv.tolist()) == list(range(n))
            assert all(len(p) in (n // world, -(-n // world)) for p in parts)
            assert all((p % world == r).all() for r, p in enumerate(parts))
    env = lambda r, w: DistEnv(rank=r, world_size=w)  # noqa: E731
    assert [list(rank_chunks(11, 4, env(r, 2))) for r in (0, 1)] == [[0, 2], [1]]    # chunks 0-4, 4-8, 8-11
    assert [list(rank_chunks(5, 4, env(r, 3))) for r in (0, 1, 2)] == [[0], [1], []]
    with pytest.raises(ValueError):
        shard_indices(5, 2, 2)


def test_single_process_env_is_a_no_op(tmp_path, monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    env = init_from_env("cpu")
    assert (env.rank, env.world_size, env.backend, env.distributed, env.is_main) == (0, 1, None, False, True)
    env.barrier()
    t = torch.arange(5.0)
    assert torch.equal(gather_in_order(t, 5, env), t)


# --------------------------------------------------------------------------- 2 processes vs 1

def test_gather_in_order(two_procs):
    res = load_file(str(two_procs / "rank0.safetensors"))
    assert torch.equal(res["g_float"], torch.arange(7.0) * 10)
    assert res["g_bool"].dtype == torch.bool
    assert res["g_bool"].tolist() == [i % 3 == 0 for i in range(7)]


def test_sharded_pixle_two_processes_bit_identical(two_procs, tmp_path):
    """The one attack loop with its chunks dealt to 2 ranks gives one process's results, bit for bit."""
    res = load_file(str(two_procs / "rank0.safetensors"))
    x, y = region_images(24, seed=1, size=16)
    # the whole set in one batch, one process
    ref = Pixle(RegionModel(), seed=PIXLE_SEED, skip_misclassified=True, **ATTACK.kwargs())(x, y, ids=torch.arange(24))
    # and the same cached loop in one process
    one = attack_dataset(RegionModel(), x, y, ATTACK, tmp_path / "px1", SHARD, progress=False)
    assert int(res["computed"]) == 3                         # rank 0 attacked chunks 0, 2, 4 of 5
    for r in (ref, one):
        assert torch.equal(res["px.adv"], r.adv)
        assert torch.equal(res["px.success"], r.success)
        assert torch.equal(res["px.queries"], r.queries)
        assert torch.equal(res["px.l0"], r.l0)
    assert 0 < int(ref.success.sum()) < 24          # the attack did something, and not everything
    pred = RegionModel()(res["px.adv"]).argmax(1)
    assert torch.equal(pred != y, ref.success)       # so predictions and metrics agree too
    # the loop's chunk files: one per chunk of the grid, named by item range
    got = [(a, b) for a, b, _ in chunk_ranges(two_procs / "px")]
    assert got == [(s, min(s + SHARD, 24)) for s in range(0, 24, SHARD)] and len(got) == chunk_count(24, SHARD)


def test_sharded_features_identical_tensors(two_procs, tmp_path):
    paths, labels, trials = _wavs(two_procs / "wav", write=False)
    ref_path = tmp_path / "feat1.safetensors"
    save_features(ref_path, compute_features(paths, labels, trials, FEATURE_CFG))
    ref, got = load_features(ref_path), load_features(two_procs / "feat2.safetensors")
    assert got.x.shape == (5, *FEATURE_CFG.shape)
    assert torch.equal(got.x, ref.x)
    assert torch.equal(got.y, ref.y)
    assert got.trials == ref.trials == trials
    assert got.conversions == ref.conversions and len(ref.conversions) == 1
    assert set(load_file(str(ref_path))) == set(load_file(str(two_procs / "feat2.safetensors")))
    assert not list(two_procs.glob(".feat2.parts-*"))    # part files merged and removed


def _max_diff(res: dict, prefix: str, model: nn.Module) -> float:
    state = model.state_dict()
    got = {k[len(prefix) + 1:]: v for k, v in res.items() if k.startswith(prefix + ".")}
    assert set(got) == set(state)
    for k, v in state.items():
        assert got[k].shape == v.shape, k
    return max(float((got[k].float() - v.float()).abs().max()) for k, v in state.items())


def test_ddp_matches_single_process_training(two_procs):
    res = load_file(str(two_procs / "rank0.safetensors"))
    tr, va = _train_data()
    init = TinyNet()
    one = train("tiny", 3, tr, va, TRAIN, init=init, progress=False)
    moved = max(float((a - b).abs().max()) for a, b in zip(one.model.state_dict().values(),
                                                          init.state_dict().values()))
    diff = _max_diff(res, "plain", one.model)
    print(f"\nDDP (2 gloo processes) vs 1 process, no BatchNorm: max |dw| {diff:.2e} (weights moved {moved:.2e})")
    assert moved > 5e-3                      # training changed the weights, so agreement means something
    assert diff < TOL_NO_BN
    meta = read_checkpoint_meta(two_procs / "ddp.safetensors")
    assert meta["epoch"] == 1 and meta["complete"] and meta["distributed"]["world_size"] == 2
    one_bn = train("tiny-bn", 3, tr, va, TRAIN, init=TinyNet(bn=True), progress=False)
    diff_bn = _max_diff(res, "bn", one_bn.model)
    print(f"DDP vs 1 process, per-rank BatchNorm: max |dw| {diff_bn:.2e} (tolerance {TOL_BN})")
    assert 0 < diff_bn < TOL_BN              # half-batch statistics: different, but close


def test_ddp_runs_the_training_recipe_of_one_process(two_procs):
    """Class weights, augmentation and adversarial examples: the same step as training.train, so 2 processes
    give one process's weights (no BatchNorm: up to float rounding)."""
    res = load_file(str(two_procs / "rank0.safetensors"))
    tr, va = _train_data()
    one = train("tiny-recipe", 3, tr, va, RECIPE, init=TinyNet(), adv=pixle_generator(AT_ATTACK, seed=7), progress=False)
    plain = train("tiny", 3, tr, va, TRAIN, init=TinyNet(), progress=False)
    differs = max(float((a - b).abs().max()) for a, b in zip(one.model.state_dict().values(),
                                                            plain.model.state_dict().values()))
    assert differs > 1e-3                    # the recipe changed the result, so agreement means something
    assert _max_diff(res, "recipe", one.model) < TOL_NO_BN


def test_ddp_refuses_a_recipe_step_it_lacks(monkeypatch):
    import helpers.distributed.ddp as ddp_mod
    monkeypatch.setattr(ddp_mod, "DDP_FIELDS", ddp_mod.DDP_FIELDS - {"augment"})
    with pytest.raises(NotImplementedError, match="TrainConfig.augment='noise'"):
        ddp_train("tiny", 3, *_train_data(), dataclasses.replace(TRAIN, augment="noise"), DistEnv(), init=TinyNet(),
                  progress=False)


def test_ddp_keeps_the_best_validation_epoch_as_one_process_does(tmp_path):
    """select="val_eer" (the demo's recipe) in the DDP loop: the same selected epoch and weights as training.train,
    and a finished checkpoint reused with its selected epoch and weights, without building an optimizer."""
    cfg = dataclasses.replace(TRAIN, epochs=4, select="val_eer")
    tr, va = _train_data()
    one = train("tiny", 3, tr, va, cfg, init=TinyNet(), progress=False)
    ddp = ddp_train("tiny", 3, tr, va, cfg, DistEnv(), init=TinyNet(), checkpoint=tmp_path / "d.safetensors",
                    progress=False)
    assert one.selected_epoch is not None and ddp.selected_epoch == one.selected_epoch
    assert [h["val_eer"] for h in ddp.history] == pytest.approx([h["val_eer"] for h in one.history], abs=1e-6)
    for a, b in zip(one.model.state_dict().values(), ddp.model.state_dict().values()):
        assert torch.allclose(a.float(), b.float(), atol=1e-6)
    with pytest.MonkeyPatch.context() as mp_:   # a finished run is reused without an optimizer (torch._dynamo)
        mp_.setattr(torch.optim, "SGD", None)
        again = ddp_train("tiny", 3, tr, va, cfg, DistEnv(), init=TinyNet(), checkpoint=tmp_path / "d.safetensors",
                          progress=False)
    assert again.reused and again.selected_epoch == one.selected_epoch and again.history == ddp.history
    for a, b in zip(again.model.state_dict().values(), ddp.model.state_dict().values()):
        assert torch.equal(a, b)


# --------------------------------------------------------------------------- torchrun: kill and resume

def _torchrun(args: list[str], timeout: float = 120) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={WORLD}",
           "-m", "helpers.distributed.ddp", *args]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout, env=env)


def test_killed_rank_resumes_only_missing_chunks(tmp_path):
    feats = save_toy_features(tmp_path / "toy.safetensors", 40, size=16, seed=0)
    common = ["pixle", "--model", "tests.toys:RegionModel", "--features", str(feats), "--restarts", "2", "--iterations", "5",
              "--shard-size", "4", "--cache-dir", str(tmp_path / "px"), "--quiet", "--seed", "0", "--threads", "1"]
    killed = _torchrun([*common, "--exit-after-shards", "1", "--exit-rank", "1"])
    assert killed.returncode != 0, killed.stdout + killed.stderr
    assert "exiting on purpose" in killed.stdout + killed.stderr
    folder = next((tmp_path / "px" / "adv").glob("*"))
    before = {p.name: p.stat().st_mtime_ns for p in folder.glob("chunk_*.safetensors")}
    total = chunk_count(40, 4)
    assert "chunk_000004_000008.safetensors" in before          # rank 1's first chunk was kept
    assert "chunk_000012_000016.safetensors" not in before      # its second never written
    resumed = _torchrun([*common, "--json", str(tmp_path / "summary.json")])
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["computed_chunks"] == total - len(before)
    assert summary["reused_chunks"] == len(before)
    after = {p.name: p.stat().st_mtime_ns for p in folder.glob("chunk_*.safetensors")}
    assert len(after) == total
    assert all(after[k] == v for k, v in before.items())          # kept chunks were not rewritten
    # identical to an uninterrupted single-process attack of the whole set
    x, y = region_images(40, seed=0, size=16)
    ref = Pixle(RegionModel(), seed=0, skip_misclassified=True, x_dimensions=(0.1, 0.2), y_dimensions=(2, 10),
                restarts=2, max_iterations=5)(x, y, ids=torch.arange(40))
    assert summary["adv_sha"] == data_hash(ref.adv, ref.success, ref.queries, ref.l0)
    assert summary["success_rate"] == pytest.approx(float(ref.success.float().mean()))
