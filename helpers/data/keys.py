"""The ASVspoof 2021 DF keys format (``keys/DF/CM/trial_metadata.txt``).

Thirteen space-separated columns, ``-`` for empty::

    speaker trial codec source attack label trim subset vocoder task team gender_pair language

Both the official corpus and the offline copy-synthesis corpus are described by such a file, so
everything downstream reads one format. A malformed line raises :class:`KeysFormatError` naming
the file, the line number and what was expected.
"""

from __future__ import annotations

import re
from dataclasses import astuple, dataclass, fields
from pathlib import Path
from typing import Iterable, Literal

import pandas as pd

COLUMNS: tuple[str, ...] = ("speaker", "trial", "codec", "source", "attack", "label", "trim",
                            "subset", "vocoder", "task", "team", "gender_pair", "language")
LABELS: tuple[str, ...] = ("bonafide", "spoof")
Label = Literal["bonafide", "spoof"]
# A trial id is a file stem: letters, digits, '_', '-', '.'; never a path.
_TRIAL_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]*$")


class KeysFormatError(ValueError):
    """A keys file that does not follow the official 13-column format."""


@dataclass(frozen=True)
class KeysRecord:
    """One line of a DF keys file."""

    speaker: str
    trial: str
    codec: str
    source: str
    attack: str
    label: Label
    trim: str
    subset: str
    vocoder: str
    task: str
    team: str
    gender_pair: str
    language: str

    @property
    def is_bonafide(self) -> bool:
        return self.label == "bonafide"

    def to_line(self) -> str:
        return " ".join(v if v else "-" for v in astuple(self))


def validate_trial_id(trial: str, where: str = "") -> str:
    """Reject trial ids that could escape the audio folder (``../../etc/passwd``, ``/abs``)."""
    if not _TRIAL_RE.match(trial) or ".." in trial:
        raise KeysFormatError(f"{where}trial id {trial!r} is not a plain file stem "
                              "(letters, digits, '_', '-', '.'); refusing a path in the keys file")
    return trial


def parse_line(line: str, path: str | Path = "<keys>", lineno: int = 0) -> KeysRecord:
    where = f"{Path(path).name} line {lineno}: "
    parts = line.split()
    if len(parts) != len(COLUMNS):
        raise KeysFormatError(f"{Path(path)} line {lineno} has {len(parts)} columns, expected "
                              f"{len(COLUMNS)} ({' '.join(COLUMNS)}); fix or remove the line")
    rec = dict(zip(COLUMNS, parts))
    if rec["label"] not in LABELS:
        raise KeysFormatError(f"{Path(path)} line {lineno}: unknown label {rec['label']!r}, "
                              f"expected one of {LABELS} in column 6")
    validate_trial_id(rec["trial"], where)
    return KeysRecord(**rec)


def parse_keys(path: str | Path, lines: Iterable[str] | None = None) -> list[KeysRecord]:
    """Parse a keys file (or the given ``lines``); blank lines are skipped, duplicates refused."""
    path = Path(path)
    if lines is None:
        if not path.exists():
            raise FileNotFoundError(f"keys file {path} does not exist")
        lines = path.read_text().splitlines()
    records: list[KeysRecord] = []
    seen: dict[str, int] = {}
    for lineno, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        rec = parse_line(line, path, lineno)
        if rec.trial in seen:
            raise KeysFormatError(f"{path} line {lineno}: duplicate trial {rec.trial!r} "
                                  f"(first on line {seen[rec.trial]}); each trial must appear once")
        seen[rec.trial] = lineno
        records.append(rec)
    if not records:
        raise KeysFormatError(f"{path} holds no keys lines")
    return records


def records_to_frame(records: list[KeysRecord]) -> pd.DataFrame:
    return pd.DataFrame([astuple(r) for r in records], columns=list(COLUMNS))


def frame_to_records(df: pd.DataFrame) -> list[KeysRecord]:
    return [KeysRecord(**{c: str(row[c]) for c in COLUMNS}) for _, row in df.iterrows()]


def format_keys(records: Iterable[KeysRecord]) -> str:
    return "".join(r.to_line() + "\n" for r in records)


def read_keys_frame(path: str | Path) -> pd.DataFrame:
    """Parse a keys file into a DataFrame with the 13 official columns."""
    return records_to_frame(parse_keys(path))


assert tuple(f.name for f in fields(KeysRecord)) == COLUMNS
