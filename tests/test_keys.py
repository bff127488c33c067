import pytest

from helpers.data.keys import COLUMNS, KeysFormatError, parse_keys, parse_line, format_keys, validate_trial_id


def test_parses_real_excerpt(shared_data):
    recs = parse_keys(shared_data / "asvspoof2021_df_keys_excerpt.txt")
    assert len(recs) == 34
    labels = {r.label for r in recs}
    assert labels == {"bonafide", "spoof"}
    first = recs[0]
    assert (first.speaker, first.trial, first.codec, first.attack, first.label) == \
        ("LA_0023", "DF_E_2000011", "nocodec", "A14", "spoof")
    assert {r.source for r in recs} == {"asvspoof", "vcc2018", "vcc2020"}
    assert {r.subset for r in recs} >= {"eval", "progress", "hidden"}
    # round trip: formatting and re-parsing gives the same records
    text = format_keys(recs)
    assert parse_keys("x", text.splitlines()) == recs


def test_wrong_column_count_names_file_and_line(tmp_path):
    f = tmp_path / "trial_metadata.txt"
    good = "LA_0023 DF_E_2000011 nocodec asvspoof A14 spoof notrim progress traditional_vocoder - - - -"
    f.write_text(good + "\n" + "LA_0023 DF_E_2000012 nocodec asvspoof A14 spoof notrim\n")
    with pytest.raises(KeysFormatError, match=r"trial_metadata.txt line 2 has 7 columns, expected 13"):
        parse_keys(f)


def test_unknown_label_and_duplicate(tmp_path):
    with pytest.raises(KeysFormatError, match="unknown label 'fake'"):
        parse_line("S T1 nocodec src A1 fake notrim eval v - - - -", "k.txt", 3)
    f = tmp_path / "k.txt"
    line = "S T1 nocodec src A1 spoof notrim eval v - - - -\n"
    f.write_text(line + line)
    with pytest.raises(KeysFormatError, match="line 2: duplicate trial 'T1'"):
        parse_keys(f)


@pytest.mark.parametrize("bad", ["../../etc/passwd", "/abs", "a/b", "..", "x y"])
def test_trial_ids_that_are_paths_are_refused(bad):
    with pytest.raises(KeysFormatError):
        validate_trial_id(bad)


def test_columns_are_the_official_thirteen():
    assert COLUMNS == ("speaker", "trial", "codec", "source", "attack", "label", "trim", "subset", "vocoder",
                       "task", "team", "gender_pair", "language")
