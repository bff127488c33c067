"""Tests for helpers.evaluation.claim: prior reweighting, constant references, thesis-style accuracy, paired tests."""

from __future__ import annotations

import matplotlib.figure
import numpy as np
import pytest
import torch
from scipy.stats import binomtest

from helpers.evaluation import claim
from helpers.evaluation.attack_loop import record
from helpers.evaluation.metrics import accuracy, balanced_accuracy
from helpers.thesis import CONDITIONS, EVALUATIONS

N_ROWS_PER_MODEL = sum(len(EVALUATIONS[c]) for c, _ in CONDITIONS) + 2   # 8 conditions + 2 references


def _logits(pred: np.ndarray, rng: np.random.Generator) -> torch.Tensor:
    """Logits whose argmax is ``pred`` with a random margin (bonafide score = 2 * z)."""
    margin = rng.uniform(0.2, 3.0, len(pred))
    z = np.where(np.asarray(pred) == 0, margin, -margin)
    return torch.tensor(np.stack([z, -z], 1), dtype=torch.float32)


def _preds(y: np.ndarray, rec0: float, rec1: float, rng: np.random.Generator) -> np.ndarray:
    """Predictions with (about) the given per-class recalls."""
    ok = np.where(y == 0, rng.random(len(y)) < rec0, rng.random(len(y)) < rec1)
    return np.where(ok, y, 1 - y)


def _records(models=("resnet18", "resnet50"), n_bona: int = 30, n_spoof: int = 270, combined=(0.8, 0.9),
             combined_clean=None, seed: int = 0) -> list[dict]:
    """One record per model x condition x evaluation, built with helpers.evaluation.attack_loop.record."""
    rng = np.random.default_rng(seed)
    y = np.array([0] * n_bona + [1] * n_spoof)
    yt = torch.tensor(y)
    recalls = {"baseline_clean": (0.9, 0.95), "baseline_pixle": (0.1, 0.2), "smoothing_pixle": (0.3, 0.6),
               "adv_training_clean": (0.85, 0.9), "adv_training_pixle": (0.5, 0.6), "combined_pixle": combined}
    out = []
    for m in models:
        for cond, _ in CONDITIONS:
            for ev in EVALUATIONS[cond]:
                lg = _logits(_preds(y, *recalls[cond], rng), rng)
                clean_rec = combined_clean if (cond == "combined_pixle" and combined_clean) else (0.9, 0.9)
                clean = lg if ev == "clean" else _logits(_preds(y, *clean_rec, rng), rng)
                out.append(record(m, cond, ev, yt, lg, clean_logits=clean))
    return out


# 1. prior reweighting ---------------------------------------------------------------------------

def test_accuracy_at_share_hand_cases():
    assert claim.accuracy_at_share(0.2, 0.99, 0.041) == pytest.approx(0.95761, abs=1e-9)
    np.testing.assert_allclose(claim.accuracy_at_share(0.2, 0.99, np.array([0.0, 0.5, 1.0])), [0.99, 0.595, 0.2])
    assert claim.accuracy_at_share(0.0, 1.0, 68 / 1649) == pytest.approx(1581 / 1649)
    # recomputing at the test set's own share gives back the pooled accuracy exactly
    rng = np.random.default_rng(1)
    y = np.array([0] * 37 + [1] * 163)
    pred = _preds(y, 0.6, 0.8, rng)
    b, s = claim.per_class_recalls(y, pred)
    assert b == pytest.approx(np.mean(pred[y == 0] == 0)) and s == pytest.approx(np.mean(pred[y == 1] == 1))
    assert claim.accuracy_at_share(b, s, 37 / 200) == pytest.approx(accuracy(y, pred))
    assert np.isnan(claim.per_class_recalls([1, 1], [1, 0])[0])


# 2. thesis-style accuracy -------------------------------------------------------------------------

def test_thesis_accuracy_is_mean_of_batch_accuracies():
    y = np.ones(20, dtype=int)
    pred = np.array([1] * 16 + [0] * 4)          # batch 1 (16 clips) all right, batch 2 (4 clips) all wrong
    per_batch, pooled = claim.thesis_accuracy(y, pred, batch_size=16)
    assert per_batch == pytest.approx(0.5) and pooled == pytest.approx(0.8)
    # equal batches: the two agree
    assert claim.thesis_accuracy(y[:16], pred[:16], 8) == pytest.approx((1.0, 1.0))
    assert claim.thesis_accuracy(np.r_[y, y], np.r_[pred, 1 - pred], 10) == pytest.approx((0.5, 0.5))


# 3. constant classifiers --------------------------------------------------------------------------

def test_constant_classifier_records():
    y = [0] * 3 + [1] * 97
    spoof, bona = claim.constant_classifier_records(y, model="resnet18")
    assert (spoof["condition"], spoof["evaluation"], spoof["model"]) == ("always_spoof", "reference", "resnet18")
    assert bona["condition"] == "always_bonafide"
    assert spoof["accuracy"] == pytest.approx(0.97) and spoof["balanced_accuracy"] == pytest.approx(0.5)
    assert bona["accuracy"] == pytest.approx(0.03) and bona["balanced_accuracy"] == pytest.approx(0.5)
    assert set(spoof["per_clip"]["pred"]) == {1} and set(bona["per_clip"]["pred"]) == {0}
    assert spoof["per_clip"]["y"] == y and spoof["n"] == 100
    assert claim.per_class_recalls(y, spoof["per_clip"]["pred"]) == (0.0, 1.0)
    # a constant score separates nothing: EER 50% (helpers.evaluation.metrics.det_curve does not step inside ties)
    assert spoof["eer"] == pytest.approx(0.5) and bona["eer"] == pytest.approx(0.5)
    assert spoof["clean_accuracy"] == pytest.approx(0.97)


# 4. significance ----------------------------------------------------------------------------------

def test_mcnemar_hand_case():
    a = np.array([True] * 10 + [False] * 2 + [True] * 5 + [False] * 3)
    b = np.array([False] * 10 + [True] * 2 + [True] * 5 + [False] * 3)
    t = claim.mcnemar_exact(a, b)
    assert (t.b, t.c) == (10, 2)
    assert t.p_value == pytest.approx(binomtest(2, 12).pvalue) and t.p_value == pytest.approx(0.0386, abs=1e-4)
    assert claim.mcnemar_exact(b, a).p_value == pytest.approx(t.p_value)   # two-sided: symmetric
    assert claim.mcnemar_exact(a, a) == (0, 0, 1.0)


def test_paired_bootstrap_contains_truth_and_is_deterministic():
    rng = np.random.default_rng(3)
    n = 2000
    y = rng.integers(0, 2, n)
    pa = np.where(rng.random(n) < 0.9, y, 1 - y)     # population accuracy 0.9
    pb = np.where(rng.random(n) < 0.7, y, 1 - y)     # population accuracy 0.7
    d, lo, hi = claim.paired_bootstrap_diff(accuracy, [y, pa], [y, pb], n_boot=300, seed=5)
    assert d == pytest.approx(accuracy(y, pa) - accuracy(y, pb))
    assert lo < d < hi and lo <= 0.2 <= hi and hi - lo < 0.1
    assert claim.paired_bootstrap_diff(accuracy, [y, pa], [y, pb], n_boot=300, seed=5) == (d, lo, hi)
    assert claim.paired_bootstrap_diff(accuracy, [y, pa], [y, pb], n_boot=300, seed=6) != (d, lo, hi)
    # paired: the same detector against itself has a zero-width interval (independent resampling would not)
    assert claim.paired_bootstrap_diff("balanced_accuracy", [y, pa], [y, pa], n_boot=50, seed=0) == (0.0, 0.0, 0.0)
    d2, _, _ = claim.paired_bootstrap_diff("balanced_accuracy", [y, pa], [y, pb], n_boot=20, seed=0)
    assert d2 == pytest.approx(balanced_accuracy(y, pa) - balanced_accuracy(y, pb))


def test_headline_tests_and_mismatched_clips():
    recs = _records(n_bona=20, n_spoof=180, combined=(0.9, 0.95))
    t = claim.headline_tests(recs, n_boot=100, seed=0)
    assert len(t) == 4 and set(t.comparison) == {"combined vs always spoof", "combined vs baseline under Pixle"}
    row = t[(t.model == "resnet18") & (t.comparison == "combined vs baseline under Pixle")].iloc[0]
    assert row["accuracy_diff"] > 0.5 and row["mcnemar_p"] < 1e-6 and row["accuracy_diff_lo"] > 0.5
    ref = t[(t.model == "resnet18") & (t.comparison == "combined vs always spoof")].iloc[0]
    assert ref["accuracy_b"] == pytest.approx(0.9) and ref["balanced_accuracy_b"] == pytest.approx(0.5)
    assert ref["accuracy_diff_lo"] <= ref["accuracy_diff"] <= ref["accuracy_diff_hi"]
    # a baseline record on other clips is refused, naming both records
    bad = [dict(r) for r in recs]
    for r in bad:
        if (r["model"], r["condition"]) == ("resnet50", "baseline_pixle"):
            r["per_clip"] = {**r["per_clip"], "y": r["per_clip"]["y"][::-1]}
    with pytest.raises(ValueError, match="resnet50/combined_pixle/non-adaptive.*resnet50/baseline_pixle/non-adaptive"):
        claim.headline_tests(bad, n_boot=10)


# 5. claim table -----------------------------------------------------------------------------------

def test_claim_table_shape_columns_and_references():
    recs = _records(n_bona=10, n_spoof=90)
    recs = [r for r in recs if not (r["model"] == "resnet50" and r["evaluation"] == "adaptive")]  # two not run
    df = claim.claim_table(recs, n_boot=30, seed=0)
    assert list(df.columns) == claim.CLAIM_COLUMNS
    assert len(df) == 2 * N_ROWS_PER_MODEL
    assert (df.kind == "reference").sum() == 4
    head = df[(df.model == "resnet18") & (df.condition == "combined_pixle") & (df.evaluation == "non-adaptive")].iloc[0]
    assert head["thesis_accuracy"] == pytest.approx(0.9189)
    assert head["n"] == 100 and head["n_bonafide"] == 10 and head["bonafide_share"] == pytest.approx(0.1)
    assert head["accuracy_lo"] <= head["accuracy"] <= head["accuracy_hi"]
    assert head["accuracy"] == pytest.approx(0.1 * head["bonafide_recall"] + 0.9 * head["spoof_recall"])
    assert head["accuracy_at_thesis_share"] == pytest.approx(
        claim.accuracy_at_share(head["bonafide_recall"], head["spoof_recall"], 68 / 1649))
    assert head["one_class"] is False
    # the thesis number appears only where the thesis reported it
    assert df["thesis_accuracy"].notna().sum() == 4
    missing = df[(df.model == "resnet50") & (df.evaluation == "adaptive")]
    assert len(missing) == 2 and not missing["present"].any() and missing["accuracy"].isna().all()
    spoof = df[(df.model == "resnet50") & (df.condition == "always_spoof")].iloc[0]
    assert spoof["accuracy"] == pytest.approx(0.9) and spoof["bonafide_recall"] == 0.0 and spoof["one_class"] is True
    assert spoof["accuracy_at_thesis_share"] == pytest.approx(1581 / 1649)
    shown = claim.format_claim_table(df)
    assert len(shown) == len(df)
    assert shown.loc[missing.index[0], "accuracy %"] == "—"
    assert shown.loc[head.name, "thesis acc. %"] == "91.89"
    assert shown.loc[spoof.name, "accuracy %"].startswith("90.0") and shown.loc[spoof.name, "one class"] == "yes"


# 6. verdict ---------------------------------------------------------------------------------------

def test_verdict_class_mix_when_combined_says_spoof():
    recs = _records(n_bona=40, n_spoof=460, combined=(0.0, 1.0), combined_clean=(0.0, 1.0))   # 92% spoof
    recs = [r for r in recs if r["model"] == "resnet18"]
    df = claim.claim_table(recs, n_boot=30)
    tests = claim.headline_tests(recs, n_boot=30)
    text = claim.verdict(df, tests)
    assert "class mix" in text and "robustness" in text and "matches the thesis's 91.89%" in text
    assert "not significantly more accurate" in text and "bonafide recall 0.0%" in text
    assert "holds as robustness" not in text


def test_verdict_robust_and_missing():
    recs = _records(n_bona=150, n_spoof=150, combined=(0.97, 0.97))
    recs = [r for r in recs if not (r["model"] == "resnet50" and r["condition"] == "combined_pixle")]
    df = claim.claim_table(recs, n_boot=50)
    text = claim.verdict(df, claim.headline_tests(recs, n_boot=50))
    r18, r50 = text.splitlines()
    assert "holds as robustness" in r18 and "significantly more accurate" in r18 and "not significantly" not in r18
    assert r50.startswith("resnet50") and "not run" in r50
    # with a thesis number far from ours, the verdict says our number does not match the thesis's
    far = claim.verdict(claim.claim_table(recs, n_boot=0, thesis={("resnet18", "combined_pixle"): 40.0}), None)
    assert "does not match the thesis's 40.00%" in far


# 7. figure ----------------------------------------------------------------------------------------

def test_accuracy_vs_share_figure():
    recs = _records(n_bona=10, n_spoof=90, combined_clean=(0.0, 1.0))
    recs = [r for r in recs if not (r["model"] == "resnet50" and r["condition"] == "smoothing_pixle")]
    df = claim.claim_table(recs, n_boot=0)
    from helpers.reporting.figures import accuracy_vs_share

    fig = accuracy_vs_share(df)
    assert isinstance(fig, matplotlib.figure.Figure)
    ax18, ax50 = fig.axes[:2]
    assert len(ax18.lines) == 8 + 2 + 1 and len(ax50.lines) == 6 + 2 + 1   # conditions, references, thesis share
    labels = [ln.get_label() for ln in ax18.lines]
    assert sum("(one class)" in s for s in labels) == 2                     # combined, both evaluations
    spoof_line = next(ln for ln in ax18.lines if ln.get_label() == "constant: always spoof")
    assert spoof_line.get_linestyle() == "--"
    np.testing.assert_allclose(spoof_line.get_ydata()[[0, -1]], [98.0, 50.0])
    vline = ax18.lines[-1]
    assert vline.get_xdata()[0] == pytest.approx(100 * 68 / 1649)
    assert len(ax18.collections) == 1 and ax18.collections[0].get_offsets().shape == (2, 2)  # two thesis points
    import matplotlib.pyplot as plt
    plt.close(fig)


def test_claim_statistics_import_no_plotting_library():
    """The claim's statistics and text live in helpers.evaluation.claim; its figure in helpers.reporting.figures."""
    import subprocess
    import sys

    code = "import sys, helpers.evaluation.claim; print('matplotlib' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
    assert not hasattr(claim, "accuracy_vs_share_figure")
