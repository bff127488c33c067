"""Attacks an adversary can actually mount (notebook 06), and a stronger check of Pixle.

Pixle edits the 32x32 colour image; an attacker of a deployed detector controls the audio. This
stage attacks the detectors of 01 and 04, bare and behind the blur of 03, with

- ``stft_pixle`` (:class:`helpers.attacks.audio.StftPixle`): Pixle's rearrangement applied to patches
  of the STFT magnitude, resynthesised with the original phase, so every query is a waveform;
- ``square_audio`` (:class:`helpers.attacks.audio.SquareAudio`): Square-Attack-style random search on
  the waveform under an SNR budget (Andriushchenko et al., ECCV 2020);
- ``sparse_rs`` (:class:`helpers.attacks.sparse_rs.SparseRS`): the state-of-the-art score-based L0 attack
  (Croce et al., AAAI 2022) in Pixle's own threat model (image pixels), at Pixle's L0 and query budgets,

each through the whole pipeline (features, blur, detector): every defense sits inside what the
attacker queries, so these attacks are adaptive by construction. Pixle's own per-clip results on the
same clips (from 02-04) are put beside them. Every attack is called through the one contract
(:class:`helpers.attacks.base.Attack`), and its :class:`~helpers.attacks.base.AttackResult` goes straight into
:func:`helpers.evaluation.attack_loop.record`. The figure is :func:`helpers.reporting.figures.success_curves`.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import ClassVar

import numpy as np
import torch

from helpers.attacks.audio import AudioPipeline, SquareAudio, StftPixle, attack_clips, audio_logits
from helpers.attacks.sparse_rs import SparseRS
from helpers.data.audio import load_audio, write_flac
from helpers.defenses.smoothing import Defended
from helpers.evaluation.attack_loop import record
from helpers.experiments.pipeline import Prepared
from helpers.experiments.stages import (STAGES, AdversarialStage, Attacked, BaselinesStage, BlurConfig, PixleStage,
                                        SmoothingStage, StageRecord, attack_subset, attacked_clips, load_detector,
                                        read_stage, rel)
from helpers.io import cache_key, load_json, read_or_quarantine, save_json
from helpers.models.detectors import predict
from helpers.paths import cache_dir, profile_dir
from helpers.progress import report
from helpers.reporting.format import number, pct

# Bumped when a fix changes results for the same inputs, so cached attack runs are recomputed.
# 2: detectors stay in eval mode (before, BatchNorm ran in training mode after the first audio attack).
VERSION = 2
ATTACKS: tuple[str, ...] = ("stft_pixle", "square_audio", "sparse_rs")
DEFENSES: tuple[tuple[str, str, bool], ...] = (   # name, detector kind, blur inside
    ("baseline", "baseline", False), ("smoothing", "baseline", True),
    ("adv_training", "adversarial", False), ("combined", "adversarial", True))
# Pixle's record for the same detector and defense (its adaptive evaluation where the blur is on)
PIXLE_RECORD = {"baseline": ("02_pixle", "baseline_pixle", "non-adaptive"),
                "smoothing": ("03_smoothing", "smoothing_pixle", "adaptive"),
                "adv_training": ("04_adversarial_training", "adv_training_pixle", "non-adaptive"),
                "combined": ("04_adversarial_training", "combined_pixle", "adaptive")}


@dataclass(frozen=True)
class RealizableConfig:
    """Budgets of notebook 06 (``REALIZABLE_*`` parameters)."""

    n_clips: int = 32                       # class-balanced where 02's clips allow, from the clips 02 attacked
    stft_restarts: int = 4                  # StftPixle budget: Pixle's restarts x iterations by default
    stft_iterations: int = 25
    stft_freq_dim: tuple = (0.02, 0.1)      # patch height, fraction of the frequency bins
    stft_time_dim: tuple = (0.02, 0.1)      # patch width, fraction of the frames
    square_snr_db: float = 30.0             # SquareAudio's budget: perturbation at least this far below the clip
    square_queries: int = 100
    sparse_rs_k: int | None = None          # None: Pixle's mean L0 on each model's baseline (02)
    sparse_rs_queries: int | None = None    # None: Pixle's restarts x iterations (02)
    seed: int = 2022

    @classmethod
    def from_params(cls, ns: dict) -> "RealizableConfig":
        return cls(ns["REALIZABLE_N"], ns["STFT_RESTARTS"], ns["STFT_ITERATIONS"], tuple(ns["STFT_FREQ_DIM"]),
                   tuple(ns["STFT_TIME_DIM"]), float(ns["SQUARE_SNR_DB"]), ns["SQUARE_QUERIES"], ns["SPARSE_RS_K"],
                   ns["SPARSE_RS_QUERIES"], ns["SEED"])


@dataclass
class RealizableStage(StageRecord):
    NAME: ClassVar[str] = "06_realizable"
    NOTEBOOK: ClassVar[str] = "06_realizable_attacks"
    config: dict = field(default_factory=dict)
    budgets: dict = field(default_factory=dict)
    clips: list[int] = field(default_factory=list)        # positions within 02's attacked clips
    records: list[dict] = field(default_factory=list)
    examples: dict = field(default_factory=dict)          # name -> relative path of a FLAC
    seconds: dict = field(default_factory=dict)
    key: str = ""                                         # what produced it: a re-run with the same key reuses it
    inputs: dict = field(default_factory=dict)            # the 01-04 outputs it attacked (see :func:`upstream`)


STAGES[RealizableStage.NAME] = RealizableStage   # the registry of stage records (stages.py) gains notebook 06's


def upstream(profile: str) -> dict:
    """What 06's results depend on, read from the current 01-04 records: the detectors' checkpoints, Pixle's
    settings and clips, the blur. 05 compares it with what 06 recorded to tell whether 06 is out of date."""
    base = read_stage(profile, BaselinesStage, required=False)
    pix = read_stage(profile, PixleStage, required=False)
    smooth = read_stage(profile, SmoothingStage, required=False)
    at = read_stage(profile, AdversarialStage, required=False)
    return {"baselines": base.checkpoints if base else None, "at": at.checkpoints if at else None,
            "attack": pix.attack if pix else None, "subset": list(pix.subset) if pix else None,
            "blur": smooth.blur if smooth else None}


def _pixle_budget(pix: PixleStage, arch: str) -> tuple[int, int]:
    """(mean L0 of Pixle on this model's attacked baseline clips, rounded; restarts x iterations) from 02."""
    l0s = [r["l0"] for r in pix.records if r["condition"] == "baseline_pixle" and r["model"] == arch
           and r.get("l0") is not None and np.isfinite(r["l0"])]
    cfg = pix.attack_config()
    return max(1, int(round(float(np.mean(l0s))))) if l0s else 32, cfg.restarts * cfg.max_iterations


def _load_waves(prep: Prepared, clips: Attacked, pos: torch.Tensor) -> list[torch.Tensor]:
    trials = [prep.sets["test"].trials[int(i)] for i in clips.subset[pos]]
    paths = prep.table.set_index("trial").loc[trials, "path"]
    return [torch.from_numpy(load_audio(p)[0]) for p in paths]


def _pixle_reference(profile: str, arch: str, defense: str, pos: torch.Tensor) -> dict | None:
    """Pixle's own record for this detector and defense, restricted to the 06 clips."""
    name, cond, ev = PIXLE_RECORD[defense]
    stage = {"02_pixle": PixleStage, "03_smoothing": SmoothingStage,
             "04_adversarial_training": AdversarialStage}[name]
    rec = next((r for r in getattr(read_stage(profile, stage, required=False), "records", [])
                if r["model"] == arch and r["condition"] == cond and r["evaluation"] == ev), None)
    if rec is None:
        return None
    pc, p = rec["per_clip"], pos.tolist()
    pick = {k: [v[i] for i in p] for k, v in pc.items() if isinstance(v, list) and len(v) == len(pc["y"])}
    att = np.asarray(pick.get("attacked", [1] * len(p)), dtype=bool)
    mean = lambda k: float(np.asarray(pick[k], dtype=float)[att].mean()) if att.any() else float("nan")  # noqa: E731
    return {"model": arch, "condition": defense, "evaluation": "pixle", "domain": "image (L0)", "n": len(p),
            "accuracy": float(np.mean(np.asarray(pick["pred"]) == np.asarray(pick["y"]))),
            "queries": mean("queries"), "l0": mean("l0"), "per_clip": pick, "source": f"{name}.json ({cond}, {ev})"}


def run_realizable(profile: str, prep: Prepared, cfg: RealizableConfig, device: str | torch.device = "cpu"):
    """06: every detector x defense under StftPixle, SquareAudio and Sparse-RS (adaptive), Pixle beside them."""
    clips = attacked_clips(profile, prep)
    blur_cfg: BlurConfig = read_stage(profile, SmoothingStage).blur_config()
    at = read_stage(profile, AdversarialStage, required=False)
    read_stage(profile, BaselinesStage)               # names notebook 01 if it has not run
    archs = list(clips.stage.adv_cache)
    # Sparse-RS gets each model's own Pixle budget: the pixels Pixle changed on that baseline, Pixle's queries
    pixle_budget = {a: _pixle_budget(clips.stage, a) for a in archs}
    sparse_budget = {a: (cfg.sparse_rs_k or k, cfg.sparse_rs_queries or q) for a, (k, q) in pixle_budget.items()}
    inputs = upstream(profile)
    key = cache_key({"version": VERSION, "cfg": asdict(cfg), "data": prep.key, "inputs": inputs, "sparse_rs": sparse_budget})
    prev = read_stage(profile, RealizableStage, required=False)
    if prev is not None and prev.key == key and all(prev.path(p).exists() for p in prev.examples.values()):
        report("06: every attack of these detectors and budgets is cached; reusing metrics/06_realizable.json")
        return prev
    parts = cache_dir(profile) / "realizable" / key   # one file per finished attack run: an interrupted 06 resumes
    pos = attack_subset(clips.y, cfg.n_clips, cfg.seed)
    x, y = clips.x[pos], clips.y[pos]
    waves = _load_waves(prep, clips, pos)
    feat = prep.feature_config
    records, seconds, examples = [], {}, {}
    for arch in archs:
        k, q_sparse = sparse_budget[arch]
        for defense, kind, blurred in DEFENSES:
            if kind == "adversarial" and (at is None or arch not in at.checkpoints):
                continue
            model = load_detector(profile, arch, kind, prep, device)   # type: ignore[arg-type]
            s = cfg.seed
            blur = (lambda off: blur_cfg.make(s + off)) if blurred else (lambda off: None)
            clean = predict(model, x, blur_cfg.eval_batch, preprocess=blur(1))
            for attack_name in ATTACKS:
                part = parts / f"{arch}_{defense}_{attack_name}.json"
                done = read_or_quarantine(part, load_json)
                if done is not None and all(profile_dir(profile).joinpath(f).exists() for f in done["examples"].values()):
                    # finished before an interruption: not attacked again
                    records.append(done["record"])
                    examples.update(done["examples"])
                    seconds[f"{arch}/{defense}/{attack_name}"] = done["seconds"]
                    report(f"{arch} {defense} {attack_name}: reused {rel(profile, part)}")
                    continue
                t0 = time.perf_counter()
                new_examples: dict[str, str] = {}
                if attack_name == "sparse_rs":
                    target = Defended(model, blur(3), eot=blur_cfg.eot) if blurred else model
                    res = SparseRS(target, k=k, n_queries=q_sparse, seed=s, skip_misclassified=True)(x, y, ids=pos).cpu()
                    logits = predict(model, res.adv, blur_cfg.eval_batch, preprocess=blur(4))
                    extra, per_clip_extra = {"domain": "image (L0)", "k": k}, {}
                else:
                    pipe = AudioPipeline(model, feat, preprocess=blur(3))
                    if attack_name == "stft_pixle":
                        attack = StftPixle(pipe, freq_dimensions=cfg.stft_freq_dim, time_dimensions=cfg.stft_time_dim,
                                           restarts=cfg.stft_restarts, max_iterations=cfg.stft_iterations, seed=s,
                                           skip_misclassified=True)
                    else:
                        attack = SquareAudio(pipe, snr_db=cfg.square_snr_db, n_queries=cfg.square_queries, seed=s,
                                             skip_misclassified=True)
                    res = attack_clips(attack, waves, y, pos)     # l0 NaN: a waveform attack's budget is its SNR
                    logits = audio_logits(AudioPipeline(model, feat, preprocess=blur(4)), res.adv)
                    snr = res.snr_db
                    extra, per_clip_extra = {"domain": "audio (SNR)"}, {"snr_db": [float(v) for v in snr]}
                    if arch == archs[0] and defense == "baseline":
                        new_examples = _save_examples(profile, key, attack_name, waves, res.adv, y, res.success)
                dt = time.perf_counter() - t0
                rec = record(arch, defense, attack_name, y, logits, clean_logits=clean, run=res, **extra)
                rec["attack_seconds"] = dt
                rec["per_clip"].update(per_clip_extra)
                if per_clip_extra:
                    att = torch.tensor(rec["per_clip"]["attacked"]).bool()
                    fooled = att & (logits.argmax(1) != y)
                    rec["snr_db"] = float(snr[fooled].median()) if fooled.any() else float("nan")
                    rec["l0"] = None
                report(f"{arch} {defense} {attack_name}: accuracy {rec['accuracy']:.2f}, "
                       f"success {rec['attack_success_rate']:.2f}, {dt:.0f} s")
                # kept as read back from its file, so a resumed run and a straight one hold identical records
                rec = load_json(save_json(part, {"record": rec, "examples": new_examples, "seconds": round(dt, 2)}))["record"]
                records.append(rec)
                examples.update(new_examples)
                seconds[f"{arch}/{defense}/{attack_name}"] = round(dt, 2)
            ref = _pixle_reference(profile, arch, defense, pos)
            if ref is not None:
                records.append(ref)
    stage = RealizableStage(**RealizableStage.head(profile, prep), config=asdict(cfg),
                            budgets={"sparse_rs_k": {a: b[0] for a, b in sparse_budget.items()},
                                     "sparse_rs_queries": {a: b[1] for a, b in sparse_budget.items()},
                                     "stft_queries": cfg.stft_restarts * cfg.stft_iterations,
                                     "square_queries": cfg.square_queries, "square_snr_db": cfg.square_snr_db},
                            clips=pos.tolist(), records=records, examples=examples, seconds=seconds, key=key,
                            inputs=inputs)
    stage.save()
    return stage


def _save_examples(profile: str, key: str, attack: str, waves: list[torch.Tensor], adv: list[torch.Tensor],
                   y: torch.Tensor, success: torch.Tensor) -> dict[str, str]:
    """Original, attacked and difference FLACs for one clip of each class (a fooled one where there is one),
    in a folder named by the run's key, so results of other settings never point at these files."""
    out = {}
    folder = profile_dir(profile) / "audio" / f"06_{key}"
    for c, name in ((0, "bonafide"), (1, "spoof")):
        idx = [i for i in range(len(y)) if int(y[i]) == c]
        if not idx:
            continue
        i = next((j for j in idx if bool(success[j])), idx[0])
        diff = adv[i] - waves[i]
        scale = float(waves[i].abs().max() / max(float(diff.abs().max()), 1e-9))
        for kind, wav in (("original", waves[i]), ("attacked", adv[i]), ("difference (scaled)", diff * min(scale, 1e4))):
            path = folder / f"06_{attack}_{name}_{kind.split()[0]}.flac"
            write_flac(path, wav.numpy())
            out[f"{attack} · {name} · {kind}"] = rel(profile, path)
    return out


def realizable_table(records: list[dict], n_boot: int = 1000, seed: int = 0):
    """Per model x defense x attack: accuracy, balanced accuracy, recalls, EER, success, queries, L0 or SNR, with CIs."""
    import pandas as pd

    from helpers.evaluation.metrics import accuracy, balanced_accuracy, bootstrap_ci, eer

    def recall(c):
        return lambda yy, pp: float((pp[yy == c] == c).mean()) if (yy == c).any() else float("nan")

    def success(yy, pp, aa):
        return float((pp[aa] != yy[aa]).mean()) if aa.any() else float("nan")

    rows = []
    for r in records:
        pc = r["per_clip"]
        yv, pv, sv = np.asarray(pc["y"]), np.asarray(pc["pred"]), np.asarray(pc["score"], dtype=float)
        av = np.asarray(pc.get("attacked", [1] * len(yv)), dtype=bool)
        row = {"model": r["model"], "defense": r["condition"], "attack": r["evaluation"], "domain": r.get("domain", ""),
               "n": len(yv), "n_bonafide": int((yv == 0).sum())}
        for name, f, arrays in (("accuracy", accuracy, [yv, pv]), ("balanced_accuracy", balanced_accuracy, [yv, pv]),
                                ("bonafide_recall", recall(0), [yv, pv]), ("spoof_recall", recall(1), [yv, pv]),
                                ("eer", eer, [yv, sv]), ("attack_success_rate", success, [yv, pv, av])):
            row[name] = f(*arrays)
            row[f"{name}_lo"], row[f"{name}_hi"] = bootstrap_ci(f, arrays, n_boot, seed=seed)
        row["queries"], row["l0"], row["snr_db"] = r.get("queries"), r.get("l0"), r.get("snr_db")
        rows.append(row)
    return pd.DataFrame(rows)


def format_realizable(df):
    """Percentages with CIs; L0 in pixels, SNR in dB (median over fooled clips)."""
    import pandas as pd

    def ci(r, k):
        return pct(r[k], r[k + "_lo"], r[k + "_hi"])

    return pd.DataFrame([{"model": r["model"], "defense": r["defense"], "attack": r["attack"],
                          "accuracy %": ci(r, "accuracy"), "balanced acc. %": ci(r, "balanced_accuracy"),
                          "bonafide recall %": ci(r, "bonafide_recall"), "spoof recall %": ci(r, "spoof_recall"),
                          "EER %": ci(r, "eer"), "attack success %": ci(r, "attack_success_rate"),
                          "mean queries": number(r["queries"]), "L0 / SNR": number(r["l0"], unit="px")
                          if r["l0"] is not None and np.isfinite(r["l0"]) else number(r["snr_db"], unit="dB")}
                         for _, r in df.iterrows()])


ATTACK_LABELS = {"pixle": "Pixle", "sparse_rs": "Sparse-RS", "stft_pixle": "StftPixle (audio)",
                 "square_audio": "SquareAudio (audio)"}


def accuracy_matrix(df):
    """Accuracy % [95% CI] under each attack, one row per model x defense: the compact view for 05's report."""
    import pandas as pd

    rows = []
    for (model, defense), g in df.groupby(["model", "defense"], sort=False):
        row = {"model": model, "defense": defense}
        for r in g.itertuples():
            row[ATTACK_LABELS.get(r.attack, r.attack)] = pct(r.accuracy, r.accuracy_lo, r.accuracy_hi)
        rows.append(row)
    return pd.DataFrame(rows).fillna("—")


def summary_markdown(df, budgets: dict, config: dict | None = None) -> str:
    """What 06 says, computed from its table: per model, the combined defense's worst case over every attack
    against a constant classifier on the same clips, and Sparse-RS against Pixle at equal budgets."""
    if df is None or df.empty:
        return ""
    first = df.iloc[0]
    n, n_bona = int(first["n"]), int(first["n_bonafide"])
    constant = max(n_bona, n - n_bona) / n
    by_hand = bool((config or {}).get("sparse_rs_k"))
    out = []
    for model, g in df.groupby("model", sort=False):
        acc = {(r.defense, r.attack): r for r in g.itertuples()}
        parts = []
        comb = [r for (d, _), r in acc.items() if d == "combined"]
        if comb:
            worst = min(comb, key=lambda r: r.accuracy)
            each = ", ".join(f"{pct(r.accuracy, unit='%')} under {ATTACK_LABELS.get(r.attack, r.attack)}" for r in comb)
            parts.append(f"with the combined defense, accuracy is {each}; its worst case, "
                         f"{pct(worst.accuracy, worst.accuracy_lo, worst.accuracy_hi, unit='%')} "
                         f"({ATTACK_LABELS.get(worst.attack, worst.attack)}, balanced accuracy "
                         f"{pct(worst.balanced_accuracy, unit='%')}), is to be read against {pct(constant, unit='%')} "
                         f"for a constant classifier on these clips (balanced accuracy 50%)")
        pairs = [(d, acc[(d, "sparse_rs")], acc[(d, "pixle")]) for d, _, _ in DEFENSES
                 if (d, "sparse_rs") in acc and (d, "pixle") in acc]
        if pairs:
            k = budgets.get("sparse_rs_k")
            k = k.get(model, "?") if isinstance(k, dict) else k
            budget = f"{k} pixels, set by SPARSE_RS_K" if by_hand else f"Pixle's budget on this model: {k} pixels"
            sr = "; ".join(f"{d} {pct(a.attack_success_rate, digits=0, unit='%')} vs "
                           f"{pct(b.attack_success_rate, digits=0, unit='%')}" for d, a, b in pairs)
            parts.append(f"attack success of Sparse-RS ({budget}) vs Pixle: {sr}")
        out.append(f"- **{model}**: " + "; ".join(parts) + ".")
    return f"On {n} test clips ({n_bona} bonafide), the same for every attack:\n\n" + "\n".join(out)


__all__ = ["ATTACKS", "DEFENSES", "RealizableConfig", "RealizableStage", "run_realizable", "realizable_table",
           "format_realizable", "accuracy_matrix", "summary_markdown", "upstream"]
