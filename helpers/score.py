"""Score your own audio with a finished profile's detectors, bare and defended.

    python -m helpers.score recording.m4a my_folder/ --profile demo [--windows] [--out scores.csv]

Every file (folders are searched recursively) is decoded by :func:`helpers.data.audio.load_audio` (any rate,
channel count and sample format; FLAC, WAV, OGG, MP3, M4A), cut into windows of the training clips' length
(``SEGMENT_S`` of the profile's data record) and turned into the image the detectors were trained on
(:func:`helpers.data.features.extract`). Each detector (01's baselines, 04's adversarially trained models) scores
it bare and behind 03's blur; 07's certified detector is added when its record exists.

**Which output is bonafide.** Class 0 is bonafide, class 1 spoof (:mod:`helpers.models.detectors`).
``p_bonafide`` is the softmax probability of class 0; the decision is ``bonafide`` when ``p_bonafide`` is above
the detector's threshold, else ``spoof``. The threshold is the detector's equal-error-rate operating point on the
*validation* split of the profile's prepared data (ASVspoof's EER, :func:`helpers.evaluation.metrics.det_curve`),
computed once and cached in ``outputs/<profile>/scores/thresholds.json``; the CSV's comment lines name each
threshold and where it came from. A file longer than the training clips gets the mean ``p_bonafide`` over its
windows, decided against the same threshold (``--windows`` lists every window).

**The smoothing defense** draws a random blur sigma per batch (03, the thesis). A score should not depend on a
random draw, so here ``p_bonafide`` behind the blur is the mean over ``SMOOTHING_DRAWS`` sigmas spread evenly over
03's range (the expectation over the draw, midpoint rule), each applied through the same
:class:`helpers.defenses.smoothing.Defended` wrapper the notebooks attack.

Files that cannot be scored (not audio, empty, truncated, silent, too short) get one row with the reason; the rest
are still scored. Exit status: 0 every file scored, 1 some skipped, 2 none scored (or no trained detectors). Nothing
is written next to the input files: the CSV goes to ``outputs/<profile>/scores/`` unless ``--out`` says otherwise.

A score on audio unlike the training corpus is not evidence either way: see ``outputs/<profile>/MODEL_CARD.md``.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import io
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Callable, Iterable, Literal, Sequence

import numpy as np
import torch

from helpers.data.audio import TARGET_SR, AudioError, load_audio
from helpers.data.features import FeatureConfig, extract
from helpers.defenses.smoothing import Defended, GaussianBlur
from helpers.evaluation.metrics import det_curve
from helpers.experiments.stages import (AdversarialStage, BaselinesStage, DataStage, MissingStepError, SmoothingStage,
                                        load_detector, load_prepared, read_stage)
from helpers.io import cache_key, load_json, save_json
from helpers.models.detectors import predict
from helpers.paths import metrics_dir, profile_dir
from helpers.reporting.model_card import NOT_EVIDENCE

Defense = Literal["none", "smoothing", "adversarial_training", "combined", "certified"]
DEFENSES: tuple[str, ...] = ("none", "smoothing", "adversarial_training", "combined", "certified")
SMOOTHING_DRAWS = 8          # sigmas averaged behind the blur (see the module docstring)
SILENCE_PEAK = 1e-4          # -80 dBFS: below it a file or window holds no signal to score
MIN_SECONDS = 0.25           # shorter clips hold too few STFT frames for a 32-column image
WINDOW_SLACK = 1.1           # a file up to 1.1 x SEGMENT_S is one window (the corpus's clips are <= SEGMENT_S)
SCORE_VERSION = 1            # part of the thresholds' cache key
TRAIN_COMMAND = "python run_all.py --profile {profile}"
CSV_FIELDS = ("file", "status", "reason", "duration_s", "sample_rate_hz", "channels", "format", "detector",
              "defense", "checkpoint", "n_windows", "aggregate", "p_bonafide", "threshold", "decision",
              "certified_l0_radius", "notes")
WINDOW_FIELDS = ("file", "detector", "defense", "window", "start_s", "end_s", "p_bonafide", "threshold", "decision",
                 "certified_l0_radius")


class ScoreError(RuntimeError):
    """The profile cannot score: its detectors or records are missing (the message names the command)."""


class Skip(Exception):
    """A file that cannot be scored; ``reason`` goes into its row."""


# --------------------------------------------------------------------------- decoding and windows

@dataclass
class Clip:
    """A decoded file: 16 kHz mono samples and what it was before conversion."""

    path: Path
    wav: np.ndarray
    sample_rate: int
    channels: int
    format: str
    conversions: list[str]

    @property
    def duration(self) -> float:
        return len(self.wav) / TARGET_SR


def read_clip(path: str | Path) -> Clip:
    """Decode ``path``; raise :class:`Skip` naming why it cannot be scored (missing, empty, not audio, truncated,
    silent, too short). The category comes first in the reason so a table of reasons can be grouped."""
    import soundfile as sf

    path = Path(path)
    if not path.is_file():
        raise Skip(f"missing: {path} is not a file")
    if path.stat().st_size == 0:
        raise Skip("empty: the file has 0 bytes")
    try:
        wav, info = load_audio(path, TARGET_SR)
    except AudioError as exc:
        detail = str(exc.__cause__) if exc.__cause__ else str(exc).split(": ", 1)[-1].split(";")[0]
        try:
            sf.info(str(path))
            recognised = True        # the header is audio, the samples are not all there
        except Exception:
            recognised = False
        if recognised:
            raise Skip(f"truncated or damaged: the header is audio but decoding failed ({detail})") from None
        if path.suffix.lower() in (".m4a", ".mp4", ".aac"):
            raise Skip(f"truncated, damaged or not audio: {detail}") from None
        raise Skip(f"not audio: no decoder recognises the file ({detail})") from None
    peak = float(np.max(np.abs(wav))) if wav.size else 0.0
    if peak == 0:
        raise Skip("silent: every sample is 0")
    if peak < SILENCE_PEAK:
        raise Skip(f"silent: peak {20 * np.log10(peak):.0f} dBFS, below {20 * np.log10(SILENCE_PEAK):.0f} dBFS")
    if len(wav) < MIN_SECONDS * TARGET_SR:
        raise Skip(f"too short: {len(wav) / TARGET_SR:.3f} s, needs at least {MIN_SECONDS} s")
    return Clip(path, wav, info.original_sr, info.original_channels, info.original_subtype, info.conversions)


def split_windows(n_samples: int, segment_s: float, sr: int = TARGET_SR) -> list[tuple[int, int]]:
    """Windows of the training clips' length over a file of ``n_samples``: ``(start, end)`` sample indices.

    A file up to ``WINDOW_SLACK`` x ``segment_s`` is one window, the whole file (the way the corpus's own clips,
    all at most ``segment_s`` long, were scored). A longer one is cut into consecutive windows of exactly
    ``segment_s``; the last one ends at the file's end (it overlaps its neighbour) so that every window has the
    training clips' length and time scale.
    """
    seg = int(round(segment_s * sr))
    if n_samples <= WINDOW_SLACK * seg:
        return [(0, n_samples)]
    starts = list(range(0, n_samples - seg + 1, seg))
    if starts[-1] + seg < n_samples:
        starts.append(n_samples - seg)
    return [(s, s + seg) for s in starts]


# --------------------------------------------------------------------------- detectors and thresholds

def p_bonafide(logits: torch.Tensor) -> np.ndarray:
    """P(class 0 = bonafide) from 2-class logits, in float64."""
    z = logits.detach().double().cpu()
    return torch.softmax(z, 1)[:, 0].numpy()


def eer_threshold(y: Sequence[int] | np.ndarray, p: np.ndarray) -> tuple[float, float]:
    """The EER operating point of ``p`` (bonafide = class 0, higher = more bonafide): ``(threshold, eer)``.

    With ASVspoof's DET sweep (:func:`helpers.evaluation.metrics.det_curve`) a clip is rejected as spoof when its
    score is at or below the threshold, so ``p > threshold`` means bonafide and, on these clips, the miss and
    false-alarm rates are the EER point's.
    """
    y, p = np.asarray(y), np.asarray(p, dtype=np.float64)
    bona, spoof = p[y == 0], p[y == 1]
    if bona.size == 0 or spoof.size == 0:
        raise ScoreError(f"an EER threshold needs both classes; got {bona.size} bonafide and {spoof.size} spoof clips")
    frr, far, thr = det_curve(bona, spoof)
    i = int(np.nanargmin(np.abs(frr - far)))
    return float(thr[i]), float(np.mean((frr[i], far[i])))


def sigma_grid(sigma: float | Sequence[float], draws: int = SMOOTHING_DRAWS) -> list[float]:
    """03's sigma as the values averaged over: one fixed sigma, or ``draws`` midpoints spread over its range."""
    if isinstance(sigma, (int, float)):
        return [float(sigma)]
    lo, hi = float(sigma[0]), float(sigma[1])
    return [lo + (hi - lo) * (k + 0.5) / draws for k in range(draws)]


@dataclass
class Scorer:
    """One detector behind one defense: P(bonafide) per image and the threshold its decisions use."""

    arch: str
    defense: str
    checkpoint: str
    probs: Callable[[torch.Tensor], np.ndarray]
    threshold: float = float("nan")
    origin: str = ""
    certify: Callable[[torch.Tensor], list] | None = None    # certified L0 radius per image, or "abstain"
    key: str = ""

    @property
    def name(self) -> str:
        return f"{self.arch}/{self.defense}"

    def decide(self, p: float) -> str:
        return "bonafide" if p > self.threshold else "spoof"


def bare(model: torch.nn.Module) -> Callable[[torch.Tensor], np.ndarray]:
    """P(bonafide) of the detector alone: exactly what the notebooks' ``predict`` gives, through a softmax."""
    return lambda x: p_bonafide(predict(model, x))


def blurred(model: torch.nn.Module, kernel_size: int, sigmas: Sequence[float]) -> Callable[[torch.Tensor], np.ndarray]:
    """P(bonafide) behind the blur: mean over ``sigmas`` of ``Defended(model, GaussianBlur(kernel, sigma))``.

    Computed as one batch of every (sigma, image) pair: the same numbers as a forward pass per sigma
    (``tests/test_score.py`` checks it against :class:`Defended`), a fraction of the time for a few images on a CPU.
    """
    def probs(x: torch.Tensor) -> np.ndarray:
        stack = torch.cat([GaussianBlur(kernel_size, s)(x) for s in sigmas])
        return p_bonafide(predict(model, stack)).reshape(len(sigmas), len(x)).mean(0)
    return probs


def blurred_reference(model: torch.nn.Module, kernel_size: int, sigmas: Sequence[float], x: torch.Tensor) -> np.ndarray:
    """:func:`blurred` the slow, literal way: the deployed ``Defended`` wrapper, one sigma at a time."""
    return np.mean([p_bonafide(predict(Defended(model, GaussianBlur(kernel_size, s)), x)) for s in sigmas], 0)


@dataclass
class Profile:
    """What scoring needs from a finished profile: the feature recipe, the clip length and the scorers."""

    name: str
    features: FeatureConfig
    segment_s: float
    data_key: str
    scorers: list[Scorer]
    notes: list[str] = field(default_factory=list)       # defenses left out, and why


def _feature_view(cfg: FeatureConfig, name: str) -> SimpleNamespace:
    """The two fields :func:`load_detector` reads from a Prepared, without rebuilding the corpus."""
    return SimpleNamespace(feature_config=cfg, params=SimpleNamespace(features=name))


def load_profile(profile: str, device: str | torch.device = "cpu", detectors: Iterable[str] | None = None,
                 defenses: Iterable[str] | None = None) -> Profile:
    """The detectors of a finished run of ``profile`` (01, 03, 04 and, when present, 07) with their thresholds.

    Raises :class:`ScoreError` naming the command that trains them when the data or baseline records are missing.
    A defense whose notebook has not run is left out with a note naming the command.
    """
    train = TRAIN_COMMAND.format(profile=profile)
    try:
        data = read_stage(profile, DataStage)
        base = read_stage(profile, BaselinesStage)
    except MissingStepError as exc:
        raise ScoreError(f"profile {profile!r} has no trained detectors under {profile_dir(profile)} ({exc}). "
                         f"Train them with: {train}   (or pick a finished profile with --profile; "
                         "OUTPUT_DIR must point at the outputs folder that holds it)") from None
    dp = data.data_params
    cfg = FeatureConfig(name=dp.get("features", "thesis_rgb32"), size=int(dp.get("feature_size", 32)))
    view = _feature_view(cfg, cfg.name)
    wanted_arch = set(detectors) if detectors else set(base.checkpoints)
    wanted_def = set(defenses) if defenses else set(DEFENSES)
    unknown = wanted_def - set(DEFENSES)
    if unknown:
        raise ScoreError(f"unknown defense(s) {sorted(unknown)}; choose from {DEFENSES}")
    archs = [a for a in base.checkpoints if a in wanted_arch]
    if not archs:
        raise ScoreError(f"no detector {sorted(wanted_arch)} in {profile}'s 01 record (it has {sorted(base.checkpoints)})")
    out = Profile(profile, cfg, float(dp.get("segment_s", 3.0)), data.data_key, [])
    smooth = read_stage(profile, SmoothingStage, required=False)
    adv = read_stage(profile, AdversarialStage, required=False)
    blur = smooth.blur_config() if smooth else None
    if blur is None and wanted_def & {"smoothing", "combined"}:
        out.notes.append(f"smoothing and combined left out: notebook 03 has not run ({train} --only 03)")
    if adv is None and wanted_def & {"adversarial_training", "combined"}:
        out.notes.append(f"adversarial training and combined left out: notebook 04 has not run ({train} --only 04)")
    for arch in archs:
        try:
            model = load_detector(profile, arch, "baseline", view, device)    # type: ignore[arg-type]
        except Exception as exc:      # missing, damaged or made for other features: retraining is the fix
            raise ScoreError(f"{arch}'s baseline checkpoint cannot be loaded ({exc}); train it with: "
                             f"{train} --only 01") from None
        at = None
        if adv is not None and arch in adv.checkpoints and wanted_def & {"adversarial_training", "combined"}:
            try:
                at = load_detector(profile, arch, "adversarial", view, device)     # type: ignore[arg-type]
            except Exception as exc:
                out.notes.append(f"{arch} adversarial training and combined left out: its checkpoint cannot be "
                                 f"loaded ({exc}); train it with: {train} --only 04")
        sig = sigma_grid(blur.sigma) if blur else []
        for defense, m, blur_on in (("none", model, False), ("smoothing", model, True),
                                    ("adversarial_training", at, False), ("combined", at, True)):
            if defense not in wanted_def or m is None or (blur_on and blur is None):
                continue
            probs = blurred(m, blur.kernel_size, sig) if blur_on else bare(m)
            key = cache_key({"v": SCORE_VERSION, "d": data.data_key, "c": m.checkpoint_id, "def": defense,
                             "blur": [blur.kernel_size, sig] if blur_on else None})
            out.scorers.append(Scorer(arch, defense, m.checkpoint_id, probs, key=key))
    if "certified" in wanted_def:
        out.scorers += certified_scorers(profile, view, archs, device, out.notes)
    if not out.scorers:
        raise ScoreError(f"no detector of {profile} has the defense(s) asked for ({sorted(wanted_def)}): "
                         + "; ".join(out.notes))
    _set_thresholds(profile, out)
    return out


def certified_scorers(profile: str, view, archs: Sequence[str], device: str | torch.device,
                      notes: list[str]) -> list[Scorer]:
    """Notebook 07's certified detectors (randomized ablation, Levine & Feizi, AAAI 2020), when its record exists.

    Each is the ablation-trained base detector of ``metrics/07_certified.json`` smoothed exactly as 07 certifies:
    :func:`helpers.defenses.ablation.certify_ablation` with 07's ``k, n0, n, alpha`` and selection seed. Its
    ``p_bonafide`` is the bonafide share of the ``n`` estimation votes, its decision the majority vote (threshold
    0.5, not an EER point), and its certified L0 radius (pixels of the image) or ``abstain`` goes in its own column.
    """
    if not (metrics_dir(profile) / "07_certified.json").exists():
        notes.append(f"certified left out: notebook 07 has not run for {profile} "
                     f"({TRAIN_COMMAND.format(profile=profile)} --only 07)")
        return []
    try:
        from helpers.defenses import ablation as A
        from helpers.experiments.certified import CertConfig, CertifiedStage
    except ImportError as exc:          # a checkout without the certification modules
        notes.append(f"certified left out: {exc}")
        return []
    from helpers.models.detectors import MODEL_VERSION, build_model
    from helpers.models.training import load_checkpoint

    rec = read_stage(profile, CertifiedStage, required=False)
    if rec is None:
        notes.append("certified left out: metrics/07_certified.json cannot be read (run 07 again)")
        return []
    names = set(CertConfig.__dataclass_fields__)
    cfg = CertConfig(**{k: v for k, v in rec.config.items() if k in names})
    seed = cfg.seeds()["select"]
    out = []
    for arch in archs:
        rel_path = rec.checkpoints.get(f"{arch}/ablation")
        if rel_path is None:
            notes.append(f"certified {arch} left out: 07's record has no {arch}/ablation checkpoint")
            continue
        model = build_model(arch, view.feature_config.channels + 1,       # one more channel marks the kept pixels
                            stem=view.feature_config.stem)
        try:
            load_checkpoint(rec.path(rel_path), model, expect={"arch": arch, "features": view.params.features,
                                                               "model_version": MODEL_VERSION})
        except Exception as exc:
            notes.append(f"certified {arch} left out: its checkpoint cannot be loaded ({exc}); run 07 again")
            continue
        model = model.to(device).to(memory_format=torch.channels_last).eval()
        memo: dict = {"x": None, "cert": None}

        def certificate(x: torch.Tensor, m=model, memo=memo) -> A.Certificate:
            if memo["x"] is not x:           # probs and radii of the same images: certify once
                memo["x"], memo["cert"] = x, A.certify_ablation(m, x, cfg.k, cfg.n0, cfg.n, cfg.alpha, seed)
            return memo["cert"]

        def probs(x: torch.Tensor, c=certificate) -> np.ndarray:
            counts = c(x).counts.double()
            return (counts[:, 0] / counts.sum(1)).numpy()

        def radius(x: torch.Tensor, c=certificate) -> list:
            cert = c(x)
            return ["abstain" if int(p) < 0 else int(r) for p, r in zip(cert.prediction, cert.radius)]

        out.append(Scorer(arch, "certified", Path(rel_path).stem, probs, threshold=0.5,
                          origin=f"majority vote of {cfg.n} ablations keeping k={cfg.k} pixels (07's certificate, "
                                 f"alpha {cfg.alpha}); p_bonafide = bonafide vote share; not an EER threshold",
                          certify=radius, key=""))
    return out


def _set_thresholds(profile: str, prof: Profile) -> None:
    """Each scorer's EER threshold on the validation split, read from or written to the thresholds cache."""
    path = profile_dir(profile) / "scores" / "thresholds.json"
    cache = {}
    if path.exists():
        try:
            cache = load_json(path)
        except Exception:                  # a damaged cache is recomputed
            cache = {}
    todo = [s for s in prof.scorers if s.key and s.key not in cache]
    if todo:
        prep = load_prepared(profile)
        split = "val" if len(prep.sets["val"]) else "test"
        x, y = prep.xy(split)
        for s in todo:
            p = s.probs(x)
            thr, e = eer_threshold(y.numpy(), p)
            nb, ns = int((y == 0).sum()), int((y == 1).sum())
            where = ("validation split" if split == "val" else
                     "TEST split (this profile has no validation split: decisions on its test clips are optimistic)")
            cache[s.key] = {"threshold": thr, "eer": e, "split": split, "n_bonafide": nb, "n_spoof": ns,
                            "checkpoint": s.checkpoint, "defense": s.defense,
                            "origin": f"EER threshold of P(bonafide) on the {where} of profile {profile} "
                                      f"({nb} bonafide + {ns} spoof clips, EER {e:.1%} there), data {prof.data_key}"}
        save_json(path, cache)
    for s in prof.scorers:
        if s.key:
            s.threshold, s.origin = float(cache[s.key]["threshold"]), cache[s.key]["origin"]


# --------------------------------------------------------------------------- scoring

def gather(paths: Iterable[str | Path]) -> list[Path]:
    """The files to score: each file as given, every non-hidden file under each folder (recursive), in order."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            out += sorted(f for f in p.rglob("*") if f.is_file()
                          and not any(part.startswith(".") for part in f.relative_to(p).parts))
        else:
            out.append(p)
    seen, unique = set(), []
    for p in out:
        if p.resolve() not in seen:
            seen.add(p.resolve())
            unique.append(p)
    return unique


def images(clip: Clip, prof: Profile) -> tuple[torch.Tensor, list[tuple[int, int]], list[str]]:
    """The detector's images of each non-silent window of ``clip``, the windows, and notes."""
    notes = [c for c in clip.conversions if not c.startswith("decoded PCM")]
    wins = split_windows(len(clip.wav), prof.segment_s)
    kept = [(a, b) for a, b in wins if np.max(np.abs(clip.wav[a:b])) >= SILENCE_PEAK]
    if len(kept) < len(wins):
        notes.append(f"{len(wins) - len(kept)} silent window(s) left out")
    if clip.duration < prof.segment_s / WINDOW_SLACK:
        notes.append(f"shorter than the training clips ({clip.duration:.2f} s < {prof.segment_s:g} s): "
                     "its image is stretched in time")
    x = torch.stack([extract(clip.wav[a:b], prof.features) for a, b in kept])
    return x, kept, notes


def score_files(paths: Iterable[str | Path], prof: Profile, windows: bool = False) -> tuple[list[dict], list[dict]]:
    """Rows for every file x scorer (one row with the reason for a file that cannot be scored), and window rows."""
    from helpers.progress import progress_iter

    rows, wrows = [], []
    for path in progress_iter(gather(paths), desc="scoring", unit="files"):
        base = {"file": str(path)}
        try:
            clip = read_clip(path)
            x, wins, notes = images(clip, prof)
        except Skip as exc:
            rows.append({**base, "status": "skipped", "reason": str(exc)})
            continue
        except Exception as exc:          # an unexpected failure is one file's problem, never the run's
            rows.append({**base, "status": "skipped", "reason": f"error: {type(exc).__name__}: {exc}"})
            continue
        info = {**base, "status": "scored", "reason": "", "duration_s": round(clip.duration, 3),
                "sample_rate_hz": clip.sample_rate, "channels": clip.channels, "format": clip.format,
                "n_windows": len(wins), "notes": "; ".join(notes),
                "aggregate": "whole file" if len(wins) == 1 else f"mean P(bonafide) over {len(wins)} windows"}
        for s in prof.scorers:
            p = s.probs(x)
            radii = s.certify(x) if s.certify else [""] * len(p)
            agg = float(np.mean(p))
            radius = radii[0] if len(p) == 1 else ("" if not s.certify else
                                                   ("abstain" if "abstain" in radii else min(radii)))
            rows.append({**info, "detector": s.arch, "defense": s.defense, "checkpoint": s.checkpoint,
                         "p_bonafide": agg, "threshold": s.threshold, "decision": s.decide(agg),
                         "certified_l0_radius": radius})
            if windows:
                for i, ((a, b), pi, ri) in enumerate(zip(wins, p, radii)):
                    wrows.append({"file": str(path), "detector": s.arch, "defense": s.defense, "window": i,
                                  "start_s": round(a / TARGET_SR, 3), "end_s": round(b / TARGET_SR, 3),
                                  "p_bonafide": float(pi), "threshold": s.threshold, "decision": s.decide(float(pi)),
                                  "certified_l0_radius": ri})
    return rows, wrows


def header(prof: Profile) -> list[str]:
    """The CSV's comment lines: what the columns mean and every threshold with its origin."""
    from helpers import __version__

    lines = [f"helpers.score {__version__}: profile {prof.name} ({profile_dir(prof.name)}), "
             f"{dt.datetime.now(dt.timezone.utc).isoformat(timespec='seconds')}",
             "p_bonafide = P(class 0 = bonafide) from the detector's softmax (class 1 = spoof); "
             "decision = bonafide when p_bonafide > threshold, else spoof",
             f"files longer than {WINDOW_SLACK:g} x SEGMENT_S = {prof.segment_s:g} s (the training clips' length) are "
             f"scored in windows of {prof.segment_s:g} s; aggregate p_bonafide = mean over the windows, decided "
             "against the same threshold; certified_l0_radius of a file = its smallest window radius, abstain if any window abstains",
             f"smoothing and combined: p_bonafide is the mean over {SMOOTHING_DRAWS} blur sigmas spread over 03's "
             "range (the expectation over its random draw)"]
    for s in prof.scorers:
        lines.append(f"threshold {s.name} ({s.checkpoint}) = {s.threshold:.6g}: {s.origin}")
    lines += [f"note: {n}" for n in prof.notes]
    lines.append(NOT_EVIDENCE + f" Read {profile_dir(prof.name) / 'MODEL_CARD.md'}.")
    return lines


def write_csv(path: Path, rows: list[dict], fields: Sequence[str], comments: list[str]) -> Path:
    """``# comment`` lines, then the CSV (pandas: ``read_csv(path, comment="#")``), written atomically."""
    from helpers.io import atomic_write

    buf = io.StringIO()
    for line in comments:
        buf.write(f"# {line}\n")
    w = csv.DictWriter(buf, fieldnames=list(fields), extrasaction="ignore")
    w.writeheader()
    for r in rows:
        w.writerow({k: (f"{v:.10g}" if isinstance(v, float) else v) for k, v in r.items()})
    return atomic_write(path, buf.getvalue())


def table(rows: list[dict], columns: Sequence[str] = ("file", "detector", "defense", "duration_s", "n_windows",
                                                       "p_bonafide", "threshold", "decision", "certified_l0_radius",
                                                       "reason")) -> str:
    """The rows as a fixed-width text table (file names shortened to their last two parts)."""
    import pandas as pd

    if not rows:
        return "(no rows)"
    df = pd.DataFrame(rows).reindex(columns=list(columns)).astype(object).fillna("")
    df["file"] = df["file"].map(lambda f: "/".join(Path(f).parts[-2:]))
    if "n_windows" in df:
        df["n_windows"] = df["n_windows"].map(lambda v: int(v) if isinstance(v, (int, float)) and v == v else "")
    for c in ("p_bonafide", "threshold"):
        if c in df:
            df[c] = df[c].map(lambda v: f"{v:.4f}" if isinstance(v, float) else v)
    return df.to_string(index=False)


def exit_status(rows: list[dict]) -> int:
    """0 when every file was scored, 1 when some were skipped, 2 when none could be."""
    files = {r["file"]: r["status"] for r in rows}
    scored = sum(1 for s in files.values() if s == "scored")
    return 2 if scored == 0 else (1 if scored < len(files) else 0)


def default_out(profile: str) -> Path:
    return profile_dir(profile) / "scores" / "scores.csv"


# --------------------------------------------------------------------------- notebook 08

def corpus_examples(profile: str, n: int = 4) -> list[str]:
    """``n`` test clips of the profile's corpus, half bonafide and half spoof (first by trial id): 08's default."""
    from helpers.reporting.model_card import trial_table

    table = trial_table(read_stage(profile, DataStage))
    if table is None:
        return []
    test = table[table.split == "test"].sort_values("trial")
    half = [test[test.label == lab].path.tolist()[: n - n // 2 if lab == "bonafide" else n // 2]
            for lab in ("bonafide", "spoof")]
    return [p for pair in zip(*half) for p in pair] + half[0][len(half[1]):]


def frame(rows: list[dict], columns: Sequence[str] = ("file", "status", "reason", "duration_s", "detector", "defense",
                                                       "n_windows", "p_bonafide", "threshold", "decision",
                                                       "certified_l0_radius")):
    """The rows as a DataFrame (file names shortened), for display in a notebook."""
    import pandas as pd

    df = pd.DataFrame(rows).reindex(columns=list(columns))
    df["file"] = df["file"].map(lambda f: Path(f).name)
    return df


def show_clip(path: str | Path, prof: Profile, max_windows: int = 4):
    """The images the detectors see for ``path`` (its first windows) with each bare detector's P(bonafide), and an
    audio player (16 kHz mono, what was scored). Returns the figure, or None with the reason for a bad file."""
    import matplotlib.pyplot as plt
    from IPython.display import Audio, display

    from helpers.reporting.figures import show_image

    try:
        clip = read_clip(path)
        x, wins, _ = images(clip, prof)
    except Skip as exc:
        print(f"{Path(path).name}: not scored ({exc})")
        return None
    bare_scorers = [s for s in prof.scorers if s.defense == "none"]
    p = {s.arch: s.probs(x) for s in bare_scorers}
    k = min(len(wins), max_windows)
    fig, axes = plt.subplots(1, k, figsize=(2.6 * k, 2.9), squeeze=False)
    for i, ax in enumerate(axes[0]):
        a, b = wins[i]
        label = ", ".join(f"{arch} {v[i]:.2f}" for arch, v in p.items())
        show_image(ax, x[i], f"{a / TARGET_SR:.1f}-{b / TARGET_SR:.1f} s\nP(bonafide): {label}")
    fig.suptitle(f"{Path(path).name}: the {prof.features.name} image each detector sees", fontsize=10)
    fig.tight_layout()
    plt.show()
    display(Audio(clip.wav, rate=TARGET_SR))
    return fig


class ScoreApp:
    """ipywidgets: upload files or name a folder, then the same table as the command, the images and a player.

    Uploaded files are written under ``outputs/<profile>/scores/uploads/`` (never next to anything of the user's);
    the table is also written to ``outputs/<profile>/scores/notebook_scores.csv``.
    """

    def __init__(self, prof: Profile):
        self.prof = prof
        self.rows: list[dict] = []

    def _uploaded(self, value) -> list[Path]:
        """Files of a FileUpload value (ipywidgets 8: a tuple of dicts; 7: a dict by name), saved under outputs."""
        from helpers.io import atomic_write

        items = value.values() if isinstance(value, dict) else value
        folder = profile_dir(self.prof.name) / "scores" / "uploads"
        out = []
        for it in items:
            name = Path(it.get("name") or it.get("metadata", {}).get("name", "upload")).name
            out.append(atomic_write(folder / name, bytes(it["content"])))
        return out

    def score(self, paths: Sequence[str | Path], out) -> None:
        from IPython.display import display

        with out:
            out.clear_output()
            self.rows, _ = score_files(paths, self.prof)
            display(frame(self.rows))
            write_csv(profile_dir(self.prof.name) / "scores" / "notebook_scores.csv", self.rows, CSV_FIELDS,
                      header(self.prof))
            for p in dict.fromkeys(r["file"] for r in self.rows if r["status"] == "scored"):
                show_clip(p, self.prof)

    def show(self) -> None:
        import ipywidgets as w
        from IPython.display import display

        upload = w.FileUpload(accept=".wav,.flac,.ogg,.mp3,.m4a,audio/*", multiple=True, description="upload")
        folder = w.Text(placeholder="/path/to/a/folder/or/file", description="folder")
        button = w.Button(description="score", button_style="primary")
        out = w.Output()

        def on_click(_):
            paths = self._uploaded(upload.value) + ([Path(folder.value).expanduser()] if folder.value.strip() else [])
            if paths:
                self.score(paths, out)
            else:
                with out:
                    print("upload a file or type a folder first")

        button.on_click(on_click)
        display(w.VBox([w.HBox([upload, folder, button]), out]))


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m helpers.score", description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="p_bonafide is P(bonafide); decision 'bonafide' when it is above the "
                                        "detector's validation EER threshold. " + NOT_EVIDENCE)
    ap.add_argument("paths", nargs="+", help="audio files or folders (searched recursively)")
    ap.add_argument("--profile", default="demo", help="the finished profile whose detectors score (default demo)")
    ap.add_argument("--out", type=Path, help="CSV to write (default outputs/<profile>/scores/scores.csv)")
    ap.add_argument("--windows", action="store_true", help="also print and write the per-window table")
    ap.add_argument("--detector", action="append", help="only this architecture (repeatable), e.g. resnet18")
    ap.add_argument("--defense", action="append", choices=DEFENSES, help="only this defense (repeatable)")
    ap.add_argument("--device", default=None, help="cpu or cuda (default: what helpers.runtime picks)")
    args = ap.parse_args(argv)

    from helpers.runtime import get_device

    device = get_device(args.device)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            prof = load_profile(args.profile, device, args.detector, args.defense)
    except ScoreError as exc:
        print(f"helpers.score: {exc}", file=sys.stderr)
        return 2
    files = gather(args.paths)
    if not files:
        print(f"helpers.score: no files under {' '.join(args.paths)}", file=sys.stderr)
        return 2
    rows, wrows = score_files(files, prof, args.windows)
    out = args.out or default_out(args.profile)
    comments = header(prof)
    write_csv(out, rows, CSV_FIELDS, comments)
    print("\n".join(f"# {c}" for c in comments))
    print(table(rows))
    if args.windows and wrows:
        wout = out.with_name(out.stem + "_windows.csv")
        write_csv(wout, wrows, WINDOW_FIELDS, comments)
        print("\nper window:")
        print(table(wrows, ("file", "detector", "defense", "window", "start_s", "end_s", "p_bonafide", "decision",
                            "certified_l0_radius")))
        print(f"wrote {wout}")
    status = exit_status(rows)
    n_files = len({r["file"] for r in rows})
    n_skip = len({r["file"] for r in rows if r["status"] == "skipped"})
    print(f"wrote {out}: {n_files - n_skip} of {n_files} files scored, {n_skip} skipped (exit status {status})")
    return status


if __name__ == "__main__":
    sys.exit(main())
