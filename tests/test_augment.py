import pytest
import torch

from helpers.models.augment import AUGMENTS, batch_generator, make_augment, parse_augment


def _batch(n=6, c=3, h=16, w=24):
    return torch.rand(n, c, h, w, generator=torch.Generator().manual_seed(0))


def _lfcc_batch(n=4):
    """Real LFCC images (B, 1, 60, frames) of coloured noise, so the sigmoid is not saturated."""
    from helpers.data.features import FeatureConfig, lfcc

    g = torch.Generator().manual_seed(3)
    wav = torch.randn(n, 8000, generator=g).cumsum(-1) * 0.01 + torch.randn(n, 8000, generator=g) * 0.1
    return lfcc(wav, FeatureConfig(name="lfcc"))


def test_parse_rejects_unknown_names_and_none_is_off():
    assert parse_augment("none") == () and make_augment("none") is None and make_augment(None) is None
    assert parse_augment("shift+noise") == ("shift", "noise")
    with pytest.raises(ValueError, match="unknown \\['blur'\\]"):
        parse_augment("shift+blur")


@pytest.mark.parametrize("name", AUGMENTS)
def test_each_augmentation_is_seeded_keeps_shape_and_range_and_changes_the_image(name):
    x = _lfcc_batch() if name == "eq" else _batch()
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


def test_eq_is_a_channel_filter_a_constant_shift_of_the_log_filterbank_energies_and_no_change_of_the_deltas():
    from helpers.data.features import lfcc_db_from_image
    from helpers.models.augment import EQ_RIPPLE_DB, EQ_ROLLOFF_DB, channel_response_db

    x = _lfcc_batch()
    out = make_augment("eq")(x, batch_generator(2, 1, 0))
    change = lfcc_db_from_image(out) - lfcc_db_from_image(x)                  # (B, 20, frames), in dB
    assert torch.allclose(change, change[..., :1].expand_as(change), atol=2e-3)   # the same in every frame
    expected = channel_response_db(len(x), batch_generator(2, 1, 0))
    assert torch.allclose(change[..., 0], expected, atol=2e-3)              # the drawn response, filter by filter
    assert torch.allclose(out[:, 0, 20:], x[:, 0, 20:], atol=1e-4)          # a constant has no delta
    many = channel_response_db(2000, batch_generator(0, 0, 0))
    assert many[:, :8].abs().max() <= 3 * EQ_RIPPLE_DB + 1e-4               # below every cut-off: the ripple only
    top = many[:, -1]
    assert top.min() >= -EQ_ROLLOFF_DB[1] - 3 * EQ_RIPPLE_DB and top.mean() < -EQ_ROLLOFF_DB[1] / 2 + 2  # rolled off


def test_eq_refuses_an_image_that_is_not_lfcc_and_names_the_parameter():
    with pytest.raises(ValueError, match="FEATURES must be 'lfcc'"):
        make_augment("eq")(_batch(), batch_generator(0, 0, 0))


def test_eq_is_refused_on_training_images_of_another_front_end_even_of_lfcc_shape():
    x = _lfcc_batch()           # an lfcc_cmn image has this shape too: only the front end's name can refuse it
    with pytest.raises(ValueError, match="'eq' needs FEATURES 'lfcc'"):
        make_augment("shift+eq", features="lfcc_cmn")
    assert make_augment("eq", features="lfcc")(x, batch_generator(0, 0, 0)).shape == x.shape
    assert make_augment("shift", features="lfcc_cmn") is not None                 # other ops on any front end


def test_training_refuses_eq_on_lfcc_cmn_data_before_any_step(tmp_path):
    from helpers.models.training import TrainConfig, train

    x, y = _lfcc_batch(4), torch.tensor([0, 1, 0, 1])
    with pytest.raises(ValueError, match="FEATURES = 'lfcc_cmn' images"):
        train("resnet18", 1, (x, y), (x, y), TrainConfig(epochs=1, augment="eq"), checkpoint=tmp_path / "c.safetensors",
              meta={"features": "lfcc_cmn"}, progress=False)
    assert not (tmp_path / "c.safetensors").exists()


def test_eq_runs_first_so_a_mask_combined_with_it_survives_and_any_float_dtype_works():
    x = _lfcc_batch()
    both = make_augment("freqmask+eq")(x, batch_generator(4, 0, 0))
    g = batch_generator(4, 0, 0)                                            # eq, then the mask, on one generator
    assert torch.equal(both, make_augment("freqmask")(make_augment("eq")(x, g), g))
    constant_rows = (both[:, 0] == both[:, 0, :, :1]).all(-1)               # a masked row: the mean in every frame
    assert constant_rows.any(-1).sum() >= len(x) - 1                        # (a mask may be 0 rows wide)
    eq_only = make_augment("eq")(x, batch_generator(4, 0, 0))
    out64 = make_augment("eq")(x.double(), batch_generator(4, 0, 0))
    assert out64.dtype == torch.float64 and torch.allclose(out64.float(), eq_only, atol=1e-5)
