"""The package indexes pip is configured with, as uv flags (uv does not read pip's configuration).

    uv pip install -r requirements.lock $(python tools/uv_indexes.py)

``make venv`` installs the lock with uv (parallel downloads and unpacking: 52 s against pip's 2 min on this
machine's registry) and falls back to pip when uv fails. pip's settings come from ``pip config list`` (its
files and ``PIP_*`` variables): ``index-url``, ``extra-index-url`` and ``find-links``, each possibly several
whitespace-separated values. uv's ``unsafe-best-match`` looks for each pinned version in every index, as pip
does (uv's default takes a package only from the first index that lists it).
"""
from __future__ import annotations

import shlex
import subprocess
import sys

FLAGS = {"index-url": "--index-url", "extra-index-url": "--extra-index-url", "find-links": "--find-links"}


def pip_settings(listing: str) -> dict[str, list[str]]:
    """``{setting: [values]}`` from ``pip config list`` output (``scope.name='value'`` lines); the environment
    (``:env:``) wins over the files, as in pip."""
    out: dict[str, list[str]] = {}
    ranked = sorted(listing.splitlines(), key=lambda line: line.startswith(":env:"))   # files first, env last
    for line in ranked:
        name, sep, value = line.partition("=")
        if not sep:
            continue
        key = name.rsplit(".", 1)[-1].strip()
        if key in FLAGS:
            out[key] = shlex.split(value.strip().strip("'\""))
    return out


def uv_flags(settings: dict[str, list[str]]) -> list[str]:
    flags: list[str] = []
    for key, flag in FLAGS.items():
        for value in settings.get(key, []):
            flags += [flag, value]
    return flags + ["--index-strategy", "unsafe-best-match"]


def main() -> int:
    try:
        listing = subprocess.run([sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True,
                                 check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        listing = ""
    print(shlex.join(uv_flags(pip_settings(listing))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
