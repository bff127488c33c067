"""Certified robustness by randomized ablation and column and block smoothing (helpers.defenses.ablation):
hand-computed radii, the confidence bound against scipy, the patch certificates' condition, the ablation itself, seeded
determinism, and the guarantee on a toy model whose base classifier is the worst case for the bound."""

import math

import pytest
import torch
from scipy.stats import beta
from torch import nn

from helpers.defenses import ablation as A


# --------------------------------------------------------------------------- the radius formula

def test_delta_hand_computed():
    # d=1024, k=1: one kept pixel hits one of rho changed ones with probability rho/d
    assert A.ablation_delta(1024, 1, 10) == pytest.approx(10 / 1024)
    # d=1024, k=2, rho=1: 1 - C(1023,2)/C(1024,2) = 1 - 1022/1024 = 2/1024
    assert A.ablation_delta(1024, 2, 1) == pytest.approx(2 / 1024)
    # d=1024, k=45, rho=3: 1 - (979*978*977)/(1024*1023*1022) by hand
    assert A.ablation_delta(1024, 45, 3) == pytest.approx(1 - (979 * 978 * 977) / (1024 * 1023 * 1022))
    assert A.ablation_delta(1024, 45, 0) == 0.0
    assert A.ablation_delta(1024, 45, 1024 - 44) == 1.0     # every k-subset meets rho > d - k pixels


def test_radius_hand_computed():
    d, k = 1024, 45
    p = 0.9
    r = A.certified_radius(p, d, k)
    # the largest rho with p - Delta(rho) > 0.5, by brute force with math.comb
    brute = max(rho for rho in range(d) if p - (1 - math.comb(d - rho, k) / math.comb(d, k)) > 0.5)
    assert r == brute
    # by hand: Delta(rho) ~ 1 - (1 - k/d)^rho; p - 0.5 = 0.4 -> rho ~ ln(0.6) / ln(1 - 45/1024) ~ 11.4
    assert r == 11
    # k = 1: Delta = rho/d < p - 0.5 -> rho < 0.4 * 1024 = 409.6
    assert A.certified_radius(0.9, 1024, 1) == 409


def test_abstain_below_half():
    assert A.certified_radius(0.5, 1024, 45) == A.ABSTAIN
    assert A.certified_radius(0.3, 1024, 45) == A.ABSTAIN
    assert A.certified_radius(0.5001, 1024, 45) == 0     # certified for the clean input only


def test_larger_k_smaller_radius():
    radii = [A.certified_radius(0.95, 1024, k) for k in (5, 10, 20, 45, 100, 200)]
    assert all(a >= b for a, b in zip(radii, radii[1:])) and radii[0] > radii[-1]


def test_clopper_pearson_matches_scipy():
    for count, n in ((95, 100), (990, 1000), (1, 10), (50, 50)):
        assert A.clopper_pearson_lower(count, n, 0.05) == pytest.approx(beta.ppf(0.05, count, n - count + 1))
    assert A.clopper_pearson_lower(0, 100) == 0.0
    # all of 100 votes: the bound is alpha^(1/n)
    assert A.clopper_pearson_lower(100, 100, 0.05) == pytest.approx(0.05 ** (1 / 100))
    with pytest.raises(ValueError):
        A.clopper_pearson_lower(11, 10)


# --------------------------------------------------------------------------- the column certificate

def test_column_certificate_condition():
    delta = A.bands_per_patch(m=5, s=4, w=32)
    assert delta == 8
    counts = torch.tensor([[24, 8],    # 24 - 8 = 16 = 2*delta, top is class 0: ties favour it -> certified
                           [8, 24],    # top is class 1: needs 24 >= 8 + 1 + 16 -> fails by one
                           [7, 25],    # 25 >= 7 + 1 + 16 -> certified
                           [23, 9],    # 14 < 16 -> not certified
                           [16, 16]])  # tie: prediction 0, not certified
    pred, cert = A.column_certificate(counts, delta)
    assert pred.tolist() == [0, 1, 1, 0, 0]
    assert cert.tolist() == [True, False, True, False, False]
    assert A.bands_per_patch(40, 4, 32) == 32


def test_bands_touched():
    x = torch.zeros(2, 3, 8, 8)
    adv = x.clone()
    adv[0, :, 2, 3] = 1          # one column -> s bands contain it
    adv[1, 0, 0, 0] = 1          # columns 0 and 7: neighbours cyclically -> s + 1 bands
    adv[1, 0, 5, 7] = 1
    assert A.bands_touched(x, adv, s=3).tolist() == [3, 4]


def test_block_positions_and_delta_hand_computed():
    assert len(A.block_positions(4, 5, 2, 2)) == 20                  # a square: every (row, column) offset
    assert A.block_positions(4, 5, 4, 2) == [(0, c) for c in range(5)]   # spans the rows: a column band
    assert A.block_shape(32, 32, block=8) == (8, 8) and A.block_shape(32, 32, band=4) == (32, 4)
    with pytest.raises(ValueError):
        A.block_shape(32, 32, band=4, block=8)
    # Pixle's largest demo patch (10 rows x 6 columns) against 8x8 blocks: (10+8-1) x (6+8-1) of 1,024 positions
    assert A.blocks_per_patch((10, 6), (8, 8), (32, 32)) == 17 * 13
    assert A.blocks_per_patch((40, 6), (8, 8), (32, 32)) == 32 * 13      # capped by the positions along an axis
    # a column band is a block spanning every row: the 2-D count reduces to m + s - 1
    for m, s in ((5, 4), (1, 1), (40, 4)):
        assert A.blocks_per_patch((7, m), (32, s), (32, 32)) == A.bands_per_patch(m, s, 32)
    mask = A.block_mask(6, 6, 5, 4, 2, 3)                               # wraps around both edges
    assert mask.sum() == 6 and mask[5, 4] and mask[0, 0] and mask[5, 0] and not mask[5, 1] and not mask[1, 1]


def test_strided_block_count_is_the_most_any_patch_meets():
    """blocks_per_patch with a stride: brute force over every placement of the patch (cyclic) on a small image, the
    largest number of block positions it meets equals the formula."""
    h = w = 12
    for (bh, bw), stride, patch in (((3, 3), 2, (2, 2)), ((4, 4), 4, (3, 5)), ((5, 5), 3, (1, 1)), ((12, 2), 2, (4, 3))):
        masks = A.block_masks(h, w, bh, bw, stride=stride).flatten(1)
        worst = 0
        for top in range(h):
            for left in range(w):
                p = A.block_mask(h, w, top, left, *patch).flatten()
                worst = max(worst, int((masks & p).any(1).sum()))
        assert worst == A.blocks_per_patch(patch, (bh, bw), (h, w), stride), (bh, bw, stride, patch)
    assert len(A.block_positions(32, 32, 8, 8, stride=4)) == 64
    with pytest.raises(ValueError):
        A.block_positions(32, 32, 8, 8, stride=5)


def test_blocks_touched():
    x = torch.zeros(1, 3, 8, 8)
    adv = x.clone()
    adv[0, :, 2, 3] = 1          # one pixel -> b*b blocks contain it
    assert A.blocks_touched(x, adv, block=3).tolist() == [9]
    adv[0, 1, 2, 4] = 1          # its right neighbour -> 3 x 4 positions
    assert A.blocks_touched(x, adv, block=3).tolist() == [12]
    assert A.blocks_touched(x, adv, band=3).tolist() == A.bands_touched(x, adv, 3).tolist() == [4]


# --------------------------------------------------------------------------- the ablation

def test_ablation_keeps_exactly_k_and_marks_them():
    x = torch.rand(5, 3, 32, 32) * 0.9 + 0.1          # no real zeros
    out = A.ablate(x, k=45, seed=3)
    assert out.shape == (5, 4, 32, 32)
    mask = out[:, 3]
    assert mask.sum((1, 2)).tolist() == [45.0] * 5
    kept = mask.bool()
    assert torch.equal(out[:, :3][kept.unsqueeze(1).expand(-1, 3, -1, -1)], x[kept.unsqueeze(1).expand(-1, 3, -1, -1)])
    assert (out[:, :3][~kept.unsqueeze(1).expand(-1, 3, -1, -1)] == 0).all()
    assert not torch.equal(mask[0], mask[1])          # each image its own draw
    assert torch.equal(A.ablate(x, 45, seed=3), out)  # seeded


def test_training_transforms_keep_k_and_columns():
    x = torch.rand(4, 3, 16, 16)
    out = A.ablation_transform(10)(x, torch.Generator().manual_seed(0))
    assert out.shape == (4, 4, 16, 16) and out[:, 3].sum((1, 2)).tolist() == [10.0] * 4
    col = A.column_transform(3)(x, torch.Generator().manual_seed(0))
    kept_cols = col[:, 3].bool().all(1)              # (B, W): whole columns kept
    assert kept_cols.sum(1).tolist() == [3] * 4 and torch.equal(col[:, 3].bool().any(1), kept_cols)
    blk = A.block_transform(block=5)(x, torch.Generator().manual_seed(0))[:, 3].bool()
    assert blk.sum((1, 2)).tolist() == [25] * 4
    assert blk.any(2).sum(1).tolist() == [5] * 4 and blk.any(1).sum(1).tolist() == [5] * 4   # 5 rows x 5 columns
    assert A.block_transform(band=3)(x, torch.Generator().manual_seed(0)).equal(col)      # the same draw


# --------------------------------------------------------------------------- a toy model

class AnyBright(nn.Module):
    """Base classifier: class 1 iff any *kept* pixel has channel 0 above 0.5. On an all-zero image, ``rho``
    bright pixels move exactly ``Delta(rho)`` of the vote: the worst case Theorem 1 bounds, so the certificate
    is tight for it."""

    def __init__(self):
        super().__init__()
        self.dummy = nn.Parameter(torch.zeros(1))

    def forward(self, x):
        hit = ((x[:, 0] > 0.5) & (x[:, -1] > 0.5)).flatten(1).any(1).float()
        return torch.stack([1 - hit, hit], 1) * 10 + self.dummy


def test_seeded_smoothed_prediction_is_deterministic():
    model = AnyBright()
    x = torch.zeros(3, 3, 16, 16)
    x[1, 0, :4] = 1
    a = A.ablation_votes(model, x, k=8, n=300, seed=7, batch=64)
    b = A.ablation_votes(model, x, k=8, n=300, seed=7, batch=1000)   # other batching, same votes
    assert torch.equal(a, b) and a.sum(1).tolist() == [300] * 3
    assert not torch.equal(a, A.ablation_votes(model, x, k=8, n=300, seed=8))
    s = A.SmoothedScore(model, k=8, n=50, seed=1)
    assert torch.equal(s(x), s(x))


def test_certificate_holds_on_toy_model_and_is_tight():
    torch.manual_seed(0)
    model = AnyBright()
    h = w = 16
    d, k = h * w, 8
    x = torch.zeros(1, 3, h, w)
    cert = A.certify_ablation(model, x, k=k, n0=50, n=2000, alpha=0.05, seed=11)
    assert cert.prediction.item() == 0 and cert.counts[0, 0] == 2000
    r = int(cert.radius)
    assert r == A.certified_radius(0.05 ** (1 / 2000), d, k) and r >= 5
    # any change of at most r pixels (here: the worst one, bright pixels) leaves the smoothed prediction
    g = torch.Generator().manual_seed(1)
    for trial in range(12):
        rho = int(torch.randint(1, r + 1, (1,), generator=g))
        pix = torch.randperm(d, generator=g)[:rho]
        adv = x.clone().reshape(1, 3, d)
        adv[0, :, pix] = torch.rand(3, rho, generator=g) * 0.5 + 0.5
        votes = A.ablation_votes(model, adv.reshape(1, 3, h, w), k, 4000, seed=100 + trial)
        assert votes[0, 0] > votes[0, 1], f"rho={rho} <= radius {r} flipped the smoothed prediction"
    # well beyond the radius (Delta > 0.6) the same change does flip it: the check can fail
    far = next(rho for rho in range(r, d) if A.ablation_delta(d, k, rho) > 0.6)
    adv = x.clone().reshape(1, 3, d)
    adv[0, 0, :far] = 1
    votes = A.ablation_votes(model, adv.reshape(1, 3, h, w), k, 4000, seed=99)
    assert votes[0, 1] > votes[0, 0]


def test_column_certificate_holds_on_toy_model():
    """A patch of m columns moves at most m + s - 1 band votes of the toy model."""
    model = AnyBright()
    x = torch.zeros(1, 3, 16, 16)
    s, m = 2, 3
    counts = A.band_votes(model, x, s)
    assert counts.tolist() == [[16, 0]]
    pred, cert = A.column_certificate(counts, A.bands_per_patch(m, s, 16))
    assert pred.item() == 0 and bool(cert)
    adv = x.clone()
    adv[:, 0, :, 5:5 + m] = 1                           # the strongest patch of width m
    moved = A.band_votes(model, adv, s)[0, 1].item()
    assert moved == A.bands_per_patch(m, s, 16) == int(A.bands_touched(x, adv, s)[0])


def test_block_certificate_holds_on_toy_model():
    """A rectangle of m_h x m_w pixels moves exactly (m_h + b - 1)(m_w + b - 1) block votes of the toy model, the
    most the certificate allows for."""
    model = AnyBright()
    x = torch.zeros(1, 3, 16, 16)
    b, patch = 3, (4, 2)
    counts = A.block_votes(model, x, block=b)
    assert counts.tolist() == [[256, 0]]
    delta = A.blocks_per_patch(patch, (b, b), (16, 16))
    assert delta == 6 * 4
    pred, cert = A.column_certificate(counts, delta)
    assert pred.item() == 0 and bool(cert)
    adv = x.clone()
    adv[:, 0, 7:7 + patch[0], 14:16] = 1                # the strongest patch, at the right edge (wraps)
    moved = A.block_votes(model, adv, block=b)[0, 1].item()
    assert moved == delta == int(A.blocks_touched(x, adv, block=b)[0])
    assert torch.equal(A.BlockScore(model, block=b)(adv).argmax(1), torch.tensor([0]))    # 24 of 256: still 0


# --------------------------------------------------------------------------- the stage's summaries (helpers.experiments.certified)

def test_certified_curve_and_median():
    from helpers.experiments.certified import certified_curve, median_radius

    y = torch.tensor([0, 0, 1, 1, 1])
    pred = torch.tensor([0, -1, 1, 1, 0])
    radius = torch.tensor([3, -1, 0, 10, 7])
    c = certified_curve(y, pred, radius, [0, 1, 5, 10, 11])
    assert c["certified_accuracy"] == pytest.approx([3 / 5, 2 / 5, 1 / 5, 1 / 5, 0.0])
    assert c["bonafide"] == pytest.approx([0.5, 0.5, 0.0, 0.0, 0.0])     # a certified "spoof" answer is not bonafide recall
    assert c["spoof"] == pytest.approx([2 / 3, 1 / 3, 1 / 3, 1 / 3, 0.0])
    # radii of the clips, wrong / abstained as -1: [3, -1, 0, 10, -1] -> median 0
    assert median_radius(y, pred, radius) == 0.0


def test_summarise_separates_majority_and_certified():
    from helpers.experiments.certified import summarise

    y = torch.tensor([0, 1, 1, 0])
    counts = torch.tensor([[60, 4], [10, 54], [30, 34], [20, 44]])
    cert = A.Certificate(prediction=torch.tensor([0, 1, -1, 1]), radius=torch.tensor([12, 5, -1, 2]),
                         p_lower=torch.zeros(4), counts=counts, selection=counts)
    s = summarise(y, cert, pixle_l0=5.4)
    assert s["clean_accuracy"] == 0.75 and s["abstain_rate"] == 0.25
    assert s["bonafide_recall"] == 0.5 and s["spoof_recall"] == 1.0
    assert s["certified_accuracy"]["0"] == 0.5 and s["certified_accuracy"]["10"] == 0.25
    assert s["certified_accuracy_at_pixle_l0"] == 0.5       # radius >= round(5.4) = 5: clips 0 and 1


def test_check_attack_counts_flips_within_radius():
    from helpers.experiments.certified import CertConfig, check_attack

    model = AnyBright()
    cfg = CertConfig(k=8, n=400, seed=0)
    x = torch.zeros(3, 3, 16, 16)
    adv = x.clone()
    adv[1, 0, :, :] = 1                                      # every pixel bright: certainly flips to class 1
    adv[2, 0, 0, :6] = 1
    l0 = torch.tensor([0, 256, 6])
    row = check_attack("toy", "toy", torch.zeros(3, dtype=torch.long), x, adv, l0, torch.zeros(3, dtype=torch.long),
                       torch.tensor([5, 300, 5]), model, cfg, 0.0, "test")
    # clip 0 was not changed (L0 0): it tests nothing and is not counted; clip 1 claims radius 300 >= its L0 256 and
    # flips: counted; clip 2 lies beyond its radius
    assert row["within_radius"] == 1 and row["flips_within_radius"] == 1
    assert row["per_clip"]["pred"][1] == 1 and row["per_clip"]["pred"][0] == 0


def test_column_summary_on_toy_model():
    from helpers.experiments.certified import patch_summary

    model = AnyBright()
    x = torch.zeros(2, 3, 16, 16)
    y = torch.tensor([0, 1])
    adv = x.clone()
    adv[0, 0, 3, 2] = 1                                      # one changed column: s bands
    s = patch_summary(model, x, y, "column", 2, (10, 3), pixle_adv=adv)      # a band spans the rows: height is free
    assert s["accuracy"] == 0.5 and s["certified_accuracy"] == 0.5 and s["delta"] == 4 and s["positions"] == 16
    # 16 votes to 0: delta_max = 8, widest certified patch 8 - 2 + 1 = 7 columns
    assert s["per_clip"]["certified_width"][0] == 7
    assert s["pixle_perturbed"] == 1 and s["pixle_covered"] == 1 and s["per_clip"]["pixle_touched"][0] == 2


def test_every_k_is_checked_against_the_image_before_training_also_without_a_sweep():
    from helpers.config.profiles import PROFILES
    from helpers.experiments.certified import CertConfig, check_ks

    check_ks(CertConfig(k=30, k_sweep=()), 32, 32)                     # demo_lfcc's empty sweep (it raised TypeError)
    check_ks(CertConfig.from_params(PROFILES["demo_lfcc"]), 60, 301)
    check_ks(CertConfig(k=1024, k_sweep=(100,)), 32, 32)
    for bad in (CertConfig(k=1025, k_sweep=()), CertConfig(k=30, k_sweep=(100, 2000))):
        with pytest.raises(ValueError, match="at most the 32x32 = 1024 pixels"):
            check_ks(bad, 32, 32)


def test_profiles_declare_every_cert_parameter():
    from helpers.config.profiles import PROFILES
    from helpers.experiments.certified import CertConfig

    for name, params in PROFILES.items():
        cfg = CertConfig.from_params(params)
        assert cfg.n0 >= 1 and cfg.n >= cfg.n0 and 0 < cfg.alpha < 1 and len(cfg.pixle) == 2, name
    assert PROFILES["thesis"]["CERT_N"] >= 10000
    # the k trade-off trains 01's first model unless CERT_SWEEP_MODEL names another
    assert CertConfig.from_params(PROFILES["demo"]).sweep_model is None
    assert CertConfig.from_params({**PROFILES["demo"], "CERT_SWEEP_MODEL": "resnet50"}).sweep_model == "resnet50"


def test_column_score_is_the_column_vote_and_the_adaptive_attack_respects_the_certificate():
    """ColumnScore's argmax is column smoothing's prediction; Pixle against it (adaptive) may flip a clip only by
    touching more bands than its certificate allows."""
    from helpers.experiments.certified import CertConfig, patch_attack

    model = AnyBright()
    x = torch.zeros(3, 3, 16, 16)
    x[2, 0, 4:6, 3:5] = 1                                    # a bright clip: class 1 on the bands that see it
    scores = A.ColumnScore(model, 2)(x)
    pred, _ = A.column_certificate(A.band_votes(model, x, 2), 0)
    assert scores.shape == (3, 2) and torch.equal(scores.argmax(1), pred)
    assert torch.allclose(scores.exp().sum(1), torch.ones(3), atol=2e-3)     # vote shares (+ tie-break term)
    y = torch.tensor([0, 0, 1])
    cfg = CertConfig(attack_clips=None, pixle=(2, 10), seed=3)
    row = patch_attack("toy", model, x, y, "column", 2, {"x_dimensions": (0.1, 0.2), "y_dimensions": (2, 4)}, cfg, "cpu")
    assert row is not None and row["n"] >= 2                 # the dark clips are certified (16 of 16 votes)
    assert row["flips_within_radius"] == 0
    touched, allowed = row["per_clip"]["votes_touched"], row["per_clip"]["votes_spare"]
    assert all(t >= 0 for t in touched) and all(a >= 1 for a in allowed)
    assert row["within_radius"] == sum(1 for t, a, l0 in zip(touched, allowed, row["per_clip"]["l0"]) if 1 <= l0 and t <= a)


def test_block_attack_respects_the_certificate():
    """Adaptive Pixle against block smoothing (BlockScore) flips a certified clip only beyond its certificate."""
    from helpers.experiments.certified import CertConfig, patch_attack, patch_summary

    model = AnyBright()
    x = torch.zeros(2, 3, 8, 8)
    x[:, 0, 1, 1] = 1                                       # one bright pixel: 4 of the 64 blocks see it
    y = torch.tensor([0, 0])
    s = patch_summary(model, x, y, "block", 2, (2, 2), pixle_adv=None)
    assert s["positions"] == 64 and s["delta"] == 9 and s["certified_accuracy"] == 1.0
    assert s["per_clip"]["votes"] == [[60, 4], [60, 4]]
    cfg = CertConfig(attack_clips=None, pixle=(2, 8), seed=5)
    row = patch_attack("toy", model, x, y, "block", 2, {"x_dimensions": (0.1, 0.3), "y_dimensions": (1, 2)}, cfg, "cpu")
    assert row is not None and row["attack"] == "pixle (block)" and row["n"] == 2
    assert row["flips_within_radius"] == 0
    assert row["per_clip"]["votes_spare"] == [28, 28]     # 60 votes to 4: half the margin
    assert max(row["per_clip"]["l0"]) >= 1                # Pixle copied the bright pixel somewhere
    assert all(t <= 64 for t in row["per_clip"]["votes_touched"])


def test_ablation_init_computes_the_clean_detector_on_the_image_channels():
    from helpers.experiments.certified import ablation_init
    from helpers.models.detectors import build_model

    base = build_model("resnet18", 3, seed=1).eval()
    model = ablation_init(base).eval()
    assert model.in_channels == 4 and model.net.conv1.weight.shape[1] == 4
    x = torch.rand(3, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        ref = base(x)
        for mask in (torch.ones(3, 1, 32, 32), torch.zeros(3, 1, 32, 32)):
            assert torch.allclose(model(torch.cat([x, mask], 1)), ref, atol=1e-5)
    assert torch.equal(model.net.conv1.weight[:, 3], torch.zeros_like(model.net.conv1.weight[:, 3]))


def test_sweep_row_reports_the_trade_off_of_k():
    """One point of the k trade-off: the kept epoch's validation EER, the last epoch's train accuracy, and the largest
    radius n allows, which shrinks as k grows (Levine & Feizi's structure), with a curve reaching past it."""
    from helpers.experiments.certified import CertConfig, sweep_row
    from helpers.models.training import TrainResult

    y = torch.tensor([0, 1, 1, 0])
    counts = torch.tensor([[100, 0], [0, 100], [40, 60], [30, 70]])
    cert = A.Certificate(prediction=torch.tensor([0, 1, -1, 1]), radius=torch.tensor([3, 2, -1, 0]),
                         p_lower=torch.zeros(4), counts=counts, selection=counts)
    hist = [{"epoch": 1, "train_accuracy": 0.6, "val_eer": 0.3}, {"epoch": 2, "train_accuracy": 0.7, "val_eer": 0.2},
            {"epoch": 3, "train_accuracy": 0.8, "val_eer": 0.25}]
    res = TrainResult(model=None, history=hist, seconds=12.345, selected_epoch=2)
    cfg = CertConfig(n=100, alpha=0.05)
    rows = {k: sweep_row("toy", k, y, cert, res, cfg, 1024, 90.0) for k in (30, 100, 250)}
    r = rows[30]
    assert r["train_accuracy"] == 0.8 and r["val_eer"] == 0.2 and r["train_seconds"] == 12.35
    assert r["share_kept"] == pytest.approx(30 / 1024) and r["clean_accuracy"] == 0.75    # majority vote: 3 of 4
    p_top = 0.05 ** (1 / 100)                                   # Clopper-Pearson lower bound of 100 of 100
    assert r["max_certifiable_radius"] == A.certified_radius(p_top, 1024, 30) == 21
    tops = [rows[k]["max_certifiable_radius"] for k in (30, 100, 250)]
    assert tops[0] > tops[1] > tops[2] >= 0                     # more pixels kept: smaller radii
    assert len(r["curve"]["radius"]) == tops[0] + 2 and r["curve"]["certified_accuracy"][0] == 0.5
    # no selected epoch (select="last"): the last epoch's validation EER
    assert sweep_row("toy", 30, y, cert, TrainResult(model=None, history=hist), cfg, 1024, None)["val_eer"] == 0.25


def test_max_certifiable_radius_is_the_radius_of_a_unanimous_vote():
    # n=100 of 100 at alpha 0.05: p_lower = 0.05 ** (1/100); k=30 of 1,024 reaches 21 pixels, k=250 only 2
    assert A.max_certifiable_radius(100, 0.05, 1024, 30) == A.certified_radius(0.05 ** (1 / 100), 1024, 30) == 21
    assert A.max_certifiable_radius(100, 0.05, 1024, 250) == 2
    assert A.max_certifiable_radius(10_000, 0.05, 1024, 30) > 21      # more ablations: a larger ceiling


def test_largest_k_for_radius_inverts_the_ceiling():
    # by hand: a unanimous n=100 gives p_lower = 0.05 ** (1/100) = 0.9705; Delta(87) = 1 - prod_i (937-i)/(1024-i)
    # over the k kept pixels is 0.463 at k=7 (p_lower - Delta = 0.507 > 0.5) and 0.510 at k=8 (0.461 < 0.5): k <= 7
    # certifies 87
    p = 0.05 ** (1 / 100)
    delta = lambda k: 1 - math.prod((937 - i) / (1024 - i) for i in range(k))   # noqa: E731
    assert p - delta(7) > 0.5 > p - delta(8)
    assert A.largest_k_for_radius(87, 100, 0.05, 1024) == 7
    # the inverse of max_certifiable_radius: at the answer the radius is reached, one more pixel kept loses it
    for rho in (1, 21, 49):
        k = A.largest_k_for_radius(rho, 100, 0.05, 1024)
        assert A.max_certifiable_radius(100, 0.05, 1024, k) >= rho > A.max_certifiable_radius(100, 0.05, 1024, k + 1)
    assert A.largest_k_for_radius(21, 100, 0.05, 1024) == 30            # the demo's k is the largest for 21
    assert A.largest_k_for_radius(0, 100, 0.05, 1024) == 1024           # radius 0: any k
    assert A.largest_k_for_radius(1024, 100, 0.05, 1024) == 0           # out of reach whatever k
    assert A.largest_k_for_radius(5, 1, 0.05, 1024) == 0                # one vote bounds nothing above 0.05
    with pytest.raises(ValueError, match="0 <= rho <= d"):
        A.largest_k_for_radius(-1, 100, 0.05, 1024)


def test_the_verdict_says_how_few_pixels_a_certificate_at_pixles_l0_allows():
    from types import SimpleNamespace

    from helpers.experiments.certified import reach_sentence

    stage = SimpleNamespace(budgets={"d": 1024}, config={"n": 100, "alpha": 0.05, "k": 30})
    text = reach_sentence(stage, 86.8)          # the demo's ResNet-18: Pixle's mean L0 86.8, 87 rounded up
    assert "(87 pixels)" in text and "at most k=7 of the 1,024 pixels (0.7%)" in text and "keep 30" in text
    assert reach_sentence(stage, None) == "" and reach_sentence(SimpleNamespace(budgets={}, config={}), 50) == ""
    assert "No k certifies 1024 pixels" in reach_sentence(stage, 1024)
    # and the report's verdict (05 and 07 print verdict_markdown) carries it, per model
    from helpers.experiments.certified import verdict_markdown

    summary = {"pixle_mean_l0": 86.8, "clean_accuracy": 0.5, "n": 2, "balanced_accuracy": 0.5, "bonafide_recall": 1.0,
               "spoof_recall": 0.0, "certified_accuracy": {"0": 0.5, "1": 0.5}, "median_radius": 2.0,
               "certified_accuracy_at_pixle_l0": 0.0, "max_certifiable_radius": 21}
    full = SimpleNamespace(**vars(stage), summary={"resnet18": summary}, attacks=[], sweep=[],
                           per_clip={"resnet18": {"y": [0, 1], "prediction": [0, 0], "radius": [5, 3]}})
    verdict = verdict_markdown(full)
    assert verdict.startswith("- **resnet18**") and "largest 5 pixels" in verdict and "at most k=7 of the 1,024" in verdict
