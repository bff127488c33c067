import numpy as np
import pandas as pd
import pytest

from helpers import corpus as C
from helpers.copysynth import (SpeechSourceError, VOCODERS, CopySynthConfig, build_copysynth, resolve_speech_files,
                               segment, vocode)
from helpers.keys import KeysFormatError, parse_keys
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


def test_build_corpus_layout_keys_groups_and_idempotence(speech_dir, tmp_path):
    root = build_copysynth(str(speech_dir), CopySynthConfig(segment_s=1.5, min_segment_s=1.0), workers=2)
    recs = parse_keys(root / "keys/CM/trial_metadata.txt")
    bona = [r for r in recs if r.label == "bonafide"]
    spoof = [r for r in recs if r.label == "spoof"]
    assert len(spoof) == 3 * len(bona) and len(bona) >= 4
    assert {r.attack for r in spoof} == set(VOCODERS)
    for r in recs:
        assert (root / "flac" / f"{r.trial}.flac").exists()
    mtime = (root / "keys/CM/trial_metadata.txt").stat().st_mtime
    assert build_copysynth(str(speech_dir), CopySynthConfig(segment_s=1.5, min_segment_s=1.0)) == root
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
