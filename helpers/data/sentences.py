"""Sentences for the text-to-speech spoofs, from the bonafide sources' own packages.

A detector should meet spoofs whose *content* is close to the bonafide's, so that the words never
give the class away. The bonafide speech comes from Debian packages (:mod:`helpers.data.speech_sources`)
whose transcripts ship in Debian too:

=============================  ===================================================  =============
package                        what                                                 licence
=============================  ===================================================  =============
``asterisk-core-sounds-<l>``   ``core-sounds-<l>.txt.gz``: the wording of every     CC-BY-SA-3.0
                               Asterisk prompt (``name: text``), l in en es fr it ru / CC-BY-3.0
``tuxpaint-stamps-default``    one ``.txt`` per stamp: the English description on   GPL-2+
                               line 1, then ``<lang>.utf8=<text>`` translations
``festvox-ru``                 ``etc/txt.done.data``: the 620 prompts msu_ru_nsh    BSD-like
                               read (``( id "text" )``)
=============================  ===================================================  =============

Each package is fetched with ``apt-get download`` and unpacked with ``dpkg-deb`` (the helpers of
:mod:`helpers.data.speech_sources`, cached under ``raw_dir()/texts/<package>``). A sentence keeps its
language, its source and a stable id (a hash of the text), so a synthesis cache can be keyed by it.
"""

from __future__ import annotations

import gzip
import hashlib
import re
import subprocess
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np

from helpers.data import speech_sources
from helpers.data.speech_sources import SpeechSourceError
from helpers.paths import raw_dir

ASTERISK_TEXT_LANGS: tuple[str, ...] = ("en", "es", "fr", "it", "ru")
FESTVOX_RU_PROMPTS = "usr/share/festival/voices/russian/msu_ru_nsh_clunits/etc/txt.done.data"
INSTALLED_FESTVOX_RU_PROMPTS = Path("/") / FESTVOX_RU_PROMPTS
TUXPAINT_STAMPS = "usr/share/tuxpaint/stamps"
MIN_WORDS = 3          # "Activated." makes a clip shorter than the shortest bonafide segment
MAX_CHARS = 220        # a paragraph would be cut to one segment anyway


@dataclass(frozen=True)
class Sentence:
    """One sentence to synthesise: its text, language and where it came from."""

    text: str
    language: str
    source: str           # asterisk | tuxpaint | festvox_ru

    @property
    def id(self) -> str:
        """Stable id: a hash of language and text (a cache key that survives re-ordering)."""
        return hashlib.sha256(f"{self.language}|{self.text}".encode()).hexdigest()[:16]


@dataclass(frozen=True)
class TextPackage:
    package: str
    members: tuple[str, ...]
    pattern: str | None
    licence: str
    attribution: str


TEXT_PACKAGES: dict[str, TextPackage] = {
    **{f"asterisk-core-sounds-{l}": TextPackage(
        f"asterisk-core-sounds-{l}", (f"usr/share/doc/asterisk-core-sounds-{l}/",), r"core-sounds-.*\.txt\.gz$|copyright$",
        "CC-BY-SA-3.0" if l in ("en", "es", "fr") else "CC-BY-3.0",
        f"Asterisk core sound prompts, transcript ({l}); Digium, Inc. and the credited voice talents")
       for l in ASTERISK_TEXT_LANGS},
    "tuxpaint-stamps-default": TextPackage(
        "tuxpaint-stamps-default", (TUXPAINT_STAMPS + "/",), r"\.txt$", "GPL-2+",
        "Tux Paint stamp descriptions and their translations, Copyright 2002-2022 Bill Kendrick and contributors"),
    "festvox-ru": TextPackage(
        "festvox-ru", (FESTVOX_RU_PROMPTS,), None, "BSD-like",
        "msu_ru_nsh prompt list, Copyright (c) 2005 Nickolay V. Shmyrev"),
}


# ---------------------------------------------------------------------------- parsing

def clean_text(text: str) -> str | None:
    """One line of prompt text as an engine should read it, or None when it is not a sentence.

    Drops bracketed stage directions (``[ascending tones]``), byte-order marks and extra blanks;
    refuses texts under :data:`MIN_WORDS` words or over :data:`MAX_CHARS` characters.
    """
    t = text.replace("\ufeff", "").strip()
    t = re.sub(r"\[[^\]]*\]", " ", t)
    t = re.sub(r"\s+", " ", t).strip(" -")
    if not t or len(t.split()) < MIN_WORDS or len(t) > MAX_CHARS or not re.search(r"\w", t):
        return None
    return t


def parse_asterisk(text: str) -> list[str]:
    """``core-sounds-<l>.txt``: ``name: text`` per line, ``;`` comments."""
    out = []
    for line in text.splitlines():
        line = line.replace("\ufeff", "")
        if not line.strip() or line.lstrip().startswith(";") or ":" not in line:
            continue
        t = clean_text(line.split(":", 1)[1])
        if t:
            out.append(t)
    return out


def parse_tuxpaint(text: str) -> dict[str, str]:
    """A stamp's ``.txt``: English on the first line, ``<lang>[_CC][@variant].utf8=<text>`` after it.

    Returns language (two or three letters; the first of its regional variants) -> text.
    """
    out: dict[str, str] = {}
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if lines and "=" not in lines[0].split(" ")[0]:
        t = clean_text(lines[0])
        if t:
            out["en"] = t
    for line in lines[1:]:
        m = re.match(r"^([a-z]{2,3})(?:_[A-Z]{2})?(@\w+)?\.utf8=(.*)$", line.strip())
        if not m or m.group(2):
            continue
        t = clean_text(m.group(3))
        if t:
            out.setdefault(m.group(1), t)
    return out


def parse_festvox_data(text: str) -> list[str]:
    """Festvox's ``txt.done.data``: ``( msu_ru_nsh_0001 "text" )`` per line."""
    out = []
    for m in re.finditer(r'\(\s*\S+\s+"((?:[^"\\]|\\.)*)"\s*\)', text):
        t = clean_text(m.group(1).replace('\\"', '"').replace("+", ""))   # '+' marks stress for the voice
        if t:
            out.append(t)
    return out


# ---------------------------------------------------------------------------- fetching

def fetch_text_package(package: str, dest: Path | None = None) -> Path:
    """Fetch and unpack the text members of one :data:`TEXT_PACKAGES` package (cached)."""
    spec = TEXT_PACKAGES[package]
    return speech_sources.unpack_cached(package, Path(dest or raw_dir() / "texts" / package), spec.members,
                                        spec.pattern, what="text file")


def _asterisk_sentences(root: Path, lang: str) -> list[Sentence]:
    out = []
    for f in sorted(root.rglob("core-sounds-*.txt.gz")):
        text = gzip.decompress(f.read_bytes()).decode("utf-8", errors="replace")
        out += [Sentence(t, lang, "asterisk") for t in parse_asterisk(text)]
    return out


def _tuxpaint_sentences(root: Path) -> list[Sentence]:
    out = []
    for f in sorted((root / TUXPAINT_STAMPS).rglob("*.txt")):
        for lang, t in parse_tuxpaint(f.read_text(errors="replace")).items():
            out.append(Sentence(t, lang, "tuxpaint"))
    return out


def festvox_ru_prompts(fetch: Callable[[str], Path] = fetch_text_package) -> list[str]:
    """msu_ru_nsh's own prompts: from the installed voice, else from the package (fetched)."""
    path = INSTALLED_FESTVOX_RU_PROMPTS
    if not path.exists():
        path = fetch("festvox-ru") / FESTVOX_RU_PROMPTS
    return parse_festvox_data(path.read_text(encoding="utf-8", errors="replace"))


def text_packages(speech_sources_: Sequence[str], languages: Iterable[str]) -> list[str]:
    """The text packages that go with the bonafide's speech sources (a SPEECH_DIR or the legacy
    8 kHz default: the English Asterisk transcript)."""
    langs = set(languages)
    out = []
    if "asterisk_g722" in speech_sources_ or not speech_sources_:
        out += [f"asterisk-core-sounds-{l}" for l in ASTERISK_TEXT_LANGS if l in langs or not speech_sources_ and l == "en"]
    if "tuxpaint" in speech_sources_:
        out.append("tuxpaint-stamps-default")
    if "festvox_ru" in speech_sources_:
        out.append("festvox-ru")
    return out


def gather_sentences(packages: Sequence[str] | None = None, languages: Iterable[str] | None = None,
                     fetch: Callable[[str], Path] = fetch_text_package,
                     echo: Callable[[str], None] = print) -> dict[str, list[Sentence]]:
    """The sentences of ``packages`` (default: every text package) by language, deduplicated.

    ``languages``: only these. A package that cannot be fetched is reported with ``echo`` and left
    out (its language may still have sentences from another package).
    """
    wanted = None if languages is None else set(languages)
    found: list[Sentence] = []
    for pkg in (list(TEXT_PACKAGES) if packages is None else packages):
        if pkg not in TEXT_PACKAGES:
            raise ValueError(f"unknown text package {pkg!r}; choose from {sorted(TEXT_PACKAGES)}")
        lang = pkg.rsplit("-", 1)[-1] if pkg.startswith("asterisk") else None
        try:
            if pkg == "festvox-ru":
                found += [Sentence(t, "ru", "festvox_ru") for t in festvox_ru_prompts(fetch)]
                continue
            root = fetch(pkg)
        except (SpeechSourceError, OSError, subprocess.SubprocessError) as exc:
            echo(f"sentences: package {pkg} is unavailable and is left out ({exc})")
            continue
        found += _asterisk_sentences(root, lang) if lang else _tuxpaint_sentences(root)
    by_lang: dict[str, list[Sentence]] = defaultdict(list)
    seen: set[tuple[str, str]] = set()
    for s in found:
        if (wanted is None or s.language in wanted) and (s.language, s.text) not in seen:
            seen.add((s.language, s.text))
            by_lang[s.language].append(s)
    return dict(by_lang)


def _norm(text: str) -> str:
    return re.sub(r"\W+", " ", text).strip().lower()


def pick_sentences(pool: dict[str, list[Sentence]], languages: Sequence[str], n: int, seed: int,
                   exclude: Iterable[str] = (), keep: Callable[[Sentence], bool] | None = None) -> list[Sentence]:
    """``n`` sentences round-robin over ``languages`` (each language's pool in a seeded order),
    never one whose text is in ``exclude`` (nor one ``keep`` refuses); fewer when the pools run out."""
    banned = {_norm(t) for t in exclude}
    queues = []
    for lang in sorted(set(languages)):
        items = [s for s in pool.get(lang, []) if _norm(s.text) not in banned and (keep is None or keep(s))]
        rng = np.random.default_rng([seed, int(hashlib.sha256(lang.encode()).hexdigest()[:8], 16)])
        queues.append([items[int(k)] for k in rng.permutation(len(items))])
    out: list[Sentence] = []
    while len(out) < n and any(queues):
        for q in queues:
            if q and len(out) < n:
                out.append(q.pop(0))
    return out


def text_licences_markdown(used: Iterable[str]) -> str:
    """The sentences' section of a corpus's ``LICENSES.md``: each text package read, its licence and credit."""
    names = {"asterisk": [p for p in TEXT_PACKAGES if p.startswith("asterisk")], "tuxpaint": ["tuxpaint-stamps-default"],
             "festvox_ru": ["festvox-ru"]}
    out = ["## Sentences read by the text-to-speech systems", "",
           "The TTS spoofs read sentences from these transcripts (the bonafide sources' own wording).", ""]
    for src in sorted(set(used)):
        for pkg in names.get(src, []):
            t = TEXT_PACKAGES[pkg]
            out.append(f"- `{pkg}`: {t.licence}. {t.attribution}.")
    return "\n".join(out) + "\n"


__all__ = ["ASTERISK_TEXT_LANGS", "Sentence", "TEXT_PACKAGES", "TextPackage", "clean_text", "festvox_ru_prompts",
           "fetch_text_package", "gather_sentences", "text_packages", "parse_asterisk", "parse_festvox_data", "parse_tuxpaint", "text_licences_markdown",
           "pick_sentences"]
