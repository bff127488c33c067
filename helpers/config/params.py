"""Choice parameters checked before any work starts.

A misspelt choice (``FEATURES = "thesis_rgb"``) must not cost a 20-minute run before a
``KeyError`` deep inside a helper: :func:`check` refuses it at once, naming the parameter, the
value and the allowed values. ``run_all.py`` checks every parameter of a run before starting the
first notebook; each notebook checks its own in its set-up cell (JupyterLab runs skip the runner).
"""

from __future__ import annotations

from typing import Any, Mapping

from helpers.attacks.pixle import MAPPINGS
from helpers.data.codecs import DF_CODECS
from helpers.data.features import FEATURES
from helpers.models.detectors import ARCHS
from helpers.data.speech_sources import SOURCES

DATASETS: tuple[str, ...] = ("copysynth", "asvspoof2021_df")
SPLIT_BY: tuple[str, ...] = ("source", "speaker", "clip")

# name -> allowed values (a list-valued parameter must hold only allowed values)
CHOICES: dict[str, tuple[str, ...]] = {
    "DATASET": DATASETS,
    "FEATURES": FEATURES,
    "ON_ERROR": ("error", "skip"),
    "SPLIT_BY": SPLIT_BY,
    "MODELS": ARCHS,
    "PIXLE_MAPPING": MAPPINGS,
    "BLUR_PER": ("batch", "image"),
    "AT_INIT": ("scratch", "baseline"),
    "LR_SCHEDULE": ("constant", "cosine"),
    "SPEECH_SOURCES": SOURCES,
    "CODECS": DF_CODECS,
}
EMPTY_ALLOWED = {"SPEECH_SOURCES"}     # () = the Asterisk 8 kHz prompts (or SPEECH_DIR)


class ParameterError(ValueError):
    """A parameter value outside its allowed choices (or of the wrong shape)."""


def check(params: Mapping[str, Any]) -> None:
    """Refuse every choice parameter in ``params`` whose value is not allowed; other names pass."""
    problems = []
    for name, allowed in CHOICES.items():
        if name not in params:
            continue
        value = params[name]
        values = value if isinstance(value, (list, tuple)) else [value]
        if isinstance(value, (list, tuple)) and not value and name not in EMPTY_ALLOWED:
            problems.append(f"{name} is empty; choose from {list(allowed)}")
        bad = [v for v in values if v not in allowed]
        if bad:
            problems.append(f"{name} = {value!r}: {', '.join(map(repr, bad))} is not one of {list(allowed)}")
    share = params.get("BONAFIDE_SHARE")
    if share is not None and not (isinstance(share, (int, float)) and 0 < share < 1):
        problems.append(f"BONAFIDE_SHARE = {share!r}: must be a number between 0 and 1, or None (the corpus's mix)")
    split = params.get("SPLIT")
    if split is not None and (len(split) != 3 or abs(sum(split) - 1) > 1e-6 or min(split) < 0):
        problems.append(f"SPLIT = {split!r}: three fractions (train, val, test) that sum to 1")
    if problems:
        raise ParameterError("; ".join(problems))


__all__ = ["CHOICES", "ParameterError", "check"]
