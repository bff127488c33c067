import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from helpers.data import corpus as C
from helpers.data.copysynth import (SpeechSourceError, VOCODERS, CopySynthConfig, build_copysynth, copy_choice,
                                    resolve_speech_files, segment, vocode)
from helpers.data.keys import KeysFormatError, parse_keys
from tests.conftest import speechlike


@pytest.mark.parametrize("voc", VOCODERS)
def test_each_vocoder_keeps_length_and_changes_signal(voc):
    x = speechlike(1.5)
    y = vocode(x, voc)
    assert y.shape == x.shape and y.dtype == np.float32 and np.isfinite(y).all()
    assert not np.allclose(x, y, atol=1e-3)
    assert np.max(np.abs(y)) > 1e-3                     # not silence
    assert np.corrcoef(np.abs(np.fft.rfft(x)), np.abs(np.fft.rfft(y)))[0, 1] > 0.2   # still the same sound


def test_segment_drops_short_pieces():
    pieces = segment(np.zeros(16000 * 7 + 8000), 3.0, 1.0)
    assert [len(p) for p in pieces] == [48000, 48000, 16000 + 8000]
    assert segment(np.zeros(12000), 3.0, 1.0) == []


def test_speech_dir_errors(tmp_path):
    with pytest.raises(SpeechSourceError, match="does not exist"):
        resolve_speech_files(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(SpeechSourceError, match="holds no audio"):
        resolve_speech_files(tmp_path / "empty")
    (tmp_path / "txt").mkdir()
    (tmp_path / "txt" / "readme.txt").write_text("hi")
    with pytest.raises(SpeechSourceError, match="holds no audio"):
        resolve_speech_files(tmp_path / "txt")


COPY = ("S12", "S13", "S14")


def test_tts_style_copy_synthesis_is_coarser_than_the_diagnostics():
    """S12 re-synthesises from 80 mel bands, so it misses the input's harmonics more than the full-STFT
    diagnostic D01; S13's coded envelope and aperiodicity change WORLD's output (not the same as D02)."""
    x = speechlike(1.5)
    spec = lambda y: np.abs(np.fft.rfft(y))[: len(y) // 4]   # noqa: E731 (up to 4 kHz: the harmonics)
    err_coded = np.mean((spec(vocode(x, "mel_griffinlim")) - spec(x)) ** 2)
    err_full = np.mean((spec(vocode(x, "griffinlim")) - spec(x)) ** 2)
    assert err_coded > err_full
    coded, full = vocode(x, "world_coded"), vocode(x, "world")
    assert np.sqrt(np.mean((coded - full) ** 2)) > 0.01 * np.sqrt(np.mean(full ** 2))


def test_copy_choice_shares_segments_evenly():
    picks = [copy_choice(5, i, s, COPY, 6) for i in range(60) for s in range(2)]
    counts = pd.Series([p for p in picks if p]).value_counts()
    assert set(counts.index) == set(COPY) and counts.max() - counts.min() <= 1
    assert sum(p is None for p in picks) == 60          # 3 of 6 slots are the TTS systems'
    assert copy_choice(5, 3, 1, COPY, 6) == copy_choice(5, 3, 1, COPY, 6)


def test_build_corpus_layout_keys_groups_and_idempotence(speech_dir, tmp_path):
    cfg = CopySynthConfig(segment_s=1.5, min_segment_s=1.0, systems=COPY)
    root = build_copysynth(str(speech_dir), cfg, workers=2)
    recs = parse_keys(root / "keys/CM/trial_metadata.txt")
    bona = [r for r in recs if r.label == "bonafide"]
    spoof = [r for r in recs if r.label == "spoof"]
    assert len(spoof) == len(bona) and len(bona) >= 4     # copy systems only: each segment copied once
    assert {r.attack for r in spoof} == set(COPY)
    assert {r.vocoder for r in spoof} == {"copy_synthesis"}
    for r in recs:
        assert (root / "flac" / f"{r.trial}.flac").exists()
    mtime = (root / "keys/CM/trial_metadata.txt").stat().st_mtime
    assert build_copysynth(str(speech_dir), cfg) == root
    assert (root / "keys/CM/trial_metadata.txt").stat().st_mtime == mtime
    df, skipped = C.load_corpus(C.CorpusLayout(root / "keys/CM/trial_metadata.txt", root / "flac",
                                               root / "keys/CM/trial_groups.txt"))
    assert skipped == [] and df["group"].nunique() == 4
    # a recording and its vocoded copies never straddle splits
    split = C.split_by_group(df, (0.5, 0.25, 0.25), seed=1)
    assert (split.groupby("group")["split"].nunique() == 1).all()


def _toy_table(n_groups=30, per=4):
    rows = []
    for g in range(n_groups):
        for k in range(per):
            rows.append({"trial": f"T{g:03d}_{k}", "group": f"G{g}", "speaker": "S",
                         "label": "bonafide" if k == 0 else "spoof", "attack": "-" if k == 0 else f"A{k}"})
    return pd.DataFrame(rows)


def test_sampling_is_seeded_stratified_and_balanced():
    df = _toy_table()
    s1 = C.sample_trials(df, 40, 0.5, seed=3)
    s2 = C.sample_trials(df, 40, 0.5, seed=3)
    assert s1.equals(s2) and len(s1) == 40
    assert (s1["label"] == "bonafide").sum() == 20
    assert s1[s1.label == "spoof"]["attack"].value_counts().max() - s1[s1.label == "spoof"]["attack"].value_counts().min() <= 1
    natural = C.sample_trials(df, None, None)
    assert len(natural) == len(df)
    biggest = C.sample_trials(df, None, 0.5)
    assert (biggest["label"] == "bonafide").sum() == 30 and len(biggest) == 60
    short = C.sample_trials(df, 100, 0.5)
    assert "asked for 50 bonafide" in short.attrs["note"]


def test_split_fractions_and_determinism():
    df = _toy_table(50)
    a = C.split_by_group(df, (0.7, 0.1, 0.2), 5)
    assert a.equals(C.split_by_group(df, (0.7, 0.1, 0.2), 5))
    frac = a["split"].value_counts(normalize=True)
    assert abs(frac["train"] - 0.7) < 0.1 and abs(frac["test"] - 0.2) < 0.1


def _speaker_table() -> pd.DataFrame:
    """Eight speakers (festvox_ru_nsh among them) with 10 recordings each and one copy (S14) per recording, and
    the TTS systems S07 (built from festvox_ru_nsh's recordings) and S04 reading 30 sentences."""
    rows = []
    for spk in ["festvox_ru_nsh"] + [f"spk{i}" for i in range(7)]:
        for r in range(10):
            g = f"{spk}_{r}"
            rows.append({"trial": f"B_{g}", "group": g, "speaker": spk, "label": "bonafide", "attack": "-"})
            rows.append({"trial": f"C_{g}", "group": g, "speaker": spk, "label": "spoof", "attack": "S14"})
    for sys_, voice in (("S07", "msu_ru_nsh"), ("S04", "slt")):
        for n in range(30):
            rows.append({"trial": f"T_{sys_}_{n}", "group": f"SENT_{n}", "speaker": voice, "label": "spoof",
                         "attack": sys_})
    return pd.DataFrame(rows)


@pytest.mark.parametrize("by", ["speaker", "source"])
def test_the_speaker_an_unseen_voice_was_built_from_is_a_test_speaker(by):
    """S07 splices festvox_ru_nsh's own recordings: with S07 unseen and ``hold_voice_speakers``, that speaker's
    recordings (and their copies) are test-only, the other speakers are split as without it (test keeps speakers
    of its own), and the note says so; with S07 seen, or without the switch, nobody is held back."""
    df = _speaker_table()
    assert C.voices_built_from(["S02", "S07", "A07"]) == ("festvox_ru_nsh",) and C.voices_built_from(["S04"]) == ()
    held = C.assign_splits(df, (0.6, 0.2, 0.2), 3, by, unseen=("S07",), hold_voice_speakers=True)
    nsh = held[held.speaker == "festvox_ru_nsh"]
    assert len(nsh) == 20 and set(nsh.split) == {"test"}
    others = held[held.label.eq("bonafide") & held.speaker.ne("festvox_ru_nsh")]
    assert set(others[others.split == "test"].speaker) and set(others.split) == {"train", "val", "test"}
    recordings = held[~held.group.str.startswith("SENT_")]
    assert set(held.loc[held.attack == "S07", "split"]) == {"test"} and (recordings.groupby("group")["split"].nunique() == 1).all()
    assert "festvox_ru_nsh in the test split only" in held.attrs["note"]
    # the rest are split as if the held speaker were absent
    alone = C.assign_splits(df[df.speaker != "festvox_ru_nsh"], (0.6, 0.2, 0.2), 3, by, unseen=("S07",),
                            hold_voice_speakers=True)
    assert held.set_index("trial").loc[alone.trial, "split"].tolist() == alone.split.tolist()
    sides = set()
    for seed in range(6):
        assert set(C.assign_splits(df, (0.6, 0.2, 0.2), seed, by, unseen=("S07",), hold_voice_speakers=True)
                   .query("speaker == 'festvox_ru_nsh'").split) == {"test"}
        for unseen, hold in ((("S04",), True), (("S07",), False)):
            drawn = C.assign_splits(df, (0.6, 0.2, 0.2), seed, by, unseen=unseen, hold_voice_speakers=hold)
            assert "test split only" not in drawn.attrs.get("note", "")
            sides |= set(drawn.loc[drawn.speaker == "festvox_ru_nsh", "split"])
    assert sides >= {"train", "test"}     # drawn like anyone when S07 is seen or the switch is off


def test_the_held_speaker_switch_keeps_the_keys_of_earlier_runs_and_names_only_what_it_changes():
    """UNSEEN_VOICE_SPEAKER is not itself part of any cache key: "drawn" (and "test" where it changes nothing)
    keeps the corpus and sample keys of runs made before it existed (values from commit c076311); what "test"
    holds back is named by ``held_speakers``, which is what prepare_data adds to the key."""
    from helpers.experiments.pipeline import DataParams, Prepared, held_speakers
    from helpers.io import cache_key

    for p, before in ((DataParams(), "b116db099989"),
                      (DataParams(dataset="asvspoof2021_df", n_trials=40, bonafide_share=None, split_by="speaker"),
                       "eb2b915cdcd8")):
        for switch in ("drawn", "test"):
            q = dataclasses.replace(p, unseen_voice_speaker=switch)
            assert cache_key({"p": q.key_fields(), "local": None}) == before
    corpus = _speaker_table()
    test = DataParams(split_by="speaker", unseen_voice_speaker="test")
    assert held_speakers(test, corpus) == ("festvox_ru_nsh",)
    assert held_speakers(dataclasses.replace(test, unseen_voice_speaker="drawn"), corpus) == ()
    assert held_speakers(dataclasses.replace(test, split_by="clip"), corpus) == ()               # no unit kept together
    assert held_speakers(dataclasses.replace(test, unseen_systems=("S02",)), corpus) == ()      # S07 seen
    assert held_speakers(test, corpus[corpus.speaker != "festvox_ru_nsh"]) == ()                # not in the corpus
    # every metrics file's protocol names the held speaker (the report's protocol line shows it)
    table = C.assign_splits(corpus, (0.6, 0.2, 0.2), 3, "speaker", unseen=test.unseen_systems, hold_voice_speakers=True)
    proto = Prepared(test, "k", Path("."), table).protocol()
    assert proto["held_in_test"] == ["festvox_ru_nsh"] and proto["n_test"] == (table.split == "test").sum()
    drawn = dataclasses.replace(test, unseen_voice_speaker="drawn")
    assert "held_in_test" not in Prepared(drawn, "k", Path("."), C.assign_splits(corpus, (0.6, 0.2, 0.2), 3, "speaker",
                                                                                unseen=drawn.unseen_systems)).protocol()


def test_missing_audio_orphans_and_path_confinement(tmp_path):
    keys = tmp_path / "keys.txt"
    flac = tmp_path / "flac"
    flac.mkdir()
    keys.write_text("S T1 nocodec s - bonafide notrim eval bonafide - - - -\nS T2 nocodec s A spoof notrim eval v - - - -\n")
    (flac / "T1.flac").write_bytes(b"x")
    layout = C.CorpusLayout(keys, flac)
    with pytest.raises(C.CorpusError, match=r"1 trial\(s\) in .*keys.txt have no audio"):
        C.load_corpus(layout)
    df, skipped = C.load_corpus(layout, on_missing="skip")
    assert df["trial"].tolist() == ["T1"] and skipped[0]["reason"] == "audio missing"
    (flac / "T2.flac").write_bytes(b"x")
    (flac / "EXTRA.flac").write_bytes(b"x")
    with pytest.raises(C.CorpusError, match="no line in"):
        C.load_corpus(layout)
    with pytest.raises(KeysFormatError):
        C.audio_path(flac, "../../etc/passwd")


# ---------------------------------------------------------------------------- wideband sources + DF codecs

@pytest.fixture
def offline_apt(monkeypatch):
    """A package without a fake tree is 'unavailable': tests never call apt."""
    from helpers.data import speech_sources

    def no_apt(package, folder):
        raise speech_sources.SpeechSourceError(f"{package}: apt disabled in tests")
    monkeypatch.setattr(speech_sources, "apt_download", no_apt)


def test_build_from_sources_codecs_speakers_and_licences(offline_apt):
    import soundfile as sf

    from helpers.data.codecs import apply_source_codec
    from helpers.paths import raw_dir
    from helpers.data.speech_sources import SOURCES
    from tests.test_speech_sources import make_fake_debian

    make_fake_debian(raw_dir(), languages=("en", "fr"))     # es/it/ru "missing": left out with a message
    codecs = ("nocodec", "low_mp3", "high_ogg")
    cfg = CopySynthConfig(segment_s=1.0, min_segment_s=0.5, systems=("D02", "S14"), sources=SOURCES,
                          codecs=codecs, seed=7)
    root = build_copysynth(None, cfg, workers=2)
    recs = parse_keys(root / "keys/CM/trial_metadata.txt")
    info = pd.read_csv(root / "keys/CM/trial_info.csv", keep_default_na=False)
    assert sorted(info["trial"]) == sorted(r.trial for r in recs)
    groups = dict(line.split() for line in (root / "keys/CM/trial_groups.txt").read_text().splitlines())
    assert groups == dict(zip(info["trial"], info["group"]))
    # speakers by rule, language filled
    assert {r.speaker for r in recs} == {"ast_allison", "ast_june", "festvox_ru_nsh", "tuxpaint_fr", "tuxpaint_ru"}
    assert {r.language for r in recs} == {"en", "fr", "ru"}
    # every spoof shares its source's codec and its bonafide's DF codec
    per_group = info.groupby("group")
    assert (per_group["source_codec"].nunique() == 1).all() and (per_group["codec"].nunique() == 1).all()
    keys_codec = {r.trial: r.codec for r in recs}
    assert all(keys_codec[t] == c for t, c in zip(info["trial"], info["codec"]))
    expect = {"asterisk_g722": "g722", "festvox_ru": "pcm", "tuxpaint": "vorbis"}
    assert all(expect[s] == c for s, c in zip(info["source"], info["source_codec"]))
    # DF codecs applied identically to both classes: same proportions per class, every codec used
    share = info.groupby("label")["codec"].value_counts(normalize=True).unstack(0)
    assert set(share.index) == set(codecs)
    np.testing.assert_allclose(share["bonafide"], share["spoof"])
    # no shortcut: a G.722 source's vocoded copy went through G.722 after vocoding
    copied = set(info.loc[info.system == "D02", "trial"])
    row = info[(info.source_codec == "g722") & (info.codec == "nocodec") & (info.label == "bonafide")
               & info.trial.map(lambda t: f"{t}_D02" in copied)].iloc[0]
    bona, _ = sf.read(root / "flac" / f"{row.trial}.flac", dtype="float32")
    spoof, _ = sf.read(root / "flac" / f"{row.trial}_D02.flac", dtype="float32")
    plain = vocode(bona, "world")
    coded = apply_source_codec(plain, "g722")
    assert np.sum((spoof - coded) ** 2) < 0.5 * np.sum((spoof - plain) ** 2)
    # licences written into the corpus, each source named
    text = (root / "LICENSES.md").read_text()
    for pkg in ("asterisk-core-sounds-en-g722", "asterisk-core-sounds-fr-g722", "festvox-ru", "tuxpaint-stamps-default"):
        assert f"## {pkg}" in text
    assert "asterisk-core-sounds-it-g722" not in text
    # resumable: a lost FLAC is rebuilt, the rest reused
    (root / "manifest.json").unlink()
    (root / "flac" / f"{row.trial}_D02.flac").unlink()
    assert build_copysynth(None, cfg, workers=1) == root
    again, _ = sf.read(root / "flac" / f"{row.trial}_D02.flac", dtype="float32")
    assert np.array_equal(again, spoof)


def test_minutes_per_speaker_and_max_sources_in_build(offline_apt):
    from helpers.paths import raw_dir
    from helpers.data.speech_sources import SOURCES
    from tests.test_speech_sources import make_fake_debian

    make_fake_debian(raw_dir(), languages=("en", "fr"))
    cfg = CopySynthConfig(segment_s=1.0, min_segment_s=0.5, systems=("S13",), sources=SOURCES,
                          minutes_per_speaker=2.0 / 60, max_sources=4)
    root = build_copysynth(None, cfg, workers=2)
    info = pd.read_csv(root / "keys/CM/trial_info.csv", keep_default_na=False)
    n_src = info.groupby("speaker")["group"].nunique()
    assert n_src.sum() == 4 and n_src.max() == 1          # round-robin over speakers, one 1.6 s file fits in 2 s


def test_tts_spoofs_go_through_a_bonafide_source_codec_and_the_df_codecs(offline_apt, monkeypatch):
    """A TTS clip gets a source codec drawn from the bonafide recordings of its language (G.722 here), then
    its DF codec; the DF codecs are shared alike by both classes."""
    import soundfile as sf

    from helpers.data import copysynth as CS
    from helpers.data.codecs import apply_codec, apply_source_codec
    from helpers.paths import raw_dir
    from tests.test_speech_sources import make_fake_debian
    from tests.test_synthesis import fake_sentences, fake_synthesize

    make_fake_debian(raw_dir(), languages=("en", "fr"))
    monkeypatch.setattr(CS, "synthesize", fake_synthesize)
    codecs = ("nocodec", "low_mp3")
    cfg = CopySynthConfig(segment_s=1.0, min_segment_s=0.5, systems=("S04", "S12"), sources=("asterisk_g722",),
                          codecs=codecs, seed=3)
    root = build_copysynth(None, cfg, workers=2, check=lambda s: None, sentence_source=fake_sentences)
    info = pd.read_csv(root / "keys/CM/trial_info.csv", keep_default_na=False)
    tts = info[info.system == "S04"]
    assert len(tts) and set(tts.source_codec) == {"g722"} and set(tts.codec) == set(codecs)
    share = info.groupby("label")["codec"].value_counts(normalize=True).unstack(0)
    assert set(share.index) == set(codecs) and (abs(share["bonafide"] - share["spoof"]) < 0.35).all()
    # the stored clip is the rendering's segment, G.722-coded, then DF-coded
    row = tts[tts.codec == "low_mp3"].iloc[0]
    raw, _ = sf.read(next((root.parent.parent / "synthesis").glob("S04-*")) / Path(row.source_file).name, dtype="float32")
    piece = segment(raw, 1.0, 0.5)[int(row.trial.rsplit("_", 1)[1])]
    stored, _ = sf.read(root / "flac" / f"{row.trial}.flac", dtype="float32")
    chain = apply_codec(apply_source_codec(piece, "g722"), "low_mp3")
    plain = piece[: len(stored)]
    assert len(stored) == len(chain)
    assert np.sum((stored - chain) ** 2) < 0.2 * np.sum((stored - plain) ** 2)
