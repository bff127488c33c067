import torch
import torchvision.transforms.functional as TF

from helpers.attacks.pixle import Pixle
from helpers.defenses.smoothing import Defended, GaussianBlur, MedianFilter, gaussian_blur


def test_blur_matches_torchvision_per_sigma():
    x = torch.rand(3, 3, 32, 32)
    for s in (0.1, 1.3, 5.0):
        assert torch.allclose(gaussian_blur(x, s), TF.gaussian_blur(x, [5, 5], [s, s]), atol=1e-5)
    sig = torch.tensor([0.3, 2.0, 4.5])
    ref = torch.stack([TF.gaussian_blur(x[i:i + 1], [5, 5], [float(sig[i])] * 2)[0] for i in range(3)])
    assert torch.allclose(gaussian_blur(x, sig), ref, atol=1e-5)


def test_blur_shape_range_and_seeded_determinism():
    x = torch.rand(8, 3, 32, 32)
    a, b = GaussianBlur(seed=3)(x), GaussianBlur(seed=3)(x)
    c = GaussianBlur(seed=4)(x)
    assert a.shape == x.shape and a.min() >= 0 and a.max() <= 1
    assert torch.equal(a, b) and not torch.equal(a, c)
    # per batch: one sigma for all images; per image: one each
    assert GaussianBlur(seed=0, per="batch").draw(5).unique().numel() == 1
    s = GaussianBlur(seed=0, per="image").draw(5)
    assert s.unique().numel() == 5 and (s >= 0.1).all() and (s <= 5.0).all()


def test_median_filter_removes_salt():
    x = torch.zeros(1, 1, 9, 9)
    x[0, 0, 4, 4] = 1.0
    assert MedianFilter(3)(x).abs().max() == 0


def test_adaptive_attack_queries_the_preprocessing(region_model):
    from tests.conftest import region_images

    x, y = region_images(6)
    blur = GaussianBlur(seed=0)
    defended = Defended(region_model, blur)
    Pixle(defended, restarts=1, max_iterations=4, seed=0)(x, y)
    assert blur.calls >= 2 and region_model.calls == blur.calls


def test_eot_averages_draws(region_model):
    blur = GaussianBlur(seed=0)
    d = Defended(region_model, blur, eot=4)
    out = d(torch.rand(2, 3, 32, 32))
    assert blur.calls == 4 and out.shape == (2, 2)
    assert torch.allclose(out.exp().sum(1), torch.ones(2), atol=1e-5)
