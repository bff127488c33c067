import json

import numpy as np

from helpers.reporting import report


def _rec(model, cond, ev, y, pred, clean=None, **kw):
    r = {"model": model, "condition": cond, "evaluation": ev, "accuracy": float(np.mean(np.array(y) == np.array(pred))),
         "balanced_accuracy": 0.5, "eer": 0.25, "n": len(y), "per_clip": {"y": y, "pred": pred, "score": [0.1] * len(y)}}
    if clean is not None:
        r["per_clip"]["pred_clean"] = clean
        r["clean_accuracy"] = float(np.mean(np.array(y) == np.array(clean)))
    r.update(kw)
    return r


def test_table_from_fixture_keeps_missing_conditions_missing(tmp_path):
    y = [0, 0, 1, 1]
    recs = [_rec("resnet18", "baseline_clean", "clean", y, [0, 0, 1, 1], [0, 0, 1, 1]),
            _rec("resnet18", "baseline_pixle", "non-adaptive", y, [1, 0, 0, 1], [0, 0, 1, 1],
                 attack_success_rate=0.5, queries=12.0, l0=30.0)]
    (tmp_path / "02_pixle.json").write_text(json.dumps({"dataset": "copysynth", "profile": "smoke", "records": recs}))
    records, header = report.collect_records(tmp_path)
    assert header == {"dataset": "copysynth", "profile": "smoke", "data_keys": {}}
    table = report.build_table(records, ["resnet18"], n_boot=50)
    assert len(table) == 1 + 1 + 2 + 1 + 1 + 2           # every expected row is there
    pix = table[(table.condition == "baseline_pixle")].iloc[0]
    assert pix["accuracy"] == 0.5 and pix["queries"] == 12.0 and pix["thesis_accuracy"] == 0.2516
    assert pix["accuracy_lo"] <= 0.5 <= pix["accuracy_hi"]
    missing = table[(table.condition == "combined_pixle") & (table.evaluation == "adaptive")].iloc[0]
    assert not missing["present"] and np.isnan(missing["accuracy"])       # missing, not zero
    shown = report.format_table(table)
    row = shown[(shown.condition == "adv. training + smoothing under Pixle") & (shown.evaluation == "adaptive")].iloc[0]
    assert row["accuracy %"] == "—"
    assert report.one_class_warnings(records) == []
    collapsed = _rec("resnet18", "smoothing_pixle", "non-adaptive", y, [1, 1, 1, 1], [1, 1, 1, 1])
    warn = report.one_class_warnings(records + [collapsed, {**collapsed, "evaluation": "adaptive"}])
    assert len(warn) == 1 and "'spoof'" in warn[0] and "smoothing under Pixle" in warn[0]
    md = report.write_report(tmp_path / "report.md", header, table, [], ["note"]).read_text()
    assert "corpus `copysynth`, profile `smoke`" in md and "| resnet18 | baseline under Pixle | non-adaptive |" in md


def _rz(model, defense, attack, y, pred, attacked, **kw):
    """A notebook-06 record as it reads back from JSON (NaN stored as None)."""
    return {"model": model, "condition": defense, "evaluation": attack, "source": "06_realizable.json",
            "per_clip": {"y": y, "pred": pred, "score": [0.9 if p == 0 else 0.1 for p in pred], "attacked": attacked},
            **kw}


def test_realizable_rows_say_what_a_constant_classifier_scores_on_the_same_clips():
    from helpers.experiments.realizable import accuracy_matrix, realizable_table, summary_markdown

    y = [0, 0, 0, 1, 1, 1, 1, 1]                            # 3 bonafide of 8: always-spoof scores 62.5%
    att = [1] * 8
    recs = [_rz("resnet18", "baseline", "sparse_rs", y, [1, 1, 1, 0, 0, 0, 1, 1], att),
            _rz("resnet18", "baseline", "pixle", y, [0, 1, 0, 1, 1, 1, 1, 0], att),
            _rz("resnet18", "combined", "sparse_rs", y, [0, 0, 1, 1, 1, 1, 0, 1], att),
            _rz("resnet18", "combined", "stft_pixle", y, [0, 0, 0, 1, 1, 1, 1, 1], [0] * 8)]   # nothing attacked
    df = realizable_table(recs, n_boot=50)
    assert list(df.n_bonafide) == [3] * 4
    assert df.accuracy.tolist() == [2 / 8, 6 / 8, 6 / 8, 1.0]
    assert df.attack_success_rate.iloc[0] == 6 / 8 and np.isnan(df.attack_success_rate.iloc[3])
    mat = accuracy_matrix(df)
    assert mat.loc[0, "Sparse-RS"].startswith("25.0 [") and mat.loc[1, "Pixle"] == "—"   # combined has no Pixle row
    md = summary_markdown(df, {"sparse_rs_k": {"resnet18": 12}}, {"sparse_rs_k": None})
    assert "On 8 test clips (3 bonafide)" in md and "against 62.5% for a constant classifier" in md
    assert "its worst case, 75.0%" in md and "Pixle's budget on this model: 12 pixels" in md
    assert "baseline 75% vs 25%" in md                      # Sparse-RS vs Pixle attack success
    assert "12 pixels, set by SPARSE_RS_K" in summary_markdown(df, {"sparse_rs_k": 12}, {"sparse_rs_k": 12})


def test_out_of_date_realizable_results_are_left_out_with_a_warning(tmp_path, monkeypatch):
    import helpers.experiments.realizable as rz

    monkeypatch.setenv("OUTPUT_DIR", str(tmp_path))
    metrics = tmp_path / "p" / "metrics"
    metrics.mkdir(parents=True)
    y = [0, 0, 1, 1]
    recs = [_rec("resnet18", "baseline_clean", "clean", y, [0, 0, 1, 1], [0, 0, 1, 1]),
            _rec("resnet18", "baseline_pixle", "non-adaptive", y, [1, 0, 0, 1], [0, 0, 1, 1], attack_success_rate=0.5)]
    (metrics / "02_pixle.json").write_text(json.dumps({"dataset": "copysynth", "profile": "p", "records": recs}))
    inputs = {"baselines": {"resnet18": "checkpoints/a.safetensors"}, "at": None, "attack": {}, "subset": [0], "blur": {}}
    (metrics / "06_realizable.json").write_text(json.dumps({
        "dataset": "copysynth", "profile": "p", "inputs": inputs, "budgets": {"sparse_rs_k": {"resnet18": 3}},
        "records": [_rz("resnet18", "baseline", "sparse_rs", y, [1, 1, 0, 0], [1] * 4)]}))
    monkeypatch.setattr(rz, "upstream", lambda profile: inputs)
    current = report.collect("p", n_boot=20)
    assert len(current.realizable) == 1 and "On 4 test clips (2 bonafide)" in current.realizable_markdown()
    monkeypatch.setattr(rz, "upstream", lambda profile: {**inputs, "baselines": {"resnet18": "checkpoints/b.safetensors"}})
    stale = report.collect("p", n_boot=20)
    assert stale.realizable == [] and stale.realizable_markdown() == ""
    assert any("notebook 06's results were computed for other detectors" in n and "--only 06" in n for n in stale.notes)


def test_data_summary_names_the_wideband_speakers_and_keeps_the_8khz_note_for_the_legacy_speech():
    from types import SimpleNamespace

    import pandas as pd

    from helpers.reporting.data_views import data_summary_markdown

    def prep(sources):
        return SimpleNamespace(
            params=SimpleNamespace(dataset="copysynth", speech_dir="", speech_sources=sources),
            table=pd.DataFrame({"speaker": ["a", "b", "b", "c"]}),
            describe=lambda: {"n_trials": 4, "dataset": "copysynth", "by_split": {"test": {"bonafide": 2, "spoof": 2}}},
            protocol=lambda: {"split_by": "speaker", "test_bonafide_share": 0.5})

    wide = data_summary_markdown(prep(("asterisk_g722", "tuxpaint")))
    assert "**3 speakers**" in wide and "`tuxpaint`" in wide and "8 kHz" not in wide
    assert "**8 kHz recordings**" in data_summary_markdown(prep(()))


def test_one_formatter_writes_every_rate():
    """helpers.reporting.format: the strings the report, the claim's verdict and notebook 06 print."""
    from helpers.reporting.format import number, pct, pct_prose, points

    assert pct(0.9189, 0.88, 0.941) == "91.9 [88.0, 94.1]"
    assert pct(0.9189, np.nan, np.nan) == "91.9" and pct(0.5, 0.4, None) == "50.0"   # a CI needs both ends
    assert pct(np.nan) == "—" and pct(None) == "—" and pct(np.nan, missing="") == ""
    assert pct(0.9189, digits=2, unit="%") == "91.89%" and pct(0.25, digits=0, unit="%") == "25%"
    assert pct(0.021, 0.01, 0.033, unit=" points", signed=True) == "+2.1 points [+1.0, +3.3]"
    assert pct_prose(0.96, 0.937, 0.972) == "96.0% (95% CI 93.7–97.2)" and pct_prose(np.nan) == "—"
    assert points(-0.021, -0.033, -0.01) == "-2.1 points (95% CI -3.3 to -1.0)"
    assert number(412.46) == "412.5" and number(31.24, unit="dB") == "31.2 dB" and number(None) == "—"


def test_protocol_line_names_the_split_and_a_speaker_held_in_test():
    """Every table's protocol sentence: corpus, profile, features, class mix, split grouping and test size; a speaker
    UNSEEN_VOICE_SPEAKER="test" held in the test split is named there (it explains a test split larger than its
    fraction)."""
    from helpers.reporting.report import protocol_line

    proto = {"bonafide_share": 0.5, "split_by": "speaker", "split": [0.7, 0.1, 0.2], "n_test": 435,
             "test_bonafide_share": 165 / 435}
    header = {"dataset": "copysynth", "profile": "demo", "features": "lfcc", "protocol": proto}
    line = protocol_line(header)
    assert "`copysynth`" in line and "`demo`" in line and "`lfcc`" in line and "split by **speaker**" in line
    assert "435 clips, bonafide share 0.379" in line and "held in test" not in line
    held = protocol_line({**header, "protocol": {**proto, "held_in_test": ["festvox_ru_nsh"]}})
    assert "speaker(s) festvox_ru_nsh held in test" in held and held.startswith(line.split(" (test split")[0])
    small = protocol_line({**header, "features": "thesis_rgb32", "protocol": {**proto, "feature_shape": [3, 16, 16]}})
    assert "`thesis_rgb32` (3x16x16 images)," in small      # smoke's smaller images are named, not hidden


def test_long_term_spectra_show_a_source_that_rolls_off_and_prefer_uncoded_clips(tmp_path):
    """helpers.reporting.data_views.long_term_spectra: per bonafide source and per spoof system, each clip normalised
    to its peak; a low-passed source sits far below a white one at the band's top, and coded clips count only for a
    group without uncoded ones."""
    import soundfile as sf
    from scipy.signal import butter, sosfilt

    from types import SimpleNamespace

    import pandas as pd

    from helpers.reporting import figures
    from helpers.reporting.data_views import long_term_spectra

    rng = np.random.default_rng(0)
    sos = butter(8, 4000, fs=16000, output="sos")
    rows = []
    for i in range(6):
        white = rng.standard_normal(16000).astype("float32") * 0.1
        low = sosfilt(sos, rng.standard_normal(16000)).astype("float32") * 0.1
        for source, label, system, codec, wav in (("wide", "bonafide", "-", "nocodec", white),
                                                  ("narrow", "bonafide", "-", "nocodec", low),
                                                  ("wide", "bonafide", "-", "low_mp3", low),   # coded: left out
                                                  ("-", "spoof", "S1", "low_mp3", low)):       # only coded: kept
            path = tmp_path / f"{source}_{system}_{codec}_{i}.wav"
            sf.write(path, wav, 16000)
            rows.append({"trial": path.stem, "label": label, "source": source, "system": system, "codec": codec,
                         "path": str(path)})
    table = pd.DataFrame(rows)
    df = long_term_spectra(SimpleNamespace(table=table), per_group=4)
    assert set(zip(df["label"], df["group"])) == {("bonafide", "wide"), ("bonafide", "narrow"), ("spoof", "S1")}
    assert (df.groupby("group")["clips"].first() == 4).all()
    at = df[df["freq_hz"] == 7000.0].set_index("group")["db"]
    assert at["wide"] > -15 and at["narrow"] < at["wide"] - 30           # the coded low-passed clips were not used
    assert at["S1"] < at["wide"] - 30 and (df["db"] <= 1e-6).all()       # peaks at 0 dB
    fig = figures.long_term_spectra(df)
    assert len(fig.axes[0].lines) == 2 and len(fig.axes[1].lines) == 2    # two sources; one system and the mean
    assert "S1 (4, coded)" in [t.get_text() for t in fig.axes[1].get_legend().get_texts()]
    assert df.groupby("group")["coded"].first().to_dict() == {"S1": True, "narrow": False, "wide": False}
    figures.plt.close(fig)
