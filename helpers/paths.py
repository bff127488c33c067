"""Every path the project uses, resolved in one place.

``ROOT`` is the repository root (found from this file's location). ``DATA_DIR`` and
``OUTPUT_DIR`` default to ``ROOT/data`` and ``ROOT/outputs`` and can be overridden with the
environment variables of the same name, so tests and CI can run into a temporary folder.
"""

from __future__ import annotations

import os
from pathlib import Path

ROOT: Path = Path(__file__).resolve().parent.parent


def data_dir() -> Path:
    """``$DATA_DIR`` or ``ROOT/data``: raw/ (never edited) and interim/ (caches)."""
    return Path(os.environ.get("DATA_DIR", ROOT / "data")).resolve()


def raw_dir() -> Path:
    return data_dir() / "raw"


def interim_dir() -> Path:
    return data_dir() / "interim"


def output_root() -> Path:
    """``$OUTPUT_DIR`` or ``ROOT/outputs``."""
    return Path(os.environ.get("OUTPUT_DIR", ROOT / "outputs")).resolve()


def profile_dir(profile: str) -> Path:
    """``outputs/<profile>/``: notebooks/, metrics/, figures/, checkpoints/, run.json, report.md."""
    return output_root() / profile


def metrics_dir(profile: str) -> Path:
    return _mk(profile_dir(profile) / "metrics")


def figures_dir(profile: str) -> Path:
    return _mk(profile_dir(profile) / "figures")


def checkpoints_dir(profile: str) -> Path:
    return _mk(profile_dir(profile) / "checkpoints")


def cache_dir(profile: str) -> Path:
    """Per-profile cache of adversarial examples and evaluation results."""
    return _mk(profile_dir(profile) / "cache")


def notebooks_dir() -> Path:
    """``$NOTEBOOKS_DIR`` (tests) or ``ROOT/notebooks``."""
    return Path(os.environ.get("NOTEBOOKS_DIR", ROOT / "notebooks")).resolve()


def _mk(p: Path) -> Path:
    p.mkdir(parents=True, exist_ok=True)
    return p
