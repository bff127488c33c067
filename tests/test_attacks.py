import pytest
import torch

from helpers.attacks.base import counter_uniform
from helpers.attacks.pixle import MAPPINGS, Pixle
from tests.conftest import ChangeDetector, RegionModel, region_images


def _attack(model, **kw):
    args = dict(x_dimensions=(0.1, 0.2), y_dimensions=(2, 10), restarts=3, max_iterations=8, seed=7)
    args.update(kw)
    return Pixle(model, **args)


def test_counter_uniform_range_and_independence():
    c = torch.arange(100_000)
    u = counter_uniform(1, c)
    assert u.min() >= 0 and u.max() < 1
    assert abs(u.mean().item() - 0.5) < 0.01
    assert torch.equal(counter_uniform(1, c[500:600]), u[500:600])      # depends on the counter only
    assert not torch.equal(counter_uniform(2, c[:100]), u[:100])


@pytest.mark.parametrize("mapping", MAPPINGS)
def test_pixels_are_moved_not_invented(mapping):
    model = RegionModel()
    x, y = region_images(6)
    res = _attack(model, pixel_mapping=mapping)(x, y)
    assert res.adv.shape == x.shape
    assert res.adv.min() >= 0 and res.adv.max() <= 1
    for i in range(len(x)):
        changed = (res.adv[i] != x[i]).any(0)
        assert int(changed.sum()) == int(res.l0[i])
        orig_pixels = x[i].flatten(1).T                              # (HW, C)
        for px in res.adv[i][:, changed].T:                          # each changed pixel's value ...
            assert (orig_pixels == px).all(1).any()                  # ... is some pixel of the original


def test_early_exit_at_first_success():
    x0, _ = region_images(1)
    x = x0.repeat(4, 1, 1, 1)
    res = _attack(ChangeDetector(x0), restarts=5, max_iterations=10)(x, torch.zeros(4, dtype=torch.long))
    assert res.success.all()
    assert res.queries.tolist() == [2, 2, 2, 2]       # the clean image + the first candidate


def test_determinism_batching_and_block_size_do_not_change_results(region_model):
    x, y = region_images(10)
    a = _attack(region_model)(x, y)
    b = _attack(region_model)(x, y)
    assert torch.equal(a.adv, b.adv) and torch.equal(a.queries, b.queries)
    c = _attack(region_model, block=3)(x, y)
    assert torch.equal(a.adv, c.adv) and torch.equal(a.success, c.success)
    for i in (0, 4, 9):   # one image at a time, identified by its id
        s = _attack(region_model)(x[i:i + 1], y[i:i + 1], ids=torch.tensor([i]))
        assert torch.equal(s.adv[0], a.adv[i]) and int(s.queries[0]) == int(a.queries[i])
    d = _attack(region_model, seed=8)(x, y)
    assert not torch.equal(a.adv, d.adv)


def test_gpu_settings_run_on_cpu_amp_is_live_and_a_large_batch_changes_nothing():
    """The thesis profile's GPU settings (4096 candidates per forward, bfloat16) on this CPU."""
    from helpers.models.detectors import build_model
    model = build_model("resnet18", 3, seed=0).eval()
    seen = []
    model.net.conv1.register_forward_hook(lambda m, i, o: seen.append(o.dtype))
    x = torch.rand(3, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    y = model(x).argmax(1)
    small = _attack(model, restarts=1, max_iterations=4, target_batch=64)(x, y)
    seen.clear()
    large = _attack(model, restarts=1, max_iterations=4, target_batch=4096)(x, y)
    assert set(seen) == {torch.float32}
    assert torch.equal(small.adv, large.adv) and torch.equal(small.queries, large.queries)
    seen.clear()
    amp = _attack(model, restarts=1, max_iterations=4, target_batch=4096, amp=True)(x, y)
    assert set(seen) == {torch.bfloat16}                       # the autocast path really ran
    assert amp.adv.shape == x.shape and amp.final_prob.dtype == torch.float32
    assert (amp.final_prob - large.final_prob).abs().max() < 0.05   # bfloat16 scores stay close


def test_iterative_mode_and_targeted(region_model):
    x, y = region_images(8)
    it = _attack(region_model, update_each_iteration=True, max_iterations=20)(x, y)
    assert it.queries.max() <= 21
    tgt = 1 - y
    t = _attack(region_model)(x, y, target_labels=tgt)
    pred = region_model(t.adv).argmax(1)
    assert torch.equal(pred[t.success], tgt[t.success])


def test_skip_misclassified_returns_input_unchanged(region_model):
    x, y = region_images(6)
    wrong = 1 - y
    res = _attack(region_model, skip_misclassified=True)(x, wrong)
    assert torch.equal(res.adv, x) and res.queries.tolist() == [1] * 6


def test_parity_with_torchattacks(region_model):
    """Same algorithm, different random streams: success rate and L0 agree within tolerance."""
    import torchattacks
    import numpy as np

    x, y = region_images(48, seed=3)
    np.random.seed(0)
    ref = torchattacks.Pixle(region_model, x_dimensions=(0.1, 0.2), restarts=3, max_iterations=10)
    adv_ref = ref(x, y)
    pred_ref = region_model(adv_ref).argmax(1)
    ours = Pixle(region_model, x_dimensions=(0.1, 0.2), restarts=3, max_iterations=10, seed=0)(x, y)
    pred_ours = region_model(ours.adv).argmax(1)
    sr_ref, sr_ours = (pred_ref != y).float().mean().item(), (pred_ours != y).float().mean().item()
    assert 0.2 < sr_ref < 1.0            # the toy problem is neither trivial nor impossible
    assert abs(sr_ref - sr_ours) <= 0.2
    l0_ref = (adv_ref != x).any(1).flatten(1).sum(1).float().mean().item()
    assert abs(l0_ref - ours.l0.float().mean().item()) <= 0.5 * l0_ref + 5
