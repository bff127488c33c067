"""Seaborn styling in one place, and the figures the notebooks draw (saved as PNG, shown inline)."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import matplotlib

if not matplotlib.get_backend().lower().startswith(("module://matplotlib_inline", "module://ipykernel")):
    matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
import torch

from helpers.paths import figures_dir
from helpers.thesis import CONDITIONS, THESIS_ACCURACY, THESIS_SHARE

PALETTE = "colorblind"


def style() -> None:
    """The project's look: seaborn whitegrid, colourblind palette, readable sizes."""
    sns.set_theme(style="whitegrid", palette=PALETTE, context="notebook")
    plt.rcParams.update({"figure.dpi": 100, "savefig.dpi": 120, "savefig.bbox": "tight"})


def save(fig: plt.Figure, profile: str, name: str) -> None:
    """Save ``fig`` as ``outputs/<profile>/figures/<name>.png`` (atomically); it is shown inline as usual.

    Returns nothing, so a cell that ends with it prints no stray ``PosixPath(...)``; the path is
    :func:`figure_path`.
    """
    from helpers.io import atomic_path

    with atomic_path(figure_path(profile, name), suffix=".png") as tmp:
        fig.savefig(tmp, format="png")


def figure_path(profile: str, name: str) -> Path:
    return figures_dir(profile) / f"{name}.png"


def _img(t: torch.Tensor) -> np.ndarray:
    t = t.detach().cpu()
    if t.shape[0] == 1:
        return t[0].numpy()
    return t.permute(1, 2, 0).numpy().clip(0, 1)


def show_image(ax: plt.Axes, t: torch.Tensor, title: str = "") -> None:
    ax.imshow(_img(t), cmap="viridis" if t.shape[0] == 1 else None, vmin=0, vmax=1, interpolation="nearest")
    ax.set_title(title, fontsize=9)
    ax.axis("off")


def class_balance(table: pd.DataFrame) -> plt.Figure:
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.2))
    sns.countplot(data=table, x="split", hue="label", order=["train", "val", "test"], ax=axes[0])
    axes[0].set_title("trials by split and label")
    sns.countplot(data=table, y="attack", hue="label", ax=axes[1])
    axes[1].set_title("trials by attack (vocoder)")
    sns.countplot(data=table, x="codec", hue="label", ax=axes[2])
    axes[2].set_title("trials by codec")
    plt.setp(axes[2].get_xticklabels(), rotation=35, ha="right")
    fig.tight_layout()
    return fig


def durations(table: pd.DataFrame, seconds: Sequence[float] | None = None) -> plt.Figure:
    """Clip lengths per class (read from the audio headers when ``seconds`` is not given)."""
    import soundfile as sf

    seconds = [sf.info(p).duration for p in table["path"]] if seconds is None else seconds
    fig, ax = plt.subplots(figsize=(6, 3))
    sns.histplot(x=np.asarray(seconds), hue=table["label"].to_numpy(), bins=20, multiple="stack", ax=ax)
    ax.set_xlabel("clip length (s)")
    ax.set_title("clip-length distribution")
    return fig


def long_term_spectra(df: pd.DataFrame) -> plt.Figure:
    """Left: each bonafide source package's long-term spectrum; right: each spoofing system's, over the mean of the
    bonafide sources (dashed). dB below each clip's peak; from :func:`helpers.reporting.data_views.long_term_spectra`."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.6), sharey=True)
    bona, spoof = df[df["label"] == "bonafide"], df[df["label"] == "spoof"]
    for ax, part, title in ((axes[0], bona, "bonafide, per source package"), (axes[1], spoof, "spoof, per system")):
        groups = list(dict.fromkeys(part["group"]))
        colours = dict(zip(groups, sns.color_palette("tab20" if len(groups) > 10 else PALETTE, len(groups))))
        for gname in groups:
            g = part[part["group"] == gname]
            coded = ", coded" if "coded" in g and g["coded"].iloc[0] else ""
            ax.plot(g["freq_hz"] / 1000, g["db"], lw=1.2, color=colours[gname],
                    label=f"{gname} ({g['clips'].iloc[0]}{coded})")
        ax.set(title=title, xlabel="frequency (kHz)")
        ax.legend(fontsize=6, ncol=2 if len(groups) > 7 else 1, loc="lower left")
    if len(bona):
        ref = bona.groupby("freq_hz")["db"].mean()
        axes[1].plot(ref.index / 1000, ref.values, "k--", lw=1.5, label="bonafide mean")
        axes[1].legend(fontsize=6, ncol=2, loc="lower left")
    axes[0].set_ylabel("dB below the clip's peak (mean of clips)")
    fig.suptitle("long-term average spectra (uncoded clips where a group has them; number of clips in brackets)",
                 fontsize=10)
    fig.tight_layout()
    return fig


def waveforms_and_spectrograms(clips: dict[str, np.ndarray], sr: int = 16000) -> plt.Figure:
    """One column per clip (bonafide and its vocoded copies): waveform above, spectrogram below."""
    n = len(clips)
    fig, axes = plt.subplots(2, n, figsize=(3.2 * n, 4.6), squeeze=False)
    for j, (name, wav) in enumerate(clips.items()):
        t = np.arange(len(wav)) / sr
        axes[0, j].plot(t, wav, lw=0.5)
        axes[0, j].set_title(name, fontsize=10)
        axes[0, j].set_xlabel("s")
        axes[1, j].specgram(wav + 1e-7, NFFT=512, Fs=sr, noverlap=384, cmap="viridis")
        axes[1, j].set_xlabel("s")
        axes[1, j].set_ylabel("Hz" if j == 0 else "")
    fig.tight_layout()
    return fig


def image_grid(x: torch.Tensor, y: torch.Tensor, per_class: int = 8, classes=("bonafide", "spoof")) -> plt.Figure:
    fig, axes = plt.subplots(len(classes), per_class, figsize=(1.3 * per_class, 1.5 * len(classes)), squeeze=False)
    for c, name in enumerate(classes):
        idx = (y == c).nonzero().flatten()[:per_class]
        for j in range(per_class):
            ax = axes[c, j]
            ax.axis("off")
            if j < len(idx):
                show_image(ax, x[idx[j]], name if j == 0 else "")
    fig.tight_layout()
    return fig


def training_curves(histories: dict[str, list[dict]], title: str = "") -> plt.Figure:
    """The thesis's training figures: accuracy and loss per epoch, train and validation, per model."""
    rows = []
    for name, hist in histories.items():
        for h in hist:
            rows += [{"model": name, "epoch": h["epoch"], "split": "train", "accuracy": h["train_accuracy"], "loss": h["train_loss"]},
                     {"model": name, "epoch": h["epoch"], "split": "validation", "accuracy": h["val_accuracy"], "loss": h["val_loss"]}]
    df = pd.DataFrame(rows)
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.6))
    for ax, metric in zip(axes, ("accuracy", "loss")):
        if not df.empty:
            sns.lineplot(data=df, x="epoch", y=metric, hue="model", style="split", marker="o", ax=ax)
        ax.set_title(f"{title} {metric}".strip())
    fig.tight_layout()
    return fig


def det_curves(curves: dict[str, tuple[Sequence[float], Sequence[float]]], title: str = "DET") -> plt.Figure:
    """DET curves on normal-deviate axes (the ASVspoof convention). ``curves[name] = (far, frr)``."""
    from scipy.stats import norm

    fig, ax = plt.subplots(figsize=(4.8, 4.4))
    ticks = np.array([0.01, 0.02, 0.05, 0.1, 0.2, 0.4])
    for name, (far, frr) in curves.items():
        far, frr = np.clip(np.asarray(far), 1e-3, 1 - 1e-3), np.clip(np.asarray(frr), 1e-3, 1 - 1e-3)
        ax.plot(norm.ppf(far), norm.ppf(frr), label=name)
    ax.plot(norm.ppf([1e-3, 0.999]), norm.ppf([1e-3, 0.999]), "k:", lw=0.8)
    ax.set_xticks(norm.ppf(ticks), [f"{t:.0%}" for t in ticks])
    ax.set_yticks(norm.ppf(ticks), [f"{t:.0%}" for t in ticks])
    ax.set_xlim(norm.ppf(0.005), norm.ppf(0.6))
    ax.set_ylim(norm.ppf(0.005), norm.ppf(0.6))
    ax.set_xlabel("false alarm rate (spoof accepted)")
    ax.set_ylabel("miss rate (bonafide rejected)")
    ax.set_title(title)
    ax.legend(fontsize=8)
    return fig


def attack_examples(x: torch.Tensor, adv: torch.Tensor, y: torch.Tensor, pred_adv: torch.Tensor,
                    extra: dict[str, torch.Tensor] | None = None, n: int = 4, classes=("bonafide", "spoof")) -> plt.Figure:
    """Original / adversarial / difference (and optional extra columns such as the blurred image)."""
    extra = extra or {}
    cols = 3 + len(extra)
    fig, axes = plt.subplots(n, cols, figsize=(2.0 * cols, 2.1 * n), squeeze=False)
    for i in range(min(n, len(x))):
        show_image(axes[i, 0], x[i], f"original ({classes[int(y[i])]})")
        show_image(axes[i, 1], adv[i], f"Pixle -> {classes[int(pred_adv[i])]}")
        diff = (adv[i] - x[i]).abs().amax(0, keepdim=True)
        show_image(axes[i, 2], (diff > 0).float(), f"changed pixels: {int((diff > 0).sum())}")
        for j, (name, imgs) in enumerate(extra.items()):
            show_image(axes[i, 3 + j], imgs[i], name)
    fig.tight_layout()
    return fig


def line(df: pd.DataFrame, x: str, y: str, hue: str | None = None, style_col: str | None = None,
         title: str = "", xlabel: str | None = None, ylabel: str | None = None) -> plt.Figure:
    fig, ax = plt.subplots(figsize=(6, 3.6))
    sns.lineplot(data=df, x=x, y=y, hue=hue, style=style_col, marker="o", ax=ax)
    ax.set_title(title)
    ax.set_xlabel(xlabel or x)
    ax.set_ylabel(ylabel or y)
    return fig


def grouped_bars(df: pd.DataFrame, x: str, y: str, hue: str, title: str = "", err: tuple[str, str] | None = None,
                 hatch_col: str | None = None, chance: float | None = 0.5) -> plt.Figure:
    """Bar chart with optional CI whiskers (columns ``err = (low, high)``).

    ``hatch_col``: rows where it is true get hatched bars (one-class detectors). ``chance``: the test
    clips' bonafide share; the accuracies of the two constant classifiers are drawn as reference lines.
    """
    fig, ax = plt.subplots(figsize=(max(7, 1.2 * df[x].nunique() * max(1, df[hue].nunique()) / 2), 4))
    sns.barplot(data=df, x=x, y=y, hue=hue, ax=ax, errorbar=None)
    bars = _bars_in_order(ax, df, x, hue)
    for bar, (_, row) in zip(bars, _rows_in_order(df, x, hue)):
        if bar is None:
            continue
        if hatch_col and bool(row[hatch_col]):
            bar.set_hatch("///")
            bar.set_edgecolor("k")
        if err is not None and np.isfinite(row[err[0]]):
            cx = bar.get_x() + bar.get_width() / 2
            ax.plot([cx, cx], [row[err[0]], row[err[1]]], color="k", lw=1)
    if chance is not None:
        if abs(chance - 0.5) < 1e-9:
            ax.axhline(0.5, ls=":", color="grey", lw=1, label="constant classifier (balanced test clips)")
        else:
            ax.axhline(1 - chance, ls=":", color="firebrick", lw=1, label=f"always spoof ({1 - chance:.1%})")
            ax.axhline(chance, ls=":", color="grey", lw=1, label=f"always bonafide ({chance:.1%})")
    if hatch_col and df[hatch_col].any():
        from matplotlib.patches import Patch

        ax.add_artist(ax.legend(handles=[Patch(facecolor="white", edgecolor="k", hatch="///",
                                               label="one class: calls every clean clip the same")],
                                fontsize=8, loc="lower left"))
    ax.set_title(title)
    ax.set_ylim(0, 1.05)
    plt.setp(ax.get_xticklabels(), rotation=25, ha="right")
    ax.legend(fontsize=8, loc="upper right")
    return fig


def _rows_in_order(df, x, hue):
    xs = list(dict.fromkeys(df[x]))
    hs = list(dict.fromkeys(df[hue]))
    for h in hs:
        for xv in xs:
            sub = df[(df[x] == xv) & (df[hue] == h)]
            if len(sub):
                yield sub.index[0], sub.iloc[0]


def _bars_in_order(ax, df, x, hue):
    return [p for p in ax.patches if p.get_height() == p.get_height() and p.get_width() > 0][: len(df)]


def det_from_records(records: list[dict], title: str = "DET") -> plt.Figure:
    """DET curves of condition records (one curve per record, labelled by model / condition)."""
    from helpers.evaluation.metrics import roc_points

    curves = {}
    for r in records:
        pts = roc_points(r["per_clip"]["y"], r["per_clip"]["score"])
        label = r["model"] if r.get("scope") == "full test split" else f"{r['condition']} ({r['evaluation']})"
        curves[label] = (pts["far"], pts["frr"])
    return det_curves(curves, title)


def attack_examples_for(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, adv: torch.Tensor,
                        extra: dict[str, torch.Tensor] | None = None, per_class: int = 2) -> plt.Figure:
    """Original / adversarial / moved pixels for clips of each class the model had right (Pixle had to move them)."""
    from helpers.models.detectors import predict

    attacked = predict(model, x).argmax(1) == y
    pick = torch.cat([((y == c) & attacked).nonzero().flatten()[:per_class] for c in (0, 1)])
    if len(pick) == 0:
        pick = torch.arange(min(len(x), 2 * per_class))
    extra = {k: v[pick] for k, v in (extra or {}).items()}
    return attack_examples(x[pick], adv[pick], y[pick], predict(model, adv[pick]).argmax(1), extra=extra, n=len(pick))


def budget_curve(curve: dict) -> plt.Figure:
    """Accuracy under Pixle against the number of candidates (``curve = {"candidates": [...], arch: [...]}``)."""
    budgets = curve["candidates"]
    df = pd.DataFrame([{"model": a, "candidates": b, "accuracy": acc}
                       for a, c in curve.items() if a != "candidates" for b, acc in zip(budgets, c)])
    return line(df, "candidates", "accuracy", hue="model", title="accuracy under Pixle vs budget",
                xlabel="candidates (restarts x iterations)")


def sigma_sweep(rows: list[dict]) -> plt.Figure:
    """Clean and non-adaptive accuracy against a fixed blur sigma, per model."""
    return line(pd.DataFrame(rows), "sigma", "accuracy", hue="model", style_col="setting", title="accuracy vs blur sigma")


def eer_breakdown(rows: list[dict]) -> plt.Figure:
    """Clean EER per vocoder, per codec and per speaker, one bar per model (0.5 = chance)."""
    df = pd.DataFrame(rows)
    groups = [b for b in ("vocoder", "codec", "speaker") if b in set(df.get("by", []))]
    fig, axes = plt.subplots(1, max(1, len(groups)), figsize=(5 * max(1, len(groups)), 3.8), squeeze=False)
    for ax, by in zip(axes[0], groups):
        sub = df[df["by"] == by]
        sns.barplot(data=sub, x="group", y="eer", hue="model", ax=ax, errorbar=None)
        ax.axhline(0.5, ls=":", color="grey", lw=1)
        ax.set(title=f"clean EER per {by}", xlabel="", ylabel="EER", ylim=(0, 0.6))
        plt.setp(ax.get_xticklabels(), rotation=35, ha="right", fontsize=8)
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def per_system_eer(rows: list[dict]) -> plt.Figure:
    """Clean EER with 95% CIs per spoofing system (seen / unseen coloured), pooled over seen and unseen
    systems, per family, per codec, and per bonafide speaker (against every spoof); one panel per grouping, one
    marker per model (0.5 = chance)."""
    df = pd.DataFrame(rows)
    kinds = [k for k in ("system", "seen", "family", "codec", "bonafide_speaker") if k in set(df.get("by", []))]
    fig, axes = plt.subplots(1, max(1, len(kinds)), figsize=(4.5 * max(1, len(kinds)), 3.8), squeeze=False,
                             gridspec_kw={"width_ratios": [max(2, (df["by"] == k).sum()) for k in kinds] or [1]})
    markers = dict(zip(sorted(df["model"].unique()) if len(df) else [], "os^Dv"))
    for ax, kind in zip(axes[0], kinds):
        sub = df[df["by"] == kind].reset_index(drop=True)
        labels = [g.split(":", 1)[-1] for g in sub["group"]]
        order = {lab: i for i, lab in enumerate(dict.fromkeys(labels))}
        offsets = {m: (i - (len(markers) - 1) / 2) * 0.25 for i, m in enumerate(markers)}
        for (_, r), lab in zip(sub.iterrows(), labels):
            x = order[lab] + offsets.get(r["model"], 0)
            colour = {"unseen": "tab:red", "seen": "tab:blue"}.get(r.get("seen"), "tab:grey")
            ax.errorbar(x, r["eer"], yerr=[[max(0, r["eer"] - r["ci_low"])], [max(0, r["ci_high"] - r["eer"])]],
                        fmt=markers.get(r["model"], "o"), color=colour, capsize=2, ms=4)
        ax.set_xticks(range(len(order)), list(order), rotation=40, ha="right", fontsize=8)
        ax.axhline(0.5, ls=":", color="grey", lw=1)
        name = {"bonafide_speaker": "bonafide speaker\n(against every spoof)"}.get(kind, kind)
        ax.set(title=f"clean EER per {name}", ylabel="EER (95% CI)", ylim=(0, 1.02))
    handles = [plt.Line2D([], [], marker=mk, ls="", color="k", label=m) for m, mk in markers.items()]
    handles += [plt.Line2D([], [], marker="s", ls="", color=c, label=l) for l, c in (("seen", "tab:blue"),
                                                                                     ("unseen", "tab:red"))]
    axes[0][0].legend(handles=handles, fontsize=7)
    fig.tight_layout()
    return fig


def minutes_per_speaker(summary: pd.DataFrame) -> plt.Figure:
    """Bonafide minutes per speaker, coloured by language."""
    fig, ax = plt.subplots(figsize=(8, 3.2))
    if "minutes" in summary:
        sns.barplot(data=summary, x="speaker", y="minutes", hue="language", dodge=False, ax=ax)
        plt.setp(ax.get_xticklabels(), rotation=40, ha="right", fontsize=8)
        ax.set(title="bonafide minutes per speaker (whole corpus)", xlabel="")
        ax.legend(fontsize=7, ncol=2, title="language")
    return fig


def accuracy_vs_share(df: pd.DataFrame, shares=np.linspace(0.02, 0.5, 49), thesis_share: float = THESIS_SHARE,
                      thesis_points: dict[tuple[str, str], float] = THESIS_ACCURACY) -> plt.Figure:
    """Accuracy against the test set's bonafide share, one panel per model.

    Each condition present in ``df`` (a :func:`helpers.evaluation.claim.claim_table`) is a line computed
    exactly from its per-class recalls; the constant classifiers are dashed grey lines; a vertical dotted line marks
    the thesis's share and the thesis's reported accuracies are drawn as points (``x``) on it.
    Conditions whose clean predictions are all one class are labelled "(one class)". Lines per
    panel: one per condition with recalls, two references, one vertical marker (thesis points are
    a scatter collection, not lines).
    """
    from helpers.evaluation.claim import REFERENCES, SHORT_LABELS, accuracy_at_share

    shares = np.asarray(shares, dtype=float)
    models = list(dict.fromkeys(df["model"]))
    fig, axes = plt.subplots(1, max(1, len(models)), figsize=(6.2 * max(1, len(models)), 6.4), squeeze=False,
                             sharey=True)
    conds = [c for c, _ in CONDITIONS]
    colors = dict(zip(conds, sns.color_palette(PALETTE, len(conds))))
    for ax, m in zip(axes[0], models):
        sub = df[df.model == m]
        for _, r in sub[sub.kind == "condition"].iterrows():
            if not (np.isfinite(r["bonafide_recall"]) and np.isfinite(r["spoof_recall"])):
                continue
            lab = SHORT_LABELS.get(r["condition"], r["label"])
            lab += (f" ({r['evaluation']})" if r["evaluation"] != "clean" else "")
            lab += " (one class)" if bool(r["one_class"] == True) else ""  # noqa: E712 (numpy bool or None)
            ax.plot(100 * shares, 100 * accuracy_at_share(r["bonafide_recall"], r["spoof_recall"], shares),
                    color=colors.get(r["condition"]), ls=":" if r["evaluation"] == "adaptive" else "-", lw=1.8,
                    label=lab)
        for cond, lab in REFERENCES:
            rec_rows = sub[sub.condition == cond]
            r = rec_rows.iloc[0] if len(rec_rows) else None
            known = r is not None and np.isfinite(r["bonafide_recall"])
            br = r["bonafide_recall"] if known else float(cond == "always_bonafide")
            sr = r["spoof_recall"] if known else float(cond == "always_spoof")
            ax.plot(100 * shares, 100 * accuracy_at_share(br, sr, shares), ls="--", lw=1.2,
                    color="0.35" if cond == "always_spoof" else "0.65", label=lab)
        ax.axvline(100 * thesis_share, ls=":", color="k", lw=1,
                   label=f"thesis test set ({100 * thesis_share:.1f}% bonafide)")
        pts = [(c, v) for (mm, c), v in thesis_points.items() if mm == m]
        if pts:
            ax.scatter([100 * thesis_share] * len(pts), [v for _, v in pts], marker="X", s=80, zorder=5,
                       c=[colors.get(c, "k") for c, _ in pts], edgecolors="k", linewidths=0.6,
                       label="thesis's reported accuracy")
        ax.set_title(m)
        ax.set_xlabel("bonafide share of the test set (%)")
        ax.set_xlim(100 * min(shares.min(), thesis_share) - 1, 100 * shares.max() + 1)
        ax.set_ylim(-2, 102)
        ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2, frameon=False)
    axes[0, 0].set_ylabel("accuracy (%)")
    fig.suptitle("Accuracy is a mix of per-class recalls: acc = share x bonafide recall + (1 - share) x spoof recall",
                 fontsize=10)
    fig.tight_layout()
    return fig


def success_curves(records: list[dict]) -> plt.Figure:
    """Notebook 06: success against budget, one row of panels per model: L0 (pixels) for the image attacks, SNR
    (dB) for the audio ones; colour = defense, solid = Sparse-RS / StftPixle, dashed = Pixle / SquareAudio.

    For each attacked clip the attack fooled, its L0 or SNR is the budget it needed; a curve gives the share
    of attacked clips fooled within each budget (L0 <= b, or SNR >= b).
    """
    from helpers.experiments.realizable import DEFENSES

    models = sorted({r["model"] for r in records})
    colours = dict(zip([d for d, _, _ in DEFENSES], sns.color_palette("colorblind", len(DEFENSES))))
    style = {"sparse_rs": "-", "pixle": "--", "stft_pixle": "-", "square_audio": "--"}
    fig, axes = plt.subplots(len(models), 2, figsize=(12, 3.6 * len(models)), squeeze=False)
    for r in records:
        pc = r["per_clip"]
        y, pred = np.asarray(pc["y"]), np.asarray(pc["pred"])
        att = np.asarray(pc.get("attacked", [1] * len(y)), dtype=bool)
        fooled, denom = att & (pred != y), max(int(att.sum()), 1)
        row = models.index(r["model"])
        kw = dict(color=colours.get(r["condition"]), ls=style.get(r["evaluation"], ":"), lw=1.4,
                  label=f"{r['condition']} · {r['evaluation']}")
        if "snr_db" in pc:
            snr, grid = np.asarray(pc["snr_db"], dtype=float), np.linspace(0, 60, 121)
            axes[row, 1].plot(grid, [(fooled & (snr >= b)).sum() / denom for b in grid], **kw)
        elif "l0" in pc:
            l0 = np.asarray(pc["l0"], dtype=float)
            grid = np.arange(0, int(np.nanmax(np.r_[l0, 1])) + 2)
            axes[row, 0].step(grid, [(fooled & (l0 <= b)).sum() / denom for b in grid], where="post", **kw)
    for row, m in enumerate(models):
        axes[row, 0].set(xlabel="pixels changed (L0)", ylabel="attack success",
                         title=f"{m}: image attacks (solid Sparse-RS, dashed Pixle)")
        axes[row, 1].set(xlabel="SNR of the perturbation (dB; higher = quieter)", ylabel="attack success",
                         title=f"{m}: audio attacks (solid StftPixle, dashed SquareAudio)")
        for ax in axes[row]:
            ax.set_ylim(0, 1.02)
            ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    return fig
