"""``outputs/<profile>/MODEL_CARD.md``: what a profile's detectors were trained on and how well they do on it.

A model card in the sense of Mitchell et al., "Model Cards for Model Reporting" (FAT* 2019), cut to what a
person scoring their own audio (``python -m helpers.score``) must know: the training corpus and its spoofing
systems, clean EER per system (seen in training or not) with 95% bootstrap confidence intervals, the codec
conditions, what the detectors were *not* trained on, and the licence of the checkpoints. Everything is read from
the run's records (``metrics/00_data.json``, ``01_baselines.json``, ``03``/``04`` when present) and the prepared
trial table; nothing is retrained. Per-system EER is computed here from the per-clip scores 01 recorded (every test
bonafide clip against one system's spoofs, ASVspoof's per-attack EER); when 01's record carries its own
``per_system`` table it is shown as well.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from helpers.evaluation.metrics import bootstrap_ci, eer
from helpers.experiments.stages import AdversarialStage, BaselinesStage, DataStage, SmoothingStage, read_stage
from helpers.io import atomic_write
from helpers.paths import interim_dir, profile_dir
from helpers.reporting.format import pct

NOT_EVIDENCE = ("A score on audio unlike the training corpus (other speakers, languages, microphones, rooms, "
                "codecs or synthesis systems) is not evidence either way.")
PROJECT_LICENSE = "MIT"
CHECKPOINT_LICENSE = (
    "Checkpoints: released under the project's MIT licence (LICENSE), as the code that made them. They were trained "
    "on the recordings listed in the corpus's `LICENSES.md` (e.g. CC-BY-SA-3.0, GPL-2+ and BSD-like speech "
    "packages); whether trained weights are a derivative of their training data is legally unsettled, so whoever "
    "redistributes the checkpoints should ship that file with them and keep its attributions.")


def _pct(v: float | None) -> str:
    return pct(v, unit="%", missing="n/a")


def _ci(lo: float, hi: float) -> str:
    both = pct(0.0, lo, hi)          # the one formatter writes the bracket only when both ends are known
    return both[both.index("["):] if "[" in both else "n/a"


def trial_table(data: DataStage) -> pd.DataFrame | None:
    """The prepared trial table of this run (``interim/prepared/<data_key>/trials.csv``), or None if gone."""
    path = interim_dir() / "prepared" / data.data_key / "trials.csv"
    return pd.read_csv(path, dtype=str, keep_default_na=False) if path.exists() else None


def per_system(base: BaselinesStage, table: pd.DataFrame | None, n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    """Clean test EER per model and spoofing system with a 95% bootstrap CI, the system seen in training or not.

    A system is *seen* when clips of it are in the training split. Pooled rows ("all seen", "all unseen") put every
    test bonafide clip against the spoofs of those systems. Empty when the trial table or per-clip scores are gone.
    """
    if table is None:
        return pd.DataFrame()
    test = table[table.split == "test"].reset_index(drop=True)
    in_train = set(table[(table.split == "train") & (table.label == "spoof")].attack)
    spoofs = table[table.label == "spoof"]
    # the keys' own seen/unseen designation (ASVspoof 2019 LA style) when the corpus has one, else training presence
    protocol = (dict(zip(spoofs.attack, spoofs.seen)) if "seen" in table else
                {a: "seen" if a in in_train else "unseen" for a in spoofs.attack})
    family = dict(zip(spoofs.attack, spoofs.family)) if "family" in table else {}
    seen = {a for a, v in protocol.items() if v == "seen"}
    rows = []
    for rec in base.full_test_records:
        pc = rec.get("per_clip") or {}
        y, s = np.asarray(pc.get("y", [])), np.asarray(pc.get("score", []), dtype=float)
        if len(y) != len(test) or not np.array_equal(y, test.y.astype(int).to_numpy()):
            continue         # the test split's clips and the recorded scores disagree: say nothing rather than guess
        bona = test.label.to_numpy() == "bonafide"
        systems = sorted(a for a in test.attack.unique() if a != "-")
        groups = [(a, "seen" if a in seen else "unseen", [a]) for a in systems]
        for kind in ("seen", "unseen"):
            members = [a for a in systems if (a in seen) == (kind == "seen")]
            if members:
                groups.append((f"all {kind}", kind, members))
        for name, kind, members in groups:
            m = bona | test.attack.isin(members).to_numpy()
            lo, hi = bootstrap_ci(eer, [y[m], s[m]], n_boot=n_boot, seed=seed)
            rows.append({"model": rec["model"], "system": name, "family": family.get(name, ""), "seen": kind,
                         "in training split": ("yes" if name in in_train else "no") if name in protocol else "",
                         "test spoof clips": int((~bona & m).sum()), "test bonafide clips": int(bona.sum()),
                         "EER": eer(y[m], s[m]), "lo": lo, "hi": hi})
    return pd.DataFrame(rows)


def _system_name(system_id: str) -> str:
    """`` (name, engine)`` of a synthesis system of :mod:`helpers.data.synthesis`, or nothing for other ids."""
    try:
        from helpers.data.synthesis import get_system

        s = get_system(system_id)
        return f" {s.name} ({s.family}, {s.engine})"
    except Exception:          # copy-synthesis vocoders, ASVspoof attack ids, or an older checkout
        return ""


def _markdown_table(df: pd.DataFrame) -> str:
    cols = list(df.columns)
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(str(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join(lines)


def model_card_markdown(profile: str, n_boot: int = 1000, seed: int = 0) -> str:
    """The card as markdown (see the module docstring)."""
    data = read_stage(profile, DataStage)
    base = read_stage(profile, BaselinesStage)
    smooth = read_stage(profile, SmoothingStage, required=False)
    adv = read_stage(profile, AdversarialStage, required=False)
    dp, summ = data.data_params, data.summary
    table = trial_table(data)
    by_split = summ.get("by_split", {})
    systems = {k: v for k, v in summ.get("by_attack", {}).items() if k != "-"}
    corpus_root = Path(summ.get("corpus_root", ""))
    ps = per_system(base, table, n_boot, seed)
    unseen = sorted(set(ps.system[(ps.seen == "unseen") & ~ps.system.str.startswith("all ")])) if len(ps) else []
    out = [f"# Model card: the `{profile}` profile's detectors", "",
           f"**{NOT_EVIDENCE}** These detectors answer one question, *does this clip look like the spoofs of this "
           "corpus or like its bonafide speech?*, and nothing else.", "",
           "## Detectors", "",
           f"- Architectures: {', '.join(base.checkpoints)} (CIFAR-style ResNets, {data.features} images "
           f"{summ.get('feature_shape', '')}), output class 0 = **bonafide**, 1 = spoof.",
           "- Checkpoints: " + ", ".join(f"`{v}`" for v in base.checkpoints.values())
           + ("; adversarially trained (04): " + ", ".join(f"`{v}`" for v in adv.checkpoints.values()) if adv else ""),
           f"- Training: {base.train.get('epochs')} epochs, batch {base.train.get('batch_size')}, lr "
           f"{base.train.get('lr')} ({base.train.get('schedule', 'constant')})"
           + (f"; adversarial training: {adv.init} init, Pixle {adv.train_attack.get('restarts')}x"
              f"{adv.train_attack.get('max_iterations')}" if adv else "; no adversarial training recorded (04 has not run)"),
           f"- Smoothing defense (03): {smooth.blur if smooth else 'not run'}.",
           f"- Score them: `python -m helpers.score --profile {profile} FILE_OR_FOLDER` (thresholds: EER on the "
           "validation split).", "",
           "## Training corpus", "",
           f"- Dataset: `{data.dataset}`" + (f", speech sources {', '.join(dp.get('speech_sources') or [])}"
                                              if dp.get("speech_sources") else "")
           + f"; clips of at most {dp.get('segment_s')} s at 16 kHz; {summ.get('n_trials')} trials, class mix "
           f"{dp.get('bonafide_share')} bonafide; split {dp.get('split')} by {dp.get('split_by')}.",
           "- Per split: " + "; ".join(f"{s}: {c.get('bonafide', 0)} bonafide, {c.get('spoof', 0)} spoof"
                                      for s, c in by_split.items()) + ".",
           "- Spoofing systems (trials): " + (", ".join(f"`{k}`{_system_name(k)} ({v})" for k, v in systems.items())
                                              or "none recorded") + ".",
           f"- Codec conditions (ASVspoof 2021 DF style, applied to bonafide and spoof alike): "
           f"{', '.join(dp.get('codecs') or ['nocodec'])}.",
           f"- Licences of the recordings: `{corpus_root / 'LICENSES.md'}`.", "",
           "## Clean EER per spoofing system (test split)", "",
           "Every test bonafide clip against one system's test spoofs; 95% percentile bootstrap CI over those clips "
           f"({n_boot} resamples). *Seen*: the corpus's keys designate the system as seen (its clips may be in "
           "training and validation; unseen ones only in test); without that designation, seen = the system has clips "
           "in the training split. *In training split*: whether this sample actually put clips of it there.", ""]
    if len(ps):
        shown = ps.assign(EER=[_pct(v) for v in ps.EER], **{"95% CI": [_ci(a, b) for a, b in zip(ps.lo, ps.hi)]})
        out.append(_markdown_table(shown.drop(columns=["lo", "hi"])))
        if not (ps["seen"] == "unseen").any():
            out += ["", "Every test system was also in training: **EER on unseen systems is not recorded** for this "
                        "profile (no held-out system)."]
    else:
        out.append("Per-system EER with CIs: **not recorded** (the prepared trial table or 01's per-clip scores are "
                   "missing); 01's point estimates per vocoder: "
                   + ", ".join(f"{r['model']} {r['group']} {_pct(r['eer'])}" for r in base.breakdown
                               if r.get("by") == "vocoder"))
    recorded = getattr(base, "per_system", None) or _raw(profile).get("per_system")
    if recorded:
        out += ["", "01's own per-system record (`metrics/01_baselines.json`, key `per_system`):", "",
                _markdown_table(pd.DataFrame(recorded)) if isinstance(recorded, list) else f"`{recorded}`"]
    codec_rows = [r for r in base.breakdown if r.get("by") == "codec"]
    if codec_rows:
        out += ["", "## Clean EER per codec condition (test split, point estimates from 01)", "",
                _markdown_table(pd.DataFrame([{"model": r["model"], "codec": r["group"], "clips": r["n"],
                                               "EER": _pct(r["eer"])} for r in codec_rows]))]
    full = [r for r in base.full_test_records if r.get("condition") == "baseline_clean"]
    out += ["", "Overall clean test EER: " + "; ".join(f"{r['model']} {_pct(r.get('eer'))} ({r.get('n')} clips)"
                                                        for r in full) + "."]
    out += ["", "## What the detectors were not trained on", "",
            "- Speakers, languages, microphones and rooms other than those of the speech sources above"
            + (f" (languages: {', '.join(sorted(set(table.language)))})" if table is not None and "language" in table
               else "") + ".",
            "- Synthesis systems other than those listed (any modern TTS or voice conversion not in the list), "
            "and audio edited, mixed with music or noise, or re-recorded through a loudspeaker."
            + (f" Held out of training by design (test only): {', '.join(unseen)}." if unseen else ""),
            f"- Codecs other than {', '.join(dp.get('codecs') or ['nocodec'])} (telephone channels, Opus, "
            "streaming platforms' re-encoding).",
            f"- Clips longer than {dp.get('segment_s')} s: `helpers.score` cuts them into windows of that length and "
            "averages P(bonafide); the detectors never saw whole utterances or conversations.",
            "- Adversarial audio beyond the attacks of notebooks 02-06 (Pixle, Sparse-RS and the audio attacks at "
            "their budgets).",
            None if data.dataset != "copysynth" else
            "- The thesis's own corpus (ASVspoof 2021 DF): these detectors were trained on the offline corpus built "
            "here from the speech packages and spoofing systems above.",
            "", "## Intended use", "",
            "Research on the robustness of spectrogram-image detectors (the thesis's Pixle attacks and defenses). "
            "Not a forensic tool: do not use a score to decide whether a real person said something. "
            + NOT_EVIDENCE, "",
            "## Licence", "", CHECKPOINT_LICENSE, ""]
    return "\n".join(line for line in out if line is not None)


def _raw(profile: str) -> dict:
    import json

    from helpers.paths import metrics_dir

    p = metrics_dir(profile) / f"{BaselinesStage.NAME}.json"
    try:
        return json.loads(p.read_text())
    except (OSError, ValueError):
        return {}


def write_model_card(profile: str, n_boot: int = 1000, seed: int = 0) -> Path:
    """Write ``outputs/<profile>/MODEL_CARD.md`` (atomically) and return its path."""
    return atomic_write(profile_dir(profile) / "MODEL_CARD.md", model_card_markdown(profile, n_boot, seed))


__all__ = ["NOT_EVIDENCE", "PROJECT_LICENSE", "CHECKPOINT_LICENSE", "per_system", "trial_table",
           "model_card_markdown", "write_model_card"]
