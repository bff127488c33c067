"""Wideband, multi-speaker bonafide speech from Debian packages (and from a user's ``SPEECH_DIR``).

The copy-synthesis corpus needs real speech from many voices, at 16 kHz or more, under a licence
that allows redistribution. Debian ships several such recordings as data packages; each is fetched
with ``apt-get download`` and unpacked with ``dpkg-deb --fsys-tarfile`` piped into Python's
:mod:`tarfile`, keeping only the audio and the package's ``copyright`` file (no shell strings, no
root needed, cached under ``raw_dir()/debian/<package>`` with a ``.complete`` marker):

========================  ==============================================  ==========  ============
source name               packages                                        audio       licence
========================  ==============================================  ==========  ============
``asterisk_g722``         ``asterisk-core-sounds-{en,es,fr,it,ru}-g722``  16 kHz      CC-BY-SA-3.0
                                                                          G.722       / CC-BY-3.0
``festvox_ru``            ``festvox-ru`` (msu_ru_nsh, 620 sentences)      16 kHz PCM  BSD-like
``tuxpaint``              ``tuxpaint-stamps-default`` (``*_desc*.ogg``)   44.1 kHz    GPL-2+
                                                                          Vorbis
========================  ==============================================  ==========  ============

Speaker identity comes from a rule per source (package + voice), never from a parent folder:
the Asterisk prompts keep ``digits/``, ``letters/`` ... sub-folders and Tux Paint keeps stamp
categories (``animals/birds``), none of which is a speaker. The Spanish Asterisk prompts are
recorded by the same person as the English ones (Allison Smith), so both map to one speaker.
Tux Paint's spoken descriptions are one speaker *per language* (its changelog credits one
volunteer for most languages; French has two credited voices, which this rule merges — a
conservative choice: a speaker-disjoint split can never leak a voice).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tarfile
import tempfile
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Callable, Iterable, Literal, Sequence

import numpy as np

from helpers.data.audio import AUDIO_SUFFIXES, TARGET_SR, AudioError, list_audio, load_audio
from helpers.paths import raw_dir

SourceName = Literal["asterisk_g722", "festvox_ru", "tuxpaint"]
SOURCES: tuple[SourceName, ...] = ("asterisk_g722", "festvox_ru", "tuxpaint")
SourceCodec = Literal["pcm", "g722", "vorbis"]
MIN_SOURCE_SR = 16_000  # never fall back to narrowband (8 kHz) speech


class SpeechSourceError(RuntimeError):
    """The bonafide speech folder or package is missing, empty or holds no usable audio."""


@dataclass(frozen=True)
class SpeechItem:
    """One bonafide source recording and where it came from."""

    path: Path
    speaker: str
    language: str
    source_package: str
    source_codec: SourceCodec
    source: str = "speech_dir"  # the source name (``asterisk_g722``, ``festvox_ru``, ...)


@dataclass(frozen=True)
class DebSource:
    """A Debian package of speech: what to extract and how to credit it."""

    package: str
    source: str
    members: tuple[str, ...]  # path prefixes inside the package (``usr/share/...``) to extract
    pattern: str  # regular expression a file name under those prefixes must match (copyright always kept)
    licence: str
    attribution: str


# ---------------------------------------------------------------------------- the packages

_AST_SOUNDS = "usr/share/asterisk/sounds"
# language -> (voice folder in the package, speaker id, attribution)
ASTERISK_VOICES: dict[str, tuple[str, str, str, str]] = {
    "en": ("en_US_f_Allison", "ast_allison", "CC-BY-SA-3.0", "Recorded by Allison Smith (theivrvoice.com); "
           "financial contributions by Digium, Inc."),
    "es": ("es_MX_f_Allison", "ast_allison", "CC-BY-SA-3.0", "Recorded by Allison Smith (theivrvoice.com); "
           "financial contributions by Digium, Inc."),
    "fr": ("fr_CA_f_June", "ast_june", "CC-BY-SA-3.0", "Recorded by June Wallack (junewallack.com); translated "
           "by Clod Patry, Kristopher Lalletti and June Wallack; contributions by Digium, Unlimitel, BGM Informatique"),
    "it": ("it_IT_m_Carlo", "ast_carlo", "CC-BY-3.0", "Recorded by Carlo Flora (carloflora.com); translated by "
           "Silvia Petrin"),
    "ru": ("ru_RU_f_IvrvoiceRU", "ast_ivrvoice_ru", "CC-BY-3.0", "Provided by Maxim Topal (ivrvoice.ru)"),
}
ASTERISK_SKIP_DIRS = ("silence",)
FESTVOX_RU_WAV = "usr/share/festival/voices/russian/msu_ru_nsh_clunits/wav"
FESTVOX_RU_SPEAKER = "festvox_ru_nsh"   # the speaker id of its recordings, from which S07's voice was also built
TUXPAINT_STAMPS = "usr/share/tuxpaint/stamps"
_TUX_DESC = re.compile(r"_desc(?:_([A-Za-z]{2,3}(?:_[A-Z]{2})?(?:@[A-Za-z]+)?))?\.ogg$")


def _copyright(pkg: str) -> str:
    return f"usr/share/doc/{pkg}/copyright"


DEB_SOURCES: dict[str, DebSource] = {
    **{f"asterisk-core-sounds-{lang}-g722": DebSource(
        package=f"asterisk-core-sounds-{lang}-g722", source="asterisk_g722",
        members=(f"{_AST_SOUNDS}/{voice}/", _copyright(f"asterisk-core-sounds-{lang}-g722")),
        pattern=r"\.g722$", licence=lic, attribution=f"Asterisk core sound prompts ({lang}, {voice}). {who}.")
       for lang, (voice, _spk, lic, who) in ASTERISK_VOICES.items()},
    "festvox-ru": DebSource(
        package="festvox-ru", source="festvox_ru", members=(FESTVOX_RU_WAV + "/", _copyright("festvox-ru")),
        pattern=r"\.wav$",
        licence="BSD-like (Festvox/Edinburgh style; keep the notice, mark modifications)",
        attribution="msu_ru_nsh Russian voice database, Copyright (c) 2005 Nickolay V. Shmyrev. "
                    "All Rights Reserved. Modified (resegmented, vocoded, compressed) for this corpus."),
    "tuxpaint-stamps-default": DebSource(
        package="tuxpaint-stamps-default", source="tuxpaint", members=(TUXPAINT_STAMPS + "/", _copyright(
            "tuxpaint-stamps-default")),
        pattern=_TUX_DESC.pattern, licence="GPL-2+",
        attribution="Tux Paint stamps, Copyright 2002-2022 Bill Kendrick and contributors; spoken "
                    "descriptions by the volunteers credited in the package changelog."),
}
DEB_SOURCES["asterisk-core-sounds-en-wav"] = DebSource(  # the legacy 8 kHz default (helpers.data.copysynth)
    package="asterisk-core-sounds-en-wav", source="asterisk_wav",
    members=(f"{_AST_SOUNDS}/en_US_f_Allison/", _copyright("asterisk-core-sounds-en-wav")), pattern=r"\.wav$",
    licence="CC-BY-SA-3.0", attribution="Asterisk core sound prompts (en, 8 kHz). Recorded by Allison Smith "
    "(theivrvoice.com); financial contributions by Digium, Inc.")
SOURCE_PACKAGES: dict[str, tuple[str, ...]] = {
    "asterisk_g722": tuple(f"asterisk-core-sounds-{lang}-g722" for lang in ASTERISK_VOICES),
    "festvox_ru": ("festvox-ru",),
    "tuxpaint": ("tuxpaint-stamps-default",),
}


# ---------------------------------------------------------------------------- fetching

def _wanted(name: str, prefixes: Sequence[str], pattern: str | None) -> bool:
    name = name[2:] if name.startswith("./") else name
    for pre in prefixes:
        if pre.endswith("/"):
            if name.startswith(pre) and (pattern is None or re.search(pattern, name)):
                return True
        elif name == pre:
            return True
    return False


def extract_deb(deb: Path, dest: Path, prefixes: Sequence[str], pattern: str | None = None) -> int:
    """Unpack only the regular files of ``deb`` under ``prefixes`` into ``dest``; returns how many.

    ``dpkg-deb --fsys-tarfile`` streams the package's data tar; :mod:`tarfile` reads it in
    stream mode and extracts with the ``data`` filter (no links, devices or absolute paths).
    """
    proc = subprocess.Popen(["dpkg-deb", "--fsys-tarfile", str(deb)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    n = 0
    try:
        with tarfile.open(fileobj=proc.stdout, mode="r|") as tf:
            for member in tf:
                if not member.isfile() or not _wanted(member.name, prefixes, pattern):
                    continue
                rel = PurePosixPath(member.name[2:] if member.name.startswith("./") else member.name)
                if rel.is_absolute() or ".." in rel.parts:
                    continue
                member.name = str(rel)
                tf.extract(member, dest, filter="data")
                n += 1
    finally:
        if proc.stdout:
            proc.stdout.close()
        err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
        rc = proc.wait()
    if rc not in (0, -13) and n == 0:  # -13: SIGPIPE after we stopped reading, harmless
        raise SpeechSourceError(f"dpkg-deb --fsys-tarfile {deb.name} failed: {err.strip()[-300:]}")
    return n


def apt_download(package: str, folder: Path) -> Path:
    """``apt-get download package`` into ``folder`` (one ``apt-get update`` and a retry on failure)."""
    if shutil.which("apt-get") is None or shutil.which("dpkg-deb") is None:
        raise SpeechSourceError(f"apt-get/dpkg-deb not found, so the Debian package {package} cannot be "
                                "fetched; set SPEECH_DIR to a folder of real speech recordings instead")
    cmd = ["apt-get", "download", package]
    res = subprocess.run(cmd, cwd=folder, capture_output=True, text=True)
    if res.returncode != 0:  # empty or stale package lists on a fresh machine
        subprocess.run(["apt-get", "update"], capture_output=True, text=True)
        res = subprocess.run(cmd, cwd=folder, capture_output=True, text=True)
    debs = sorted(folder.glob(f"{package}_*.deb"))
    if res.returncode != 0 or not debs:
        raise SpeechSourceError(f"`apt-get download {package}` failed ({res.stderr.strip()[-300:]}); "
                                f"check `apt-cache policy {package}`, run `apt-get update` as root, "
                                "or set SPEECH_DIR to a folder of real speech")
    return debs[0]


def fetch_deb(package: str, dest: Path | None = None) -> Path:
    """Fetch and unpack the speech of one package of :data:`DEB_SOURCES`; returns the unpack root.

    Cached: once ``<dest>/.complete`` exists a call returns at once and never touches apt.
    An interrupted unpack (no marker) is cleared and redone.
    """
    if package not in DEB_SOURCES:
        raise ValueError(f"unknown speech package {package!r}; known: {sorted(DEB_SOURCES)}")
    spec = DEB_SOURCES[package]
    return unpack_cached(package, Path(dest or raw_dir() / "debian" / package), spec.members, spec.pattern)


def unpack_cached(package: str, dest: Path, members: Sequence[str], pattern: str | None = None,
                  what: str = "file") -> Path:
    """Download ``package`` with apt and unpack its ``members`` (matching ``pattern``) into ``dest``, once:
    a ``.complete`` marker makes later calls return at once; an interrupted unpack (no marker) is redone."""
    marker = dest / ".complete"
    if marker.exists():
        return dest
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    with tempfile.TemporaryDirectory(dir=dest.parent) as tmp:
        deb = apt_download(package, Path(tmp))       # a module global, looked up at call time (tests replace it)
        n = extract_deb(deb, dest, members, pattern)
    if n == 0:
        raise SpeechSourceError(f"{package}: no {what} under {members} in the package")
    marker.write_text(f"{package}\n{n} files\n")
    return dest


# ---------------------------------------------------------------------------- listing per source

def _g722_seconds(path: Path) -> float:
    return path.stat().st_size * 2 / 16000  # 64 kbit/s: one byte carries two 16 kHz samples


def duration_s(item: SpeechItem | Path) -> float:
    """Seconds of audio, read from the header (G.722: from the file size)."""
    path = item.path if isinstance(item, SpeechItem) else Path(item)
    if path.suffix.lower() == ".g722":
        return _g722_seconds(path)
    import soundfile as sf

    return float(sf.info(str(path)).duration)


def asterisk_items(root: Path, language: str) -> list[SpeechItem]:
    """The G.722 prompts of one unpacked ``asterisk-core-sounds-<lang>-g722`` (``silence/`` left out)."""
    voice, speaker, _, _ = ASTERISK_VOICES[language]
    folder = Path(root) / _AST_SOUNDS / voice
    pkg = f"asterisk-core-sounds-{language}-g722"
    return [SpeechItem(p, speaker, language, pkg, "g722", "asterisk_g722")
            for p in sorted(folder.rglob("*.g722"))
            if p.is_file() and not set(p.relative_to(folder).parts[:-1]) & set(ASTERISK_SKIP_DIRS)]


def festvox_ru_items(root: Path) -> list[SpeechItem]:
    """The 620 read sentences of msu_ru_nsh (one male speaker, 16 kHz PCM)."""
    folder = Path(root) / FESTVOX_RU_WAV
    return [SpeechItem(p, FESTVOX_RU_SPEAKER, "ru", "festvox-ru", "pcm", "festvox_ru")
            for p in sorted(folder.glob("*.wav")) if p.is_file()]


def tuxpaint_items(root: Path, min_sr: int = MIN_SOURCE_SR) -> list[SpeechItem]:
    """Tux Paint's spoken stamp descriptions ``*_desc_<lang>.ogg`` (``*_desc.ogg``: English).

    One speaker per language (``tuxpaint_<lang>``); stamp category folders are not speakers.
    A few descriptions are 8 kHz: they are left out (``min_sr``), never resampled up.
    """
    import soundfile as sf

    items = []
    for p in sorted((Path(root) / TUXPAINT_STAMPS).rglob("*_desc*.ogg")):
        m = _TUX_DESC.search(p.name)
        if not m or not p.is_file():
            continue
        try:
            if sf.info(str(p)).samplerate < min_sr:
                continue
        except Exception:  # undecodable: left out, as load_audio would refuse it
            continue
        lang = (m.group(1) or "en").split("@")[0]
        items.append(SpeechItem(p, f"tuxpaint_{lang}", lang.split("_")[0], "tuxpaint-stamps-default",
                                "vorbis", "tuxpaint"))
    return items


def speech_dir_items(folder: str | os.PathLike) -> list[SpeechItem]:
    """A user's folder: LibriSpeech-style ``speaker/chapter/utt`` gives the top-level folder as
    speaker; a flat folder (or one level of folders) is one speaker named after the folder."""
    folder = Path(folder)
    if not folder.exists():
        raise SpeechSourceError(f"SPEECH_DIR {folder} does not exist; point it at a folder of "
                                "speech recordings (wav/flac), or leave it empty for the default")
    if not folder.is_dir():
        raise SpeechSourceError(f"SPEECH_DIR {folder} is not a folder")
    files = list_audio(folder)
    if not files:
        raise SpeechSourceError(f"SPEECH_DIR {folder} holds no audio files "
                                f"({'/'.join(AUDIO_SUFFIXES)} searched recursively)")
    depths = {len(p.relative_to(folder).parts) for p in files}
    librispeech = min(depths) >= 3  # speaker/chapter/utterance
    items = []
    for p in files:
        rel = p.relative_to(folder)
        speaker = rel.parts[0] if librispeech else (folder.name or "speaker")
        codec: SourceCodec = "vorbis" if p.suffix.lower() == ".ogg" else "pcm"
        items.append(SpeechItem(p, _clean(speaker), "-", "-", codec, "speech_dir"))
    return items


def _clean(s: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.\-]", "_", s) or "-"


# ---------------------------------------------------------------------------- selection

def cap_minutes_per_speaker(items: Iterable[SpeechItem], minutes: float | None, seed: int = 2022,
                            durations: dict[Path, float] | None = None) -> list[SpeechItem]:
    """At most ``minutes`` of audio per speaker: each speaker's recordings in a seeded order,
    taken while the total stays within the cap (at least one recording per speaker).

    Deterministic for a given seed and item list; the result is sorted by speaker then path.
    """
    items = list(items)
    if minutes is None:
        return sorted(items, key=lambda it: (it.speaker, str(it.path)))
    out = []
    for queue in seeded_speaker_queues(items, seed).values():
        total = 0.0
        for it in queue:
            d = durations[it.path] if durations and it.path in durations else duration_s(it)
            if total + d > minutes * 60 and total > 0:
                continue
            out.append(it)
            total += d
    return sorted(out, key=lambda it: (it.speaker, str(it.path)))


def seeded_speaker_queues(items: Sequence[SpeechItem], seed: int) -> dict[str, list[SpeechItem]]:
    """Each speaker's recordings (sorted by speaker) in an order seeded by (seed, speaker): the one draw that the
    minutes cap and the round-robin subset both take recordings from."""
    by_spk: dict[str, list[SpeechItem]] = defaultdict(list)
    for it in items:
        by_spk[it.speaker].append(it)
    out = {}
    for spk in sorted(by_spk):
        pool = sorted(by_spk[spk], key=lambda it: str(it.path))
        rng = np.random.default_rng([seed, _stable_int(spk)])
        out[spk] = [pool[int(k)] for k in rng.permutation(len(pool))]
    return out


def balanced_subset(items: Sequence[SpeechItem], n: int | None, seed: int = 2022) -> list[SpeechItem]:
    """``n`` recordings taken round-robin over speakers (each speaker's list in a seeded order)."""
    if n is None or n >= len(items):
        return list(items)
    queues = list(seeded_speaker_queues(items, seed).values())
    out: list[SpeechItem] = []
    while len(out) < n:
        for q in queues:
            if q and len(out) < n:
                out.append(q.pop(0))
    return sorted(out, key=lambda it: (it.speaker, str(it.path)))


def _stable_int(s: str) -> int:
    import hashlib

    return int.from_bytes(hashlib.sha256(s.encode()).digest()[:4], "little")


def gather_speech(sources: Sequence[str] = SOURCES, minutes_per_speaker: float | None = None,
                  seed: int = 2022, fetch: Callable[[str], Path] = fetch_deb,
                  echo: Callable[[str], None] = print) -> list[SpeechItem]:
    """The bonafide recordings of the named sources, fetched (cached) and capped per speaker.

    A package that cannot be fetched is reported with ``echo`` and left out; the others are
    used. If none of them gives audio, :class:`SpeechSourceError` says so (there is no silent
    fall-back to the 8 kHz default).
    """
    unknown = [s for s in sources if s not in SOURCE_PACKAGES]
    if unknown:
        raise ValueError(f"unknown speech source(s) {unknown}; choose from {list(SOURCE_PACKAGES)}")
    items: list[SpeechItem] = []
    failed: list[str] = []
    for source in sources:
        for pkg in SOURCE_PACKAGES[source]:
            try:
                root = fetch(pkg)
            except (SpeechSourceError, OSError, subprocess.SubprocessError) as exc:
                failed.append(pkg)
                echo(f"speech source {source}: package {pkg} is unavailable and is left out ({exc}); "
                     "the corpus is built from the other packages")
                continue
            if source == "asterisk_g722":
                got = asterisk_items(root, pkg.split("-")[3])
            elif source == "festvox_ru":
                got = festvox_ru_items(root)
            else:
                got = tuxpaint_items(root)
            if not got:
                failed.append(pkg)
                echo(f"speech source {source}: package {pkg} unpacked at {root} holds no usable audio; left out")
            items += got
    if not items:
        raise SpeechSourceError(f"none of the speech sources {list(sources)} gave audio (failed: {failed}); "
                                "check `apt-cache policy <package>` and `apt-get update`, or set SPEECH_DIR")
    return cap_minutes_per_speaker(items, minutes_per_speaker, seed)


# ---------------------------------------------------------------------------- decoding

def load_g722(path: str | os.PathLike) -> np.ndarray:
    """Decode a raw 64 kbit/s G.722 file (Asterisk's ``.g722``) to 16 kHz float32 with PyAV."""
    from helpers.data.codecs import g722_decode

    path = Path(path)
    if not path.exists() or path.stat().st_size == 0:
        raise AudioError(f"{path}: missing or empty G.722 file; re-extract the package")
    return g722_decode(path.read_bytes())


def load_speech(item: SpeechItem | str | os.PathLike, target_sr: int = TARGET_SR) -> np.ndarray:
    """16 kHz mono float32 samples of a source recording, whatever its container."""
    path = Path(item.path if isinstance(item, SpeechItem) else item)
    if path.suffix.lower() == ".g722":
        wav = load_g722(path)
        if target_sr != 16000:
            from helpers.data.audio import resample

            wav = resample(wav, 16000, target_sr)
        return wav
    wav, _ = load_audio(path, target_sr)
    return wav


# ---------------------------------------------------------------------------- licences

def licence_rows(items: Iterable[SpeechItem]) -> list[dict[str, str]]:
    """One row per source package used: package, licence, attribution, files, speakers."""
    per: dict[str, list[SpeechItem]] = defaultdict(list)
    for it in items:
        per[it.source_package].append(it)
    rows = []
    for pkg in sorted(per):
        spec = DEB_SOURCES.get(pkg)
        rows.append({"package": pkg, "source": per[pkg][0].source,
                     "licence": spec.licence if spec else "as given by the SPEECH_DIR owner",
                     "attribution": spec.attribution if spec else "user-provided recordings (SPEECH_DIR)",
                     "files": str(len(per[pkg])),
                     "speakers": ", ".join(sorted({it.speaker for it in per[pkg]}))})
    return rows


def _copyright_excerpt(item: SpeechItem, max_lines: int = 40) -> str:
    """The head of the package's own ``copyright`` file (found next to the unpacked audio)."""
    for parent in item.path.parents:
        cand = parent / _copyright(item.source_package)
        if cand.exists():
            lines = cand.read_text(errors="replace").splitlines()
            # DEP-5: the Files: paragraphs come first; standalone "License:" paragraphs (full texts) follow
            cut = next((i for i in range(1, len(lines)) if lines[i].startswith("License:")
                        and not lines[i - 1].strip()), len(lines))
            return "\n".join(lines[:min(cut, max_lines)]).rstrip()
    return "(copyright file not found next to the audio)"


def licences_markdown(items: Sequence[SpeechItem]) -> str:
    """A ``LICENSES.md`` for a built corpus: per package the licence, attribution and the head of
    its Debian ``copyright`` file; all audio in the corpus is derived (resegmented, vocoded,
    compressed) from these recordings."""
    first: dict[str, SpeechItem] = {}
    for it in items:
        first.setdefault(it.source_package, it)
    out = ["# Licences of the speech in this corpus", "",
           "Every bonafide trial is a segment of a recording listed here; every copy-synthesis spoof is the same "
           "segment re-synthesised by a vocoder, then compressed; text-to-speech spoofs read the transcripts and "
           "were made by the systems listed after the recordings. These files are modified versions (derivative "
           "works) of the recordings, texts and voices named here and keep their licences.", ""]
    for row in licence_rows(items):
        out += [f"## {row['package']}", "", f"- source: `{row['source']}`", f"- licence: {row['licence']}",
                f"- attribution: {row['attribution']}", f"- recordings used: {row['files']}",
                f"- speakers: {row['speakers']}", ""]
        if row["package"] in DEB_SOURCES:
            out += ["Excerpt of the package's `/usr/share/doc/%s/copyright`:" % row["package"], "", "```",
                    _copyright_excerpt(first[row["package"]]), "```", ""]
    return "\n".join(out) + "\n"


__all__ = ["ASTERISK_VOICES", "DEB_SOURCES", "SOURCES", "SOURCE_PACKAGES", "DebSource", "SpeechItem",
           "SpeechSourceError", "apt_download", "asterisk_items", "balanced_subset", "cap_minutes_per_speaker",
           "duration_s", "extract_deb", "fetch_deb", "festvox_ru_items", "gather_speech", "licence_rows",
           "licences_markdown", "load_g722", "load_speech", "speech_dir_items", "tuxpaint_items"]
