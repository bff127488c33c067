import pytest
import torch

from helpers.models.augment import AUGMENTS, batch_generator, make_augment, parse_augment


def _batch(n=6, c=3, h=16, w=24):
    return torch.rand(n, c, h, w, generator=torch.Generator().manual_seed(0))


def test_parse_rejects_unknown_names_and_none_is_off():
    assert parse_augment("none") == () and make_augment("none") is None and make_augment(None) is None
    assert parse_augment("shift+noise") == ("shift", "noise")
    with pytest.raises(ValueError, match="unknown \\['blur'\\]"):
        parse_augment("shift+blur")


@pytest.mark.parametrize("name", AUGMENTS)
def test_each_augmentation_is_seeded_keeps_shape_and_range_and_changes_the_image(name):
    x = _batch()
    aug = make_augment(name)
    a, b = aug(x, batch_generator(1, 0, 0)), aug(x, batch_generator(1, 0, 0))
    c = aug(x, batch_generator(1, 0, 1))
    assert a.shape == x.shape and torch.equal(a, b) and not torch.equal(a, c)
    assert a.min() >= 0 and a.max() <= 1 and not torch.equal(a, x)


def test_shift_is_a_circular_time_roll_and_masks_cover_at_most_an_eighth():
    x = _batch(4, 1, 8, 32)
    out = make_augment("shift")(x, batch_generator(0, 0, 0))
    for i in range(4):   # each row is a rotation of the original row
        assert any(torch.equal(out[i], x[i].roll(k, -1)) for k in range(32))
    m = make_augment("freqmask")(x, batch_generator(0, 0, 0))
    changed_rows = (m != x).any(-1).sum((1, 2))
    assert (changed_rows <= 8 // 8).all()
    t = make_augment("timemask")(x, batch_generator(0, 0, 0))
    assert ((t != x).any(-2).sum((1, 2)) <= 32 // 8).all()


def test_composition_is_deterministic_and_labels_are_not_an_input():
    x = _batch()
    aug = make_augment("shift+freqmask+timemask+noise+gain")
    assert torch.equal(aug(x, batch_generator(5, 2, 3)), aug(x, batch_generator(5, 2, 3)))
    import inspect
    assert list(inspect.signature(aug).parameters) == ["x", "g"]
