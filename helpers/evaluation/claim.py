"""Does the thesis's claim hold? Accuracy against the class mix, reference classifiers, significance.

The thesis reports accuracy under Pixle rising from 25.16% to 91.89% (ResNet-18) and from 23.04%
to 93.72% (ResNet-50) with adversarial training + Gaussian blur. Its test set holds 68 bonafide and
1,581 spoof clips (4.1% bonafide), so a constant "always spoof" classifier already scores 95.9%.
This module puts each condition next to that reference:

* accuracy is a prior-weighted mix of the two per-class recalls,
  ``acc(share) = share * bonafide_recall + (1 - share) * spoof_recall``, so it can be recomputed
  exactly for any test bonafide share (:func:`accuracy_at_share`; the figure is
  :func:`helpers.reporting.figures.accuracy_vs_share`);
* the constant classifiers are evaluated on the same clips, in the same record format
  (:func:`constant_classifier_records`);
* the headline comparisons get paired tests on the same clips: the exact McNemar test on
  correctness (McNemar 1947; exact binomial form, Fagerland et al. 2013, BMC Med. Res. Methodol.
  13:91) and a paired percentile bootstrap of the accuracy and balanced-accuracy differences
  (Efron & Tibshirani 1993);
* :func:`verdict` states, from the numbers alone, whether our accuracy matches the thesis's number and whether
  it reflects robustness or the class mix.

Convention (see :mod:`helpers.evaluation.metrics`): class 0 = bonafide, 1 = spoof; rates are fractions 0..1
except where ``THESIS_ACCURACY`` says percent. Text is written by :mod:`helpers.reporting.format`.
"""

from __future__ import annotations

from typing import Callable, NamedTuple, Sequence

import numpy as np
import pandas as pd
import torch

from helpers.evaluation.attack_loop import record
from helpers.evaluation.metrics import BONAFIDE, SPOOF, accuracy, balanced_accuracy, bootstrap_ci, eer
from helpers.reporting.format import pct, pct_prose, points
from helpers.thesis import (CONDITIONS, EVALUATIONS, THESIS_ACCURACY, THESIS_BATCH_SIZE, THESIS_N_BONAFIDE,  # noqa: F401
                            THESIS_N_SPOOF, THESIS_SHARE)

REFERENCES: list[tuple[str, str]] = [("always_spoof", "constant: always spoof"),
                                     ("always_bonafide", "constant: always bonafide")]
HEADLINE = ("combined_pixle", "non-adaptive")


def _np(a) -> np.ndarray:
    return a.detach().cpu().numpy() if isinstance(a, torch.Tensor) else np.asarray(a)


_LABELS = dict(CONDITIONS) | dict(REFERENCES)
SHORT_LABELS = {"baseline_clean": "baseline, clean", "baseline_pixle": "baseline, Pixle",
                "smoothing_pixle": "smoothing, Pixle", "adv_training_clean": "adv. training, clean",
                "adv_training_pixle": "adv. training, Pixle", "combined_pixle": "combined, Pixle"}


# --------------------------------------------------------------------------------------------------
# 1. accuracy as a function of the class mix

def accuracy_at_share(bonafide_recall: float, spoof_recall: float, share):
    """Accuracy on a test set whose bonafide share is ``share`` (scalar or array), from the recalls.

    Exact, not an approximation: accuracy = P(bonafide) * recall_bonafide + P(spoof) * recall_spoof.
    """
    share = np.asarray(share, dtype=float)
    out = share * bonafide_recall + (1.0 - share) * spoof_recall
    return float(out) if out.ndim == 0 else out


def _recall(cls: int) -> Callable[[np.ndarray, np.ndarray], float]:
    def stat(y, pred) -> float:
        m = _np(y) == cls
        return float((_np(pred)[m] == cls).mean()) if m.any() else float("nan")
    stat.__name__ = f"recall_{cls}"
    return stat


bonafide_recall, spoof_recall = _recall(BONAFIDE), _recall(SPOOF)


def per_class_recalls(y, pred) -> tuple[float, float]:
    """(bonafide recall, spoof recall); NaN for a class absent from ``y``."""
    return bonafide_recall(y, pred), spoof_recall(y, pred)


# --------------------------------------------------------------------------------------------------
# 2. accuracy as the thesis computes it

def thesis_accuracy(y, pred, batch_size: int = THESIS_BATCH_SIZE) -> tuple[float, float]:
    """(mean of per-batch accuracies over the test loader in order, pooled accuracy).

    The thesis's evaluation loop averages ``(pred == y).float().mean()`` over batches of
    ``batch_size`` (the last batch may be smaller), which weights the clips of the last batch more
    than the others; the pooled accuracy weights every clip equally.
    """
    y, pred = _np(y), _np(pred)
    if len(y) == 0:
        return float("nan"), float("nan")
    correct = (y == pred).astype(float)
    per_batch = [correct[i:i + batch_size].mean() for i in range(0, len(correct), batch_size)]
    return float(np.mean(per_batch)), float(correct.mean())


# --------------------------------------------------------------------------------------------------
# 3. constant reference classifiers

def constant_classifier_records(y, model: str = "—") -> list[dict]:
    """Records (the :func:`helpers.evaluation.attack_loop.record` format) of "always spoof" and "always bonafide".

    Evaluation ``"reference"``; the same logits serve as clean logits, so ``pred_clean`` is one class.
    Every score is equal, so no threshold separates anything: EER 50% (a diagonal DET curve).
    """
    y = torch.as_tensor(_np(y)).long()
    out = []
    for cond, cls in (("always_spoof", SPOOF), ("always_bonafide", BONAFIDE)):
        row = torch.tensor([1.0, -1.0]) if cls == BONAFIDE else torch.tensor([-1.0, 1.0])
        logits = row.repeat(len(y), 1)
        out.append(record(model, cond, "reference", y, logits, clean_logits=logits))
    return out


# --------------------------------------------------------------------------------------------------
# 4. significance on the same clips

class McNemar(NamedTuple):
    b: int          # clips A gets right and B gets wrong
    c: int          # clips A gets wrong and B gets right
    p_value: float  # exact two-sided binomial test of b vs c, p = 0.5


def mcnemar_exact(correct_a, correct_b) -> McNemar:
    """Exact McNemar test on paired correctness (discordant pairs only); p = 1 with none."""
    from scipy.stats import binomtest

    a, b_ = _np(correct_a).astype(bool), _np(correct_b).astype(bool)
    if a.shape != b_.shape:
        raise ValueError(f"mcnemar_exact: correctness arrays differ in length ({a.shape} vs {b_.shape})")
    b, c = int((a & ~b_).sum()), int((~a & b_).sum())
    p = 1.0 if b + c == 0 else float(binomtest(c, b + c, 0.5).pvalue)
    return McNemar(b, c, p)


_METRICS: dict[str, Callable[..., float]] = {"accuracy": accuracy, "balanced_accuracy": balanced_accuracy}


def paired_bootstrap_diff(metric: Callable[..., float] | str, arrays_a: Sequence, arrays_b: Sequence,
                          n_boot: int = 1000, seed: int = 0, alpha: float = 0.05) -> tuple[float, float, float]:
    """(metric(A) - metric(B), lo, hi): percentile bootstrap resampling the same clips for A and B.

    ``arrays_a`` / ``arrays_b`` are the metric's arguments (e.g. ``[y, pred_a]`` and ``[y, pred_b]``),
    all of the same length; one index draw per replicate is applied to both, so the pairing (and
    the correlation between the two detectors) is kept.
    """
    metric = _METRICS[metric] if isinstance(metric, str) else metric
    A, B = [_np(a) for a in arrays_a], [_np(b) for b in arrays_b]
    n = len(A[0])
    if any(len(x) != n for x in A + B):
        raise ValueError("paired_bootstrap_diff: all arrays must have one entry per clip (same length)")
    if n == 0:
        return float("nan"), float("nan"), float("nan")
    diff = float(metric(*A) - metric(*B))
    rng = np.random.default_rng(seed)
    vals = []
    for _ in range(n_boot):
        idx = rng.integers(0, n, n)
        v = metric(*[a[idx] for a in A]) - metric(*[b[idx] for b in B])
        if np.isfinite(v):
            vals.append(v)
    if not vals:
        return diff, float("nan"), float("nan")
    return diff, float(np.quantile(vals, alpha / 2)), float(np.quantile(vals, 1 - alpha / 2))


def _name(r: dict) -> str:
    return f"{r.get('model')}/{r.get('condition')}/{r.get('evaluation')}"


def check_same_clips(rec_a: dict, rec_b: dict) -> np.ndarray:
    """The shared labels ``y`` if both records are on the same clips (equal per_clip y), else ValueError."""
    ya, yb = rec_a.get("per_clip", {}).get("y"), rec_b.get("per_clip", {}).get("y")
    if ya is None or yb is None:
        raise ValueError(f"{_name(rec_a)} vs {_name(rec_b)}: a record has no per_clip y; re-run the evaluation "
                         "notebook so that per-clip arrays are written")
    if list(ya) != list(yb):
        raise ValueError(f"{_name(rec_a)} ({len(ya)} clips) and {_name(rec_b)} ({len(yb)} clips) are not on the "
                         "same clips (per_clip y differs); a paired comparison needs the same test clips in the same order")
    return np.asarray(ya)


def compare(rec_a: dict, rec_b: dict, n_boot: int = 1000, seed: int = 0) -> dict:
    """Paired comparison of two records on the same clips: accuracy and balanced-accuracy differences
    (A - B) with paired-bootstrap 95% CIs, and the exact McNemar test on correctness."""
    y = check_same_clips(rec_a, rec_b)
    pa, pb = np.asarray(rec_a["per_clip"]["pred"]), np.asarray(rec_b["per_clip"]["pred"])
    row = {"n": len(y), "accuracy_a": accuracy(y, pa), "accuracy_b": accuracy(y, pb),
           "balanced_accuracy_a": balanced_accuracy(y, pa), "balanced_accuracy_b": balanced_accuracy(y, pb)}
    for m in ("accuracy", "balanced_accuracy"):
        d, lo, hi = paired_bootstrap_diff(m, [y, pa], [y, pb], n_boot, seed)
        row.update({f"{m}_diff": d, f"{m}_diff_lo": lo, f"{m}_diff_hi": hi})
    t = mcnemar_exact(pa == y, pb == y)
    row.update({"mcnemar_b": t.b, "mcnemar_c": t.c, "mcnemar_p": t.p_value})
    return row


def _index(records: list[dict]) -> dict[tuple[str, str, str], dict]:
    return {(r["model"], r["condition"], r["evaluation"]): r for r in records}


def headline_tests(records: list[dict], n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    """Per model: combined defense (non-adaptive) vs (a) "always spoof" on the same clips and (b) the
    baseline under Pixle. One row per comparison that can be made (both records present).

    Columns: model, comparison, a, b, n, accuracy_a/b, balanced_accuracy_a/b, accuracy_diff(+_lo/_hi),
    balanced_accuracy_diff(+_lo/_hi), mcnemar_b, mcnemar_c, mcnemar_p. Raises ValueError if the
    combined and baseline records are not on the same clips.
    """
    by = _index(records)
    rows = []
    for m in sorted({r["model"] for r in records}):
        comb = by.get((m, *HEADLINE))
        if comb is None or "per_clip" not in comb:
            continue
        ref = by.get((m, "always_spoof", "reference")) or constant_classifier_records(comb["per_clip"]["y"], m)[0]
        base = by.get((m, "baseline_pixle", "non-adaptive"))
        for label, other in (("combined vs always spoof", ref), ("combined vs baseline under Pixle", base)):
            if other is None or "per_clip" not in other:
                continue
            rows.append({"model": m, "comparison": label, "a": _name(comb), "b": _name(other),
                         **compare(comb, other, n_boot, seed)})
    cols = ["model", "comparison", "a", "b", "n", "accuracy_a", "accuracy_b", "balanced_accuracy_a",
            "balanced_accuracy_b", "accuracy_diff", "accuracy_diff_lo", "accuracy_diff_hi", "balanced_accuracy_diff",
            "balanced_accuracy_diff_lo", "balanced_accuracy_diff_hi", "mcnemar_b", "mcnemar_c", "mcnemar_p"]
    return pd.DataFrame(rows, columns=cols)


# --------------------------------------------------------------------------------------------------
# 5. the claim table

_CI_METRICS = ["accuracy", "balanced_accuracy", "bonafide_recall", "spoof_recall", "eer", "accuracy_at_thesis_share"]
CLAIM_COLUMNS = (["model", "condition", "label", "evaluation", "kind", "present", "thesis_accuracy",
                  "accuracy_thesis_style"]
                 + [c for m in _CI_METRICS for c in (m, f"{m}_lo", f"{m}_hi")]
                 + ["n", "n_bonafide", "bonafide_share", "one_class"])


def _one_class(rec: dict) -> bool | None:
    pc = rec.get("per_clip", {})
    preds = pc.get("pred_clean")
    if preds is None and rec.get("evaluation") in ("clean", "reference"):
        preds = pc.get("pred")           # a clean evaluation's predictions are its clean predictions
    if not preds:
        return None
    return len(set(preds)) == 1


def _row(m: str, cond: str, ev: str, rec: dict | None, kind: str, thesis: dict, n_boot: int, seed: int,
         thesis_share: float, batch_size: int) -> dict:
    row = {c: np.nan for c in CLAIM_COLUMNS}
    t = thesis.get((m, cond)) if ev == "non-adaptive" else None
    row.update({"model": m, "condition": cond, "label": _LABELS.get(cond, cond), "evaluation": ev, "kind": kind,
                "present": rec is not None, "thesis_accuracy": t / 100 if t is not None else np.nan, "one_class": None})
    if rec is None:
        return row
    pc = rec.get("per_clip", {})
    if not pc.get("y"):                                # a summary-only record: no CIs, no recalls
        for k in ("accuracy", "balanced_accuracy", "eer", "n"):
            v = rec.get(k)
            row[k] = np.nan if v is None else v
        return row
    y, pred = np.asarray(pc["y"]), np.asarray(pc["pred"])
    score = np.asarray(pc.get("score", [np.nan] * len(y)), dtype=float)
    at_share = lambda yy, pp: accuracy_at_share(bonafide_recall(yy, pp), spoof_recall(yy, pp), thesis_share)  # noqa: E731
    stats = {"accuracy": (accuracy, [y, pred]), "balanced_accuracy": (balanced_accuracy, [y, pred]),
             "bonafide_recall": (bonafide_recall, [y, pred]), "spoof_recall": (spoof_recall, [y, pred]),
             "eer": (eer, [y, score]), "accuracy_at_thesis_share": (at_share, [y, pred])}
    for k, (f, arrays) in stats.items():
        row[k] = f(*arrays)
        row[f"{k}_lo"], row[f"{k}_hi"] = bootstrap_ci(f, arrays, n_boot, seed=seed) if n_boot else (np.nan, np.nan)
    row["accuracy_thesis_style"] = thesis_accuracy(y, pred, batch_size)[0]
    row.update({"n": len(y), "n_bonafide": int((y == BONAFIDE).sum()), "bonafide_share": float((y == BONAFIDE).mean()),
                "one_class": _one_class(rec)})
    return row


def claim_table(records: list[dict], n_boot: int = 1000, seed: int = 0,
                thesis: dict[tuple[str, str], float] = THESIS_ACCURACY, models: list[str] | None = None,
                thesis_share: float = THESIS_SHARE, batch_size: int = THESIS_BATCH_SIZE) -> pd.DataFrame:
    """One row per model x condition x evaluation (missing ones NaN), plus the two constant classifiers.

    Rates are fractions with 95% percentile-bootstrap CIs over clips (same seed and resampler as
    :func:`helpers.reporting.report.build_table`). ``accuracy_thesis_style`` is the per-batch mean the thesis
    reports; ``accuracy_at_thesis_share`` is this detector's accuracy re-weighted to the thesis's
    68/1,649 bonafide share. The reference rows use the clips of the model's headline record
    (combined, non-adaptive), or of its first record present; ``one_class`` is True when the clean
    predictions (defense on) are all one class.
    """
    by = _index(records)
    models = models or sorted({r["model"] for r in records if r.get("evaluation") != "reference"})
    rows = []
    for m in models:
        mine = [r for r in records if r["model"] == m and r.get("per_clip", {}).get("y")]
        for cond, _ in CONDITIONS:
            for ev in EVALUATIONS[cond]:
                rows.append(_row(m, cond, ev, by.get((m, cond, ev)), "condition", thesis, n_boot, seed,
                                 thesis_share, batch_size))
        head = by.get((m, *HEADLINE))
        source = head if head is not None and head.get("per_clip", {}).get("y") else (mine[0] if mine else None)
        refs = {r["condition"]: r for r in constant_classifier_records(source["per_clip"]["y"], m)} if source else {}
        for cond, _ in REFERENCES:
            rows.append(_row(m, cond, "reference", refs.get(cond), "reference", thesis, n_boot, seed,
                             thesis_share, batch_size))
    return pd.DataFrame(rows, columns=CLAIM_COLUMNS)


def format_claim_table(df: pd.DataFrame) -> pd.DataFrame:
    """Human-readable strings: percent with 95% CIs, an em dash for anything missing."""
    def ci(r, m):
        return pct(r[m], r[f"{m}_lo"], r[f"{m}_hi"])

    rows = []
    for _, r in df.iterrows():
        n = "—" if not np.isfinite(r["n"]) else (f"{int(r['n'])} ({int(r['n_bonafide'])} bonafide)"
                                                if np.isfinite(r["n_bonafide"]) else f"{int(r['n'])}")
        rows.append({
            "model": r["model"], "condition": r["label"], "evaluation": r["evaluation"],
            "thesis acc. %": pct(r["thesis_accuracy"], digits=2),
            "acc. % (thesis: per-batch mean)": pct(r["accuracy_thesis_style"], digits=2),
            "accuracy %": ci(r, "accuracy"), "balanced acc. %": ci(r, "balanced_accuracy"),
            "bonafide recall %": ci(r, "bonafide_recall"), "spoof recall %": ci(r, "spoof_recall"),
            "EER %": ci(r, "eer"), "acc. at thesis mix %": ci(r, "accuracy_at_thesis_share"),
            "n": n, "one class": {True: "yes", False: "no"}.get(r["one_class"], "—"),
        })
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------------------------------
# 6. the verdict, computed from the numbers

def _get(df: pd.DataFrame, m: str, cond: str, ev: str) -> pd.Series | None:
    sub = df[(df.model == m) & (df.condition == cond) & (df.evaluation == ev)]
    if sub.empty or not bool(sub.iloc[0]["present"]) or not np.isfinite(sub.iloc[0]["accuracy"]):
        return None
    return sub.iloc[0]


def _test(tests: pd.DataFrame | None, m: str, comparison: str) -> pd.Series | None:
    if tests is None or len(tests) == 0:
        return None
    sub = tests[(tests.model == m) & (tests.comparison == comparison)]
    return None if sub.empty else sub.iloc[0]


def verdict(df: pd.DataFrame, tests: pd.DataFrame | None, tolerance: float = 0.03, alpha: float = 0.05,
            low_recall: float = 0.10) -> str:
    """One or two sentences per model, computed from ``claim_table`` and ``headline_tests`` output.

    "Matches the thesis's number" = the thesis's accuracy lies in our 95% CI, or within ``tolerance`` of
    either our pooled or our per-batch accuracy (a number, not yet robustness: the sentences after it say
    which). "Explained by the class mix" = the combined detector is not
    significantly (McNemar, ``alpha``) more accurate than always-spoof, or its bonafide recall is
    below ``low_recall``, or its clean predictions are all one class. "Holds as robustness" =
    significantly above always-spoof and balanced accuracy's CI above 0.5.
    """
    out = []
    for m in dict.fromkeys(df["model"]):
        r = _get(df, m, *HEADLINE)
        if r is None:
            out.append(f"{m}: the combined defense under Pixle (non-adaptive) was not run, so the thesis's claim "
                       "cannot be checked for this model.")
            continue
        acc, lo, hi = r["accuracy"], r["accuracy_lo"], r["accuracy_hi"]
        s = f"{m}: with the combined defense under Pixle our accuracy is {pct_prose(acc, lo, hi)}"
        th = r["thesis_accuracy"]
        if np.isfinite(th):
            near = (np.isfinite(lo) and lo <= th <= hi) or abs(acc - th) <= tolerance or (
                np.isfinite(r["accuracy_thesis_style"]) and abs(r["accuracy_thesis_style"] - th) <= tolerance)
            s += (f", which {'matches' if near else 'does not match'} the thesis's {pct(th, digits=2, unit='%')}"
                  f" (per-batch mean as the thesis computes it: {pct(r['accuracy_thesis_style'], digits=2)}%)")
        ref = _get(df, m, "always_spoof", "reference")
        t = _test(tests, m, "combined vs always spoof")
        sig = None
        if ref is not None:
            s += f"; always answering 'spoof' scores {pct(ref['accuracy'])}% on the same {int(ref['n'])} clips"
        if t is not None:
            sig = bool(t["mcnemar_p"] < alpha and t["accuracy_diff"] > 0)
            worse = t["accuracy_diff"] < 0 and t["mcnemar_p"] < alpha
            how = "significantly more" if sig else "significantly less" if worse else "not significantly more"
            diff = points(t["accuracy_diff"], t["accuracy_diff_lo"], t["accuracy_diff_hi"])
            s += (f", and the combined detector is {how} accurate than that (difference {diff},"
                  f" exact McNemar p = {t['mcnemar_p']:.2g})")
        s += "."
        br, bal = r["bonafide_recall"], r["balanced_accuracy"]
        one = bool(r["one_class"] == True)  # noqa: E712 (numpy bool or None)
        mix = one or (np.isfinite(br) and br < low_recall) or sig is False
        robust = sig is True and np.isfinite(r["balanced_accuracy_lo"]) and r["balanced_accuracy_lo"] > 0.5 and not mix
        stats = (f"balanced accuracy {pct_prose(bal, r['balanced_accuracy_lo'], r['balanced_accuracy_hi'])}, "
                 f"bonafide recall {pct_prose(br, r['bonafide_recall_lo'], r['bonafide_recall_hi'])}")
        balanced_clips = np.isfinite(r["bonafide_share"]) and 0.3 <= r["bonafide_share"] <= 0.7
        sr = r["spoof_recall"]
        side = "bonafide" if np.isfinite(sr) and sr < low_recall else "spoof"
        if mix and (one or (np.isfinite(br) and br < low_recall) or (np.isfinite(sr) and sr < low_recall)):
            s += (f" With {stats}" + (" and clean predictions all one class" if one else "")
                  + f", the combined detector calls nearly every clip {side}: its accuracy is the class mix (the share of "
                  "that class), not robustness.")
        elif mix and balanced_clips:
            s += (f" On these class-balanced clips it is no better than a detector that ignores its input ({stats}): "
                  "no robustness is shown.")
        elif mix:
            s += (f" It is no more accurate than the class mix alone allows ({stats}): the headline accuracy is "
                  "explained by the class mix, not shown to be robustness.")
        elif robust:
            s += f" With {stats}, the claim holds as robustness, not only as the class mix."
        else:
            s += (f" With {stats}, it is open whether this is robustness: part of the accuracy is the class mix.")
        out.append(s)
    return "\n".join(out)


__all__ = ["THESIS_SHARE", "REFERENCES", "CLAIM_COLUMNS", "McNemar", "accuracy_at_share", "per_class_recalls",
           "thesis_accuracy", "constant_classifier_records", "mcnemar_exact", "paired_bootstrap_diff",
           "check_same_clips", "compare", "headline_tests", "claim_table", "format_claim_table", "verdict",
           "SHORT_LABELS"]
