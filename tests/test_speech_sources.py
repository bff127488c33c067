"""Speech sources: speaker rules per package, the per-speaker cap, fall-back, safe unpacking.

No apt here: fake unpacked package trees (with the ``.complete`` marker that ``fetch_deb``
trusts) are written with generated audio; G.722 files are made with our own encoder.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from helpers.data import speech_sources as S
from helpers.data.codecs import g722_encode
from helpers.paths import raw_dir
from tests.conftest import speechlike

AST = "usr/share/asterisk/sounds"


def _g722(path: Path, seconds: float, seed: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(g722_encode(speechlike(seconds, 16000, 110 + 10 * seed, seed=seed)))


def _copyright(root: Path, pkg: str, text: str) -> None:
    p = root / f"usr/share/doc/{pkg}/copyright"
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text)


def make_fake_debian(raw: Path, languages=("en", "es", "fr"), seconds: float = 1.6) -> dict[str, Path]:
    """Unpacked-package trees as ``fetch_deb`` leaves them, under ``raw/debian/<pkg>``."""
    roots = {}
    for k, lang in enumerate(languages):
        pkg = f"asterisk-core-sounds-{lang}-g722"
        root = raw / "debian" / pkg
        voice = S.ASTERISK_VOICES[lang][0]
        base = root / AST / voice
        _g722(base / "vm-intro.g722", seconds, 10 * k)
        _g722(base / "digits" / "1.g722", seconds, 10 * k + 1)       # digits/ is not a speaker
        _g722(base / "letters" / "a.g722", seconds, 10 * k + 2)      # letters/ is not a speaker
        _g722(base / "silence" / "1.g722", 1.0, 10 * k + 3)          # silence/ is left out
        _copyright(root, pkg, f"Files: *\nCopyright: voice {voice}\nLicense: CC-BY-SA-3.0\n\nLicense: CC-BY-SA-3.0\n long text\n")
        (root / ".complete").write_text(pkg)
        roots[pkg] = root
    root = raw / "debian" / "festvox-ru"
    wav = root / S.FESTVOX_RU_WAV
    wav.mkdir(parents=True)
    for i in range(2):
        sf.write(wav / f"ru_{i:04d}.wav", speechlike(seconds + 0.4 * i, 16000, 100, seed=40 + i), 16000, subtype="PCM_16")
    _copyright(root, "festvox-ru", "Copyright: 2005 Nickolay V. Shmyrev\nLicense: BSD-like\n")
    (root / ".complete").write_text("festvox-ru")
    roots["festvox-ru"] = root
    root = raw / "debian" / "tuxpaint-stamps-default"
    st = root / S.TUXPAINT_STAMPS
    for cat, stem, lang in [("animals/birds", "owl", "fr"), ("food/fruit", "apple", "fr"), ("animals/birds", "owl", "ru")]:
        (st / cat).mkdir(parents=True, exist_ok=True)
        sf.write(st / cat / f"{stem}_desc_{lang}.ogg", speechlike(seconds, 44100, 180, seed=50), 44100,
                 format="OGG", subtype="VORBIS")
    sf.write(st / "animals/birds/owl.ogg", speechlike(1.0, 44100, 300, seed=5), 44100, format="OGG", subtype="VORBIS")
    sf.write(st / "animals/birds/owl_desc_nl.ogg", speechlike(1.5, 8000, 180, seed=6), 8000,  # 8 kHz: left out
             format="OGG", subtype="VORBIS")
    _copyright(root, "tuxpaint-stamps-default", "Copyright: 2002-2022 by Bill Kendrick\nLicense: GPL-2\n")
    (root / ".complete").write_text("tuxpaint-stamps-default")
    roots["tuxpaint-stamps-default"] = root
    return roots


@pytest.fixture(autouse=True)
def _no_apt(monkeypatch):
    def no_apt(package, folder):
        raise S.SpeechSourceError(f"{package}: apt disabled in tests")
    monkeypatch.setattr(S, "apt_download", no_apt)


def _only_fake(pkg: str) -> Path:
    """A fetch that never calls apt: the fake tree if present, else 'unavailable'."""
    root = raw_dir() / "debian" / pkg
    if not (root / ".complete").exists():
        raise S.SpeechSourceError(f"{pkg} not in the fake mirror")
    return S.fetch_deb(pkg)


def test_speakers_follow_the_source_rule_not_folders(capsys):
    make_fake_debian(raw_dir())
    items = S.gather_speech(S.SOURCES, fetch=_only_fake)
    spk = {it.speaker for it in items}
    assert spk == {"ast_allison", "ast_june", "festvox_ru_nsh", "tuxpaint_fr", "tuxpaint_ru"}
    assert not spk & {"digits", "letters", "silence", "birds", "fruit", "en_US_f_Allison"}
    assert not any("silence" in it.path.parts for it in items)
    assert not any(it.path.name == "owl.ogg" or "_nl" in it.path.name for it in items)  # sound effect, 8 kHz
    by = {it.path.name + it.language: it for it in items}
    assert by["vm-intro.g722es"].speaker == "ast_allison"   # same voice as English
    assert {it.source_codec for it in items if it.source == "asterisk_g722"} == {"g722"}
    assert {it.source_codec for it in items if it.source == "tuxpaint"} == {"vorbis"}
    assert {it.source_codec for it in items if it.source == "festvox_ru"} == {"pcm"}
    assert {it.language for it in items} == {"en", "es", "fr", "ru"}
    # it/ru Asterisk packages are "missing": each named in a printed message, the rest still used
    out = capsys.readouterr().out
    assert "asterisk-core-sounds-it-g722 is unavailable" in out and "asterisk-core-sounds-ru-g722" in out


def test_all_sources_missing_is_an_error_not_a_fallback():
    with pytest.raises(S.SpeechSourceError, match="none of the speech sources"):
        S.gather_speech(("festvox_ru",), fetch=_only_fake, echo=lambda m: None)
    with pytest.raises(ValueError, match="unknown speech source"):
        S.gather_speech(("librivox",))


def test_minutes_per_speaker_cap_is_seeded_and_respected(tmp_path):
    folder = tmp_path / "one"
    folder.mkdir()
    for i in range(10):
        sf.write(folder / f"u{i}.wav", speechlike(2.0, 16000, seed=i), 16000, subtype="PCM_16")
    items = S.speech_dir_items(folder)
    items += [S.SpeechItem(p.path, "other", "-", "-", "pcm") for p in items[:2]]
    capped = S.cap_minutes_per_speaker(items, 0.1, seed=1)          # 6 s per speaker
    one = [it for it in capped if it.speaker == "one"]
    assert len(one) == 3 and sum(S.duration_s(it) for it in one) <= 6.0 + 1e-6
    assert [it for it in capped if it.speaker == "other"] == [it for it in items if it.speaker == "other"]
    assert capped == S.cap_minutes_per_speaker(items, 0.1, seed=1)
    picks = {tuple(it.path.name for it in S.cap_minutes_per_speaker(items, 0.1, seed=s) if it.speaker == "one")
             for s in range(6)}
    assert len(picks) > 1                                             # the seed chooses, not the file order
    assert len(S.cap_minutes_per_speaker(items, 0.001, seed=1)) == 2  # at least one recording per speaker
    assert S.cap_minutes_per_speaker(items, None) == sorted(items, key=lambda it: (it.speaker, str(it.path)))


def test_balanced_subset_round_robins_speakers():
    items = [S.SpeechItem(Path(f"/x/{s}{i}.wav"), s, "-", "-", "pcm") for s in "abc" for i in range(5 if s == "a" else 2)]
    sub = S.balanced_subset(items, 6, seed=0)
    assert sorted(it.speaker for it in sub) == ["a", "a", "b", "b", "c", "c"]
    assert sub == S.balanced_subset(items, 6, seed=0)


def test_speech_dir_layouts(tmp_path):
    libri = tmp_path / "LibriSpeech" / "dev-clean"
    for spk, chap in [("84", "121123"), ("84", "121550"), ("174", "50561")]:
        d = libri / spk / chap
        d.mkdir(parents=True)
        sf.write(d / f"{spk}-{chap}-0000.flac", speechlike(1.0), 16000)
    assert {it.speaker for it in S.speech_dir_items(libri)} == {"84", "174"}     # not the chapters
    flat = tmp_path / "my voice"
    flat.mkdir()
    sf.write(flat / "a.wav", speechlike(1.0), 16000)
    sf.write(flat / "b.ogg", speechlike(1.0), 16000, format="OGG", subtype="VORBIS")
    items = S.speech_dir_items(flat)
    assert {it.speaker for it in items} == {"my_voice"}
    assert {it.path.suffix: it.source_codec for it in items} == {".wav": "pcm", ".ogg": "vorbis"}


def test_load_g722_is_16k_and_close_to_the_source(tmp_path):
    x = speechlike(1.0, 16000)
    p = tmp_path / "a.g722"
    p.write_bytes(g722_encode(x))
    assert p.stat().st_size == 8000                                   # 64 kbit/s
    y = S.load_speech(p)
    assert y.dtype == np.float32 and abs(len(y) - len(x)) <= 32
    n = min(len(x), len(y))
    lag = int(np.argmax(np.correlate(y[:n], x[:n], "full")[n - 1:n + 64]))
    assert np.corrcoef(x[: n - lag], y[lag:n])[0, 1] > 0.9


@pytest.mark.skipif(shutil.which("dpkg-deb") is None, reason="dpkg-deb not installed")
def test_extract_deb_keeps_only_the_wanted_files(tmp_path):
    pkg = tmp_path / "pkg"
    (pkg / "DEBIAN").mkdir(parents=True)
    (pkg / "DEBIAN/control").write_text("Package: fake\nVersion: 1\nArchitecture: all\nMaintainer: x <x@y>\n"
                                        "Description: fake\n")
    (pkg / S.FESTVOX_RU_WAV).mkdir(parents=True)
    (pkg / S.FESTVOX_RU_WAV / "ru_0001.wav").write_bytes(b"RIFF")
    (pkg / "usr/share/festival/voices/russian/msu_ru_nsh_clunits/mcep").mkdir(parents=True)
    (pkg / "usr/share/festival/voices/russian/msu_ru_nsh_clunits/mcep/ru_0001.mcep").write_bytes(b"x")
    (pkg / "usr/share/doc/festvox-ru").mkdir(parents=True)
    (pkg / "usr/share/doc/festvox-ru/copyright").write_text("BSD-like")
    deb = tmp_path / "fake.deb"
    subprocess.run(["dpkg-deb", "--build", "--root-owner-group", str(pkg), str(deb)], check=True, capture_output=True)
    dest = tmp_path / "out"
    spec = S.DEB_SOURCES["festvox-ru"]
    assert S.extract_deb(deb, dest, spec.members, spec.pattern) == 2
    files = sorted(str(p.relative_to(dest)) for p in dest.rglob("*") if p.is_file())
    assert files == ["usr/share/doc/festvox-ru/copyright", f"{S.FESTVOX_RU_WAV}/ru_0001.wav"]


def test_licences_markdown_names_each_package():
    make_fake_debian(raw_dir())
    items = S.gather_speech(S.SOURCES, fetch=_only_fake, echo=lambda m: None)
    md = S.licences_markdown(items)
    for pkg in ("asterisk-core-sounds-en-g722", "asterisk-core-sounds-fr-g722", "festvox-ru", "tuxpaint-stamps-default"):
        assert f"## {pkg}" in md
    assert "Allison Smith" in md and "Shmyrev" in md and "GPL-2" in md and "CC-BY-SA-3.0" in md
    assert "long text" not in md                                      # only the Files: part of the copyright
