"""The results table and report: every condition next to the thesis's numbers, with 95% CIs.

``collect_records`` reads only ``outputs/<profile>/metrics/*.json``; ``build_table`` turns the
condition records into one row per model x condition x evaluation, with percentile-bootstrap
confidence intervals over test clips (:func:`helpers.evaluation.metrics.bootstrap_ci`). A condition that
was not run shows as missing (NaN / "—"), never as zero.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from helpers.io import load_json
from helpers.evaluation.metrics import accuracy, balanced_accuracy, bootstrap_ci, eer
from helpers.evaluation.claim import claim_table, format_claim_table, headline_tests, verdict as claim_verdict
from helpers.reporting.format import number, pct
from helpers.thesis import CONDITIONS, DEFENDED, EVALUATIONS, THESIS_ACCURACY

METRIC_COLUMNS = ["clean_accuracy", "accuracy", "balanced_accuracy", "eer", "attack_success_rate", "queries", "l0"]


def collect_records(metrics_dir: Path) -> tuple[list[dict], dict]:
    """All condition records in the metrics folder, and the header (dataset, profile) they share."""
    records, header = [], {"data_keys": {}}
    for f in sorted(Path(metrics_dir).glob("*.json")):
        data = load_json(f)
        if "data_key" in data:
            header["data_keys"][f.name] = data["data_key"]
        if "train" in data and f.name.startswith("01_"):
            header["train"] = data["train"]
        for k in ("dataset", "profile", "features", "protocol"):
            if k in data:
                header.setdefault(k, data[k])
        for r in data.get("records", []):
            records.append({**r, "source": f.name})
    return records, header


def one_class_warnings(records: list[dict]) -> list[str]:
    """Conditions whose clean predictions (defense on) are all one class.

    Such a detector is right on exactly the clips of that class whatever the attacker does, so
    its "accuracy under attack" measures the class mix of the test clips, not robustness.
    """
    from helpers.data.corpus import CLASSES

    out, seen = [], set()
    for r in records:
        preds = r.get("per_clip", {}).get("pred_clean")
        key = (r["model"], r["condition"])
        if not preds or len(preds) < 2 or key in seen or len(set(preds)) != 1:
            continue
        seen.add(key)
        label = dict(CONDITIONS).get(r["condition"], r["condition"])
        setting = "with the defense on, the detector" if r["condition"] in DEFENDED else "the detector"
        out.append(f"{r['model']}, {label}: {setting} calls every clean clip '{CLASSES[preds[0]]}'; its accuracy "
                   "(under attack too) is the share of that class, not detection or robustness.")
    return out


def _ci(rec: dict, metric: str, n_boot: int, seed: int) -> tuple[float, float]:
    pc = rec.get("per_clip", {})
    y = np.asarray(pc.get("y", []))
    if len(y) == 0:
        return (np.nan, np.nan)
    pred, score = np.asarray(pc.get("pred", [])), np.asarray(pc.get("score", []), dtype=float)
    if metric == "accuracy":
        return bootstrap_ci(accuracy, [y, pred], n_boot, seed=seed)
    if metric == "balanced_accuracy":
        return bootstrap_ci(balanced_accuracy, [y, pred], n_boot, seed=seed)
    if metric == "eer":
        return bootstrap_ci(eer, [y, score], n_boot, seed=seed)
    if metric == "clean_accuracy" and "pred_clean" in pc:
        return bootstrap_ci(accuracy, [y, np.asarray(pc["pred_clean"])], n_boot, seed=seed)
    if metric == "attack_success_rate" and ("attacked" in pc or "pred_clean" in pc):
        attacked = np.asarray(pc["attacked"], dtype=bool) if "attacked" in pc else np.asarray(pc["pred_clean"]) == y
        return bootstrap_ci(_success_among, [y, pred, attacked], n_boot, seed=seed)
    return (np.nan, np.nan)


def _success_among(y: np.ndarray, pred: np.ndarray, attacked: np.ndarray) -> float:
    """Attack success: among the clips the attack worked on, the share it got misclassified."""
    return float((pred[attacked] != y[attacked]).mean()) if attacked.any() else float("nan")


def build_table(records: list[dict], models: list[str] | None = None, n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    """One row per model x condition x evaluation (all expected rows, missing ones as NaN)."""
    by_key = {(r["model"], r["condition"], r["evaluation"]): r for r in records}
    models = models or sorted({r["model"] for r in records})
    rows = []
    for m in models:
        for cond, label in CONDITIONS:
            for ev in EVALUATIONS[cond]:
                rec = by_key.get((m, cond, ev))
                row = {"model": m, "condition": cond, "condition_key": cond, "label": label, "evaluation": ev,
                       "present": rec is not None}
                for col in METRIC_COLUMNS:
                    val = rec.get(col, np.nan) if rec else np.nan
                    row[col] = np.nan if val is None else val
                    lo, hi = _ci(rec, col, n_boot, seed) if rec else (np.nan, np.nan)
                    row[f"{col}_lo"], row[f"{col}_hi"] = lo, hi
                row["n"] = rec.get("n", np.nan) if rec else np.nan
                thesis = THESIS_ACCURACY.get((m, cond)) if ev in ("non-adaptive",) else None
                row["thesis_accuracy"] = thesis / 100 if thesis is not None else np.nan
                rows.append(row)
    return pd.DataFrame(rows)


def format_table(df: pd.DataFrame) -> pd.DataFrame:
    """Human-readable: percentages with 95% CIs, missing values as an em dash."""
    out = pd.DataFrame({
        "model": df["model"], "condition": df["label"], "evaluation": df["evaluation"],
        "clean acc. (defense on) %": [pct(r.clean_accuracy, r.clean_accuracy_lo, r.clean_accuracy_hi) for r in df.itertuples()],
        "accuracy %": [pct(r.accuracy, r.accuracy_lo, r.accuracy_hi) for r in df.itertuples()],
        "balanced acc. %": [pct(r.balanced_accuracy, r.balanced_accuracy_lo, r.balanced_accuracy_hi) for r in df.itertuples()],
        "EER %": [pct(r.eer, r.eer_lo, r.eer_hi) for r in df.itertuples()],
        "attack success %": [pct(r.attack_success_rate, r.attack_success_rate_lo, r.attack_success_rate_hi) for r in df.itertuples()],
        "mean queries": [number(r.queries) for r in df.itertuples()],
        "mean L0 (pixels)": [number(r.l0) for r in df.itertuples()],
        "thesis accuracy %": [pct(v, digits=2, missing="") for v in df["thesis_accuracy"]],
    })
    return out


def to_markdown(df: pd.DataFrame) -> str:
    cols = list(df.columns)
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for _, r in df.iterrows():
        lines.append("| " + " | ".join(str(r[c]) for c in cols) + " |")
    return "\n".join(lines)


def write_report(path: Path, header: dict, table: pd.DataFrame, figures: list[Path], notes: list[str],
                 verdict: str = "", claim: pd.DataFrame | None = None, realizable: str = "",
                 certified: str = "") -> Path:
    from helpers.io import atomic_write

    corpus = header.get("dataset", "?")
    md = [f"# Results — corpus `{corpus}`, profile `{header.get('profile', '?')}`", ""]
    if verdict:
        md += ["## Does the thesis's claim hold?", "", verdict, ""]
        if claim is not None:
            md += [to_markdown(claim), ""]
        md += ["![accuracy vs bonafide share](figures/05_accuracy_vs_bonafide_share.png)", ""]
    md += ["## All conditions", "",
          f"Every number below was produced on the **{corpus}** corpus with the **{header.get('profile')}** profile "
          f"(features `{header.get('features')}`). The thesis's own numbers (ASVspoof 2021 DF, its settings) are "
          "shown for reference only; they come from a different corpus and must not be read as ours.", "",
          "Rates in percent with 95% percentile-bootstrap confidence intervals over test clips. *Non-adaptive*: "
          "Pixle attacks the bare model and the blur is applied afterwards (the thesis). *Adaptive*: Pixle queries "
          "the defended pipeline. '—' = not run.", "", to_markdown(format_table(table)), ""]
    if realizable:
        md += ["## Attacks an adversary can mount, and a stronger check of Pixle (notebook 06)", "", realizable, ""]
    if certified:
        md += ["## A defense with a guarantee: certified robustness by randomized ablation (notebook 07)", "", certified, ""]
    md += ["## Notes", ""] + [f"- {n}" for n in notes] + [""]
    md += ["## Figures", ""] + [f"![{p.stem}](figures/{p.name})" for p in figures] + [""]
    return atomic_write(path, "\n".join(md))


def protocol_line(header: dict) -> str:
    """Corpus, profile, features, class mix and split grouping of a run, in one sentence."""
    proto = header.get("protocol") or {}
    share = proto.get("bonafide_share")
    mix = "the corpus's own class mix" if share is None else f"bonafide share {share:g}"
    test_share = proto.get("test_bonafide_share")
    test = f" (test split: {proto.get('n_test')} clips, bonafide share {test_share:.3f})" if test_share is not None else ""
    train = f"; detectors trained with {training_line(header['train'])}" if header.get("train") else ""
    shape = f" ({'x'.join(map(str, proto['feature_shape']))} images)" if proto.get("feature_shape") else ""
    if proto.get("held_in_test"):   # UNSEEN_VOICE_SPEAKER = "test"
        test += f", speaker(s) {', '.join(proto['held_in_test'])} held in test (an unseen voice was built from them)"
    return (f"corpus `{header.get('dataset', '?')}`, profile `{header.get('profile', '?')}`, features "
            f"`{header.get('features', '?')}`{shape}, sampled with {mix}, split by **{proto.get('split_by', '?')}** "
            f"{proto.get('split', '')}{test}{train}")


THESIS_RECIPE = {"epochs": 10, "batch_size": 16, "lr": 0.001, "momentum": 0.9, "schedule": "constant", "warmup_epochs": 0}


def training_line(train: dict) -> str:
    """The baselines' recipe, and every deviation from the thesis's (SGD lr 1e-3 constant, momentum 0.9, batch 16, 10 epochs)."""
    diffs = [f"{k} {train.get(k)} (thesis {v})" for k, v in THESIS_RECIPE.items() if train.get(k, v) != v]
    return ("the thesis's recipe (SGD lr 1e-3, momentum 0.9, batch 16, 10 epochs)" if not diffs else
            "SGD, deviations from the thesis's recipe: " + ", ".join(diffs))


def one_class_conditions(records: list[dict]) -> set[tuple[str, str]]:
    """(model, condition) pairs whose clean predictions (defense on) are all one class."""
    out = set()
    for r in records:
        preds = r.get("per_clip", {}).get("pred_clean")
        if preds and len(preds) > 1 and len(set(preds)) == 1:
            out.add((r["model"], r["condition"]))
    return out


@dataclass
class Results:
    """Everything 05 shows and writes, computed once from ``outputs/<profile>/metrics``."""

    profile: str
    records: list[dict]
    header: dict
    table: pd.DataFrame
    claim: pd.DataFrame
    tests: pd.DataFrame
    notes: list[str] = field(default_factory=list)
    realizable: list[dict] = field(default_factory=list)     # notebook 06's records, if it ran and is current
    realizable_stage: dict = field(default_factory=dict)     # the rest of 06's record (budgets, config)
    n_boot: int = 1000
    seed: int = 0
    certified: object | None = None   # notebook 07's record (CertifiedStage), if it ran
    _realizable_md: str | None = field(default=None, repr=False)

    def realizable_markdown(self) -> str:
        """06's rows for the report: what they say, accuracy under every attack, the full table; "" if 06 has not
        run (or is out of date: then the notes say so). Computed once."""
        if not self.realizable:
            return ""
        if self._realizable_md is None:
            from helpers.experiments.realizable import accuracy_matrix, format_realizable, realizable_table, summary_markdown

            df = realizable_table(self.realizable, n_boot=self.n_boot, seed=self.seed)
            self._realizable_md = "\n\n".join([
                summary_markdown(df, self.realizable_stage.get("budgets", {}), self.realizable_stage.get("config")),
                "Accuracy % [95% CI] under each attack (every defense inside what the attacker queries; Pixle's rows "
                "are its own results from 02-04, adaptive where the blur is on):", to_markdown(accuracy_matrix(df)),
                "Every measure, with attack success, queries and L0 (pixels) or the median SNR of fooled clips (dB):",
                to_markdown(format_realizable(df))])
        return self._realizable_md

    def certified_markdown(self) -> str:
        """07's guarantee against the attacks' L0 budget, one sentence per model, and its summary table; "" if 07
        has not run."""
        if self.certified is None:
            return ""
        from helpers.experiments.certified import summary_table, verdict_markdown

        df = summary_table(self.certified)
        rates = [c for c in df.columns if c not in ("model", "Pixle L0", "median radius", "adaptive flips within radius",
                                                    "attacked within radius")]
        for c in rates:
            df[c] = [pct(v) for v in df[c]]
        df["Pixle L0"] = [number(v, 0) for v in df["Pixle L0"]]
        # a median of an even count can fall between radii: -0.5 (half the clips wrong or abstaining) stays -0.5
        df["median radius"] = [number(v, 0 if float(v).is_integer() else 1) for v in df["median radius"]]
        cfg = self.certified.config
        head = (f"Smoothed detectors: base ResNets trained on images with all but k={cfg.get('k')} pixels ablated, "
                f"majority over n={cfg.get('n')} ablations (n0={cfg.get('n0')} to select the class), Clopper-Pearson "
                f"alpha={cfg.get('alpha')}; rates in % of the clips each model was evaluated on (n in the sentences "
                "above); "
                "'cert@r' = certified accuracy at L0 radius r (right and certified for every change of r pixels).")
        return "\n\n".join([verdict_markdown(self.certified), head, to_markdown(df)])

    def verdict_markdown(self) -> str:
        return (f"**Run:** {protocol_line(self.header)}.\n\n**Verdict:** {claim_verdict(self.claim, self.tests)}\n\n"
                "**Significance** (paired over the same test clips: bootstrap 95% CI of the difference, exact "
                "McNemar test on which clips each gets right):\n\n" + tests_markdown(self.tests))

    def claim_display(self) -> pd.DataFrame:
        return format_claim_table(self.claim)

    def share_figure(self):
        from helpers.reporting import figures as plots

        return plots.accuracy_vs_share(self.claim)

    def full_display(self) -> pd.DataFrame:
        return format_table(self.table)

    def accuracy_figure(self):
        from helpers.reporting import figures as plots

        bars = self.table[self.table["present"]].copy()
        bars["condition"] = bars["label"] + " (" + bars["evaluation"] + ")"
        one = one_class_conditions(self.records)
        bars["one_class"] = [(m, c) in one for m, c in zip(bars["model"], bars["condition_key"])]
        return plots.grouped_bars(bars, "condition", "accuracy", "model", "accuracy by condition (95% CI)",
                                  err=("accuracy_lo", "accuracy_hi"), hatch_col="one_class",
                                  chance=self.attacked_share())

    def attacked_share(self) -> float | None:
        """Bonafide share of the clips the conditions were evaluated on (02's attacked subset)."""
        ys = [r["per_clip"]["y"] for r in self.records if r.get("per_clip", {}).get("y")]
        return float(np.mean(np.asarray(ys[0]) == 0)) if ys else None

    def det_figures(self) -> dict:
        from helpers.reporting import figures as plots

        return {m: plots.det_from_records([r for r in self.records if r["model"] == m
                                           and r.get("scope") != "full test split"], f"{m}: DET per condition")
                for m in sorted({r["model"] for r in self.records})}

    def write(self) -> Path:
        from helpers.reporting import figures as plots
        from helpers.paths import profile_dir

        out = profile_dir(self.profile)
        self.table.drop(columns=["present"]).to_csv(out / "results.csv", index=False)
        self.claim.to_csv(out / "claim.csv", index=False)
        figs = sorted(plots.figure_path(self.profile, "x").parent.glob("*.png"))
        return write_report(out / "report.md", self.header, self.table, figs, self.notes,
                            verdict=self.verdict_markdown(), claim=self.claim_display(),
                            realizable=self.realizable_markdown(), certified=self.certified_markdown())


def tests_markdown(tests: pd.DataFrame) -> str:
    """One bullet per headline comparison, with the differences, their CIs and the McNemar p-value."""
    if tests is None or tests.empty:
        return "- (no comparison could be made: the combined defense was not evaluated)"
    out = []
    for t in tests.itertuples():
        out.append(f"- {t.model}, {t.comparison} (n={t.n}): accuracy {pct(t.accuracy_a, unit='%')} vs "
                   f"{pct(t.accuracy_b, unit='%')}, difference "
                   f"{pct(t.accuracy_diff, t.accuracy_diff_lo, t.accuracy_diff_hi, unit=' points', signed=True)}; "
                   "balanced accuracy difference "
                   f"{pct(t.balanced_accuracy_diff, t.balanced_accuracy_diff_lo, t.balanced_accuracy_diff_hi, signed=True)}; "
                   f"McNemar b={t.mcnemar_b}, c={t.mcnemar_c}, p={t.mcnemar_p:.3g}")
    return "\n".join(out)


def collect(profile: str, n_boot: int = 1000, seed: int = 0) -> Results:
    """Read every metrics file of ``profile`` and compute the tables, the claim analysis and the notes."""
    from helpers.paths import metrics_dir

    records, header = collect_records(metrics_dir(profile))
    realizable = [r for r in records if r.get("source") == "06_realizable.json"]
    records = [r for r in records if r.get("source") != "06_realizable.json"]
    if not records:
        raise FileNotFoundError(f"outputs/{profile}/metrics holds no condition records: run notebooks 01-04 first "
                                f"(python run_all.py --profile {profile})")
    models = sorted({r["model"] for r in records})
    records = [r for r in records if r.get("scope") != "full test split"]
    table = build_table(records, models, n_boot=n_boot, seed=seed)
    claim = claim_table(records, n_boot=n_boot, seed=seed)
    tests = headline_tests(records, n_boot=n_boot, seed=seed)
    notes = [f"Run: {protocol_line(header)}.",
             "Non-adaptive: Pixle attacked the bare model and the blur was applied afterwards (the thesis). Adaptive: "
             "Pixle queried model + blur (expectation over transformation when EOT > 1).",
             "Adversarial training without preprocessing is attacked directly, which is already adaptive; it has one row."]
    notes += [f"**Warning**: {w}" for w in one_class_warnings(records)]
    if len(set(header.get("data_keys", {}).values())) > 1:
        notes.append("**Warning**: the metrics files were computed on different data "
                     f"({header['data_keys']}): some notebooks ran with other parameters; re-run them all "
                     f"(python run_all.py --profile {profile})")
    if header.get("train"):
        notes.append(f"Training: {training_line(header['train'])}.")
    stage06 = {}
    if realizable:
        from helpers.io import load_json
        from helpers.experiments.realizable import upstream

        stage06 = {k: v for k, v in load_json(metrics_dir(profile) / "06_realizable.json").items() if k != "records"}
        if stage06.get("inputs") != upstream(profile):
            notes.append("**Warning**: notebook 06's results were computed for other detectors, Pixle settings or blur "
                         "than 01-04's current ones and are left out of this report: re-run it "
                         f"(python run_all.py --profile {profile} --only 06)")
            realizable, stage06 = [], {}
    from helpers.experiments.certified import CertifiedStage
    from helpers.experiments.stages import read_stage

    certified = read_stage(profile, CertifiedStage, required=False)
    return Results(profile, records, header, table, claim, tests, notes, realizable, stage06, n_boot, seed, certified)
