"""Install requirement files into this Python's environment with uv, from the package indexes pip is configured with.

    .venv/bin/python tools/uv_install.py -r requirements.lock

``make venv`` installs the lock this way: uv downloads and unpacks in parallel (52 s against pip's 181 s on this
machine, 120 s without byte-compiling, from an empty cache) and falls back to pip when this fails. uv does not read
pip's configuration, so this reads it (``pip config list``: its files, then ``PIP_*`` variables, which win, as in
pip) and passes ``index-url``, ``extra-index-url``, ``find-links``, ``constraint`` and ``no-index`` on as uv's
flags, and ``cert`` as ``SSL_CERT_FILE``. uv's ``unsafe-best-match`` looks for each pinned version in every index, as pip does (uv's
default takes a package only from the first index that lists it). The uv next to this Python runs it.
"""
from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

FLAGS = {"index-url": "--index-url", "extra-index-url": "--extra-index-url", "find-links": "--find-links",
         "constraint": "--constraint"}
READ = (*FLAGS, "no-index", "cert")
SECTIONS = ("global", "install", ":env:")        # pip's precedence, lowest first; other commands' sections ignored


def pip_settings(listing: str) -> dict[str, list[str]]:
    """``{setting: [values]}`` from ``pip config list`` output (``section.name='value'`` lines, the value as
    Python's ``repr``; several values are separated by whitespace or newlines)."""
    found: dict[tuple[int, str], list[str]] = {}
    for line in listing.splitlines():
        name, sep, raw = line.partition("=")
        section, _, key = name.strip().rpartition(".")
        if not sep or section not in SECTIONS or key not in READ:
            continue
        try:
            value = ast.literal_eval(raw.strip())
        except (ValueError, SyntaxError):
            value = raw.strip().strip("'\"")
        found[SECTIONS.index(section), key] = str(value).split()
    return {key: values for (_, key), values in sorted(found.items())}   # a later section overwrites an earlier one


def uv_args(settings: dict[str, list[str]]) -> list[str]:
    args: list[str] = []
    for key, flag in FLAGS.items():
        for value in settings.get(key, []):
            args += [flag, value]
    if (settings.get("no-index") or ["false"])[0].lower() in ("1", "true", "t", "yes", "y", "on"):
        args.append("--no-index")
    return args + ["--index-strategy", "unsafe-best-match"]


def main(argv: list[str]) -> int:
    listing = subprocess.run([sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True).stdout
    settings = pip_settings(listing)
    env = dict(os.environ)
    if settings.get("cert"):
        env["SSL_CERT_FILE"] = settings["cert"][0]      # pip's cert wins, as it does for pip
    uv = Path(sys.executable).with_name("uv")
    cmd = [str(uv), "pip", "install", "--python", sys.executable, *argv, *uv_args(settings)]
    try:
        return subprocess.run(cmd, env=env).returncode
    except OSError as exc:
        print(f"uv_install: cannot run {uv} ({exc})", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
