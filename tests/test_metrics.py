import numpy as np
import pytest
import torch
from sklearn.metrics import balanced_accuracy_score, roc_curve

from helpers.evaluation import metrics as M


def test_eer_hand_computed():
    # perfectly separated: EER 0
    assert M.eer([0, 0, 1, 1], [0.9, 0.8, 0.1, 0.2]) == 0.0
    # perfectly inverted: EER 1
    assert M.eer([0, 0, 1, 1], [0.1, 0.2, 0.9, 0.8]) == 1.0
    # one bonafide below one spoof out of 2+2: miss and false alarm meet at 0.5
    assert M.eer([0, 0, 1, 1], [0.9, 0.3, 0.5, 0.1]) == pytest.approx(0.5)
    # 4 bonafide, 4 spoof, one error each side: EER 0.25
    y = [0, 0, 0, 0, 1, 1, 1, 1]
    s = [0.9, 0.8, 0.7, 0.2, 0.3, 0.1, 0.05, 0.6]
    assert M.eer(y, s) == pytest.approx(0.25)
    assert np.isnan(M.eer([0, 0], [0.1, 0.2]))


def test_eer_matches_sklearn_roc_on_random_scores():
    rng = np.random.default_rng(1)
    for _ in range(5):
        y = rng.integers(0, 2, 400)
        s = rng.normal(size=400) + (y == 0) * 1.0
        fpr, tpr, _ = roc_curve(y == 0, s)
        fnr = 1 - tpr
        i = np.nanargmin(np.abs(fnr - fpr))
        assert M.eer(y, s) == pytest.approx((fnr[i] + fpr[i]) / 2, abs=0.01)


def _reference_det(target, nontarget):
    """The DET curve one score list at a time (ASVspoof's computation, ties kept together): what det_curve computed
    before it shared its vectorised rows with eer_ci."""
    n_t, n_n = target.size, nontarget.size
    scores = np.concatenate((target, nontarget))
    order = np.argsort(scores, kind="mergesort")
    tar = np.cumsum(np.concatenate((np.ones(n_t), np.zeros(n_n)))[order])
    frr = np.concatenate(([0], tar / n_t))
    far = np.concatenate(([1], (n_n - (np.arange(1, n_t + n_n + 1) - tar)) / n_n))
    ranked = scores[order]
    keep = np.concatenate(([True], ranked[1:] != ranked[:-1], [True]))
    return frr[keep], far[keep], np.concatenate(([ranked[0] - 0.001], ranked))[keep]


def _reference_eer(target, nontarget):
    frr, far, _ = _reference_det(target, nontarget)
    j = int(np.nanargmin(np.abs(frr - far)))
    return (frr[j] + far[j]) / 2


def test_det_curve_and_bootstrap_eer_ci_equal_the_one_list_at_a_time_computation():
    """det_curve and eer_ci share one vectorised DET computation (_det_rows); both give, bit for bit, what the
    computation one score list at a time gives: every row, ties and constant scores included, the bootstrap's
    draws in order across memory chunks."""
    rng = np.random.default_rng(4)
    for n_t, n_n in ((1, 1), (3, 9), (40, 25)):
        t = np.round(rng.normal(size=(50, n_t)), 1)
        t[0] = 0.0
        nt = np.round(rng.normal(size=(50, n_n)), 1)
        nt[0] = 0.0
        assert M._row_eers(t, nt).tolist() == [_reference_eer(t[i], nt[i]) for i in range(50)]
        for got, want in zip(M.det_curve(t[1], nt[1]), _reference_det(t[1], nt[1])):
            assert np.array_equal(got, want)

    def looped(y, s, n_boot, seed):
        bona, spoof = s[y == 0], s[y == 1]
        draws = np.random.default_rng(seed)
        vals = [_reference_eer(bona[draws.integers(0, bona.size, bona.size)],
                               spoof[draws.integers(0, spoof.size, spoof.size)]) for _ in range(n_boot)]
        return np.quantile(vals, 0.025), np.quantile(vals, 0.975)

    y = rng.integers(0, 2, 90)
    for s in (rng.normal(size=90) + (y == 0), np.round(rng.normal(size=90), 1), np.zeros(90)):   # ties, constant
        assert M.eer_ci(y, s, n_boot=300, seed=2) == looped(y, s, 300, 2)
    yb = rng.integers(0, 2, 4000)                     # 500 resamples a chunk: two chunks, rows in draw order
    big = rng.normal(size=4000) + 0.3 * (yb == 0)
    assert M.eer_ci(yb, big, n_boot=700, seed=5) == looped(yb, big, 700, 5)


def test_accuracy_balanced_confusion():
    y = np.array([0, 0, 0, 1])
    p = np.array([0, 0, 1, 1])
    assert M.accuracy(y, p) == 0.75
    assert M.balanced_accuracy(y, p) == pytest.approx(balanced_accuracy_score(y, p))
    assert M.confusion(y, p).tolist() == [[2, 1], [0, 1]]


def test_attack_stats_and_l0():
    y = [0, 1, 1, 0]
    clean = [0, 1, 0, 0]      # 3 correct
    adv = [1, 1, 0, 1]        # two of the three flipped
    assert M.attack_success_rate(y, clean, adv) == pytest.approx(2 / 3)
    x = torch.zeros(2, 3, 4, 4)
    xa = x.clone()
    xa[0, 1, 0, 0] = 1
    xa[0, :, 2, 3] = 0.5
    assert M.l0_pixels(x, xa).tolist() == [2, 0]


def test_bootstrap_ci_brackets_estimate():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 200)
    p = np.where(rng.random(200) < 0.8, y, 1 - y)
    lo, hi = M.bootstrap_ci(M.accuracy, [y, p], n_boot=300, seed=0)
    acc = M.accuracy(y, p)
    assert lo < acc < hi and hi - lo < 0.2
