"""``python -m helpers.score``: the user's audio scored like the notebooks score the corpus; bad files are rows.

A tiny profile is built the way the notebooks build one (the 01 stage function trains the detector and writes its
record with the per-clip scores of the whole test split), on generated clips, with the features computed by the
stages' own feature path; only the corpus synthesis of 00 is replaced by writing the clips directly.
"""

from __future__ import annotations

import math
from dataclasses import asdict
from pathlib import Path

import av
import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from helpers import score
from helpers.data.features import compute_features
from helpers.experiments import stages
from helpers.experiments.pipeline import DataParams, Prepared
from helpers.models.training import TrainConfig
from helpers.paths import interim_dir
from tests.conftest import speechlike

PROFILE = "tiny"
SEG = 3.0


def _spoofy(seconds: float, seed: int) -> np.ndarray:
    """A crude 'vocoded' clip: a buzz through a fixed formant-free envelope, different from speechlike."""
    rng = np.random.default_rng(100 + seed)
    t = np.arange(int(seconds * 16000)) / 16000
    x = np.sign(np.sin(2 * np.pi * (110 + 15 * seed) * t)) * 0.05 + 0.01 * rng.standard_normal(len(t))
    return x.astype(np.float32)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """outputs/tiny with 00's and 01's records and a trained ResNet-18, in its own OUTPUT_DIR / DATA_DIR."""
    root = tmp_path_factory.mktemp("tiny")
    env = {"OUTPUT_DIR": str(root / "outputs"), "DATA_DIR": str(root / "data")}
    with pytest.MonkeyPatch.context() as mp:
        for k, v in env.items():
            mp.setenv(k, v)
        corpus = root / "data" / "corpus"
        corpus.mkdir(parents=True)
        rows = []
        for i in range(16):
            split = "train" if i < 8 else ("val" if i < 12 else "test")
            dur = SEG if i % 4 else 2.4          # some clips shorter than SEGMENT_S, as the corpus has
            for label, wav in (("bonafide", speechlike(dur, f0=110 + 9 * i, seed=i)), ("spoof", _spoofy(dur, i))):
                trial = f"T{i:02d}_{label}"
                path = corpus / f"{trial}.flac"
                sf.write(path, wav, 16000, subtype="PCM_16")
                rows.append({"trial": trial, "path": str(path), "label": label, "split": split,
                             "y": int(label == "spoof"), "group": f"G{i}", "speaker": f"S{i % 3}",
                             "attack": "-" if label == "bonafide" else ("buzzA" if i % 2 else "buzzB"),
                             "codec": "nocodec", "language": "en"})
        table = pd.DataFrame(rows)
        params = DataParams(segment_s=SEG, n_trials=None, split=(0.5, 0.25, 0.25))
        prep = Prepared(params, "tinykey", corpus, table)
        for split in ("train", "val", "test"):
            part = table[table.split == split]
            prep.sets[split] = compute_features(part.path.tolist(), part.y.tolist(), part.trial.tolist(),
                                                params.feature_config(), desc=split)
        (interim_dir() / "prepared" / prep.key).mkdir(parents=True)
        table.to_csv(interim_dir() / "prepared" / prep.key / "trials.csv", index=False)
        stages.DataStage(**stages.DataStage.head(PROFILE, prep), data_params=asdict(params),
                         summary=prep.describe()).save()
        cfg = TrainConfig(epochs=2, batch_size=8, lr=0.01, seed=1)
        runs, base = stages.run_baselines(PROFILE, prep, ["resnet18"], cfg)
    return {"env": env, "prep": prep, "base": base, "model": runs["resnet18"].model, "root": root}


@pytest.fixture
def use(tiny, monkeypatch):
    for k, v in tiny["env"].items():
        monkeypatch.setenv(k, v)
    monkeypatch.setattr(score, "load_prepared", lambda profile: tiny["prep"])   # 00's corpus is not rebuilt
    return tiny


def _csv(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, comment="#")


def test_corpus_clips_score_as_in_the_notebooks_evaluation(use, tmp_path):
    """P(bonafide) from the command equals 01's recorded score of the same test trial (to 1e-6)."""
    prep, rec = use["prep"], use["base"].full_test_records[0]
    table = prep.table[prep.table.split == "test"].set_index("trial").loc[prep.sets["test"].trials].reset_index()
    expected = {row.path: 1 / (1 + math.exp(-s)) for row, s in zip(table.itertuples(), rec["per_clip"]["score"])}
    picks = [table[table.label == "bonafide"].path.iloc[0], table[table.label == "spoof"].path.iloc[0]]
    out = tmp_path / "o.csv"
    status = score.main([*picks, "--profile", PROFILE, "--defense", "none", "--out", str(out)])
    assert status == 0
    df = _csv(out)
    assert len(df) == 2 and set(df.decision) <= {"bonafide", "spoof"}
    for row in df.itertuples():
        assert abs(row.p_bonafide - expected[row.file]) < 1e-6, (row.file, row.p_bonafide, expected[row.file])
        assert row.decision == ("bonafide" if row.p_bonafide > row.threshold else "spoof")
    # and through the API, without the CSV's text round trip, for every test clip
    prof = score.load_profile(PROFILE, defenses=["none"])
    rows, _ = score.score_files(table.path.tolist(), prof)
    got = {r["file"]: r["p_bonafide"] for r in rows}
    assert max(abs(got[f] - p) for f, p in expected.items()) < 1e-6


def test_threshold_is_the_validation_eer_point_and_is_cached(use):
    prof = score.load_profile(PROFILE, defenses=["none"])
    s = prof.scorers[0]
    x, y = use["prep"].xy("val")
    p = s.probs(x)
    bona, spoof = p[y.numpy() == 0], p[y.numpy() == 1]
    frr, far = float((bona <= s.threshold).mean()), float((spoof > s.threshold).mean())
    thr, e = score.eer_threshold(y.numpy(), p)
    assert s.threshold == thr and abs((frr + far) / 2 - e) < 1e-12
    assert "validation split" in s.origin and f"{PROFILE}" in s.origin
    cache = Path(use["env"]["OUTPUT_DIR"]) / PROFILE / "scores" / "thresholds.json"
    assert cache.exists()
    again = score.load_profile(PROFILE, defenses=["none"])        # read back, not recomputed
    assert again.scorers[0].threshold == s.threshold


def test_eer_threshold_on_known_scores():
    y = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    p = np.array([0.9, 0.8, 0.7, 0.3, 0.6, 0.2, 0.1, 0.05])
    thr, e = score.eer_threshold(y, p)
    assert e == pytest.approx(0.25)
    assert ((p > thr) == (y == 0)).sum() == 6          # one bonafide rejected, one spoof accepted
    with pytest.raises(score.ScoreError, match="both classes"):
        score.eer_threshold(np.zeros(3), np.ones(3))


def test_windows_have_the_training_length():
    sr, seg = 16000, 3.0
    assert score.split_windows(int(3.2 * sr), seg) == [(0, int(3.2 * sr))]          # one clip, as the corpus
    w = score.split_windows(10 * sr, seg)
    assert [(a / sr, b / sr) for a, b in w] == [(0, 3), (3, 6), (6, 9), (7, 10)]
    assert all(b - a == 3 * sr for a, b in w)
    assert score.split_windows(9 * sr, seg) == [(0, 48000), (48000, 96000), (96000, 144000)]


def _bad_folder(folder: Path, good: list[str]) -> None:
    folder.mkdir()
    (folder / "notes.txt").write_text("this is not audio\n" * 20)
    (folder / "empty.wav").write_bytes(b"")
    data = Path(good[0]).read_bytes()
    (folder / "cut.flac").write_bytes(data[: len(data) // 3])
    sub = folder / "sub"
    sub.mkdir()
    wav, _ = sf.read(good[0])
    sf.write(folder / "good_44k_stereo.wav", np.stack([wav, wav], 1), 16000, subtype="PCM_24")
    sf.write(sub / "good.flac", sf.read(good[1])[0], 16000)


def test_bad_files_get_a_row_and_a_reason_and_exit_status_1(use, tmp_path, capsys):
    good = use["prep"].table[use["prep"].table.split == "test"].path.tolist()[:2]
    folder = tmp_path / "mine"
    _bad_folder(folder, good)
    before = {p: (p.stat().st_mtime_ns, p.stat().st_size) for p in folder.rglob("*")}
    out = tmp_path / "report" / "s.csv"
    status = score.main([str(folder), "--profile", PROFILE, "--detector", "resnet18", "--defense", "none",
                         "--out", str(out)])
    assert status == 1
    df = _csv(out)
    assert len(df) == 5
    skipped = df[df.status == "skipped"].set_index(df[df.status == "skipped"].file.map(lambda f: Path(f).name))
    assert set(skipped.index) == {"notes.txt", "empty.wav", "cut.flac"}
    assert skipped.reason.nunique() == 3
    assert skipped.reason["notes.txt"].startswith("not audio")
    assert skipped.reason["empty.wav"].startswith("empty")
    assert skipped.reason["cut.flac"].startswith("truncated")
    scored = df[df.status == "scored"]
    assert len(scored) == 2 and scored.p_bonafide.between(0, 1).all() and scored.reason.isna().all()
    assert (scored.loc[scored.file.str.endswith(".wav"), "channels"] == 2).all()
    # nothing written next to the user's files
    assert {p: (p.stat().st_mtime_ns, p.stat().st_size) for p in folder.rglob("*")} == before
    # the header names the threshold and where it came from, and which output is bonafide
    head = [ln for ln in out.read_text().splitlines() if ln.startswith("#")]
    thr = [ln for ln in head if ln.startswith("# threshold resnet18/none")]
    assert len(thr) == 1 and "validation split" in thr[0] and f"{scored.threshold.iloc[0]:.6g}" in thr[0]
    assert any("P(class 0 = bonafide)" in ln for ln in head) and any("not evidence either way" in ln for ln in head)
    assert "Traceback" not in capsys.readouterr().err


def test_all_bad_is_exit_status_2_and_the_default_csv_is_under_outputs(use, tmp_path):
    folder = tmp_path / "bad"
    folder.mkdir()
    (folder / "a.txt").write_text("x")
    sf.write(folder / "silent.wav", np.zeros(32000, np.float32), 16000)
    assert score.main([str(folder), "--profile", PROFILE, "--defense", "none"]) == 2
    out = Path(use["env"]["OUTPUT_DIR"]) / PROFILE / "scores" / "scores.csv"
    df = _csv(out)
    assert len(df) == 2 and df.reason.str.startswith("silent").sum() == 1
    assert sorted(p.name for p in folder.iterdir()) == ["a.txt", "silent.wav"]


def test_long_stereo_file_is_scored_in_windows(use, tmp_path):
    wav = np.concatenate([speechlike(3.0, seed=s) for s in range(3)] + [speechlike(1.5, seed=9)])   # 10.5 s
    path = tmp_path / "long.wav"
    sf.write(path, np.stack([wav, 0.5 * wav], 1), 16000, subtype="PCM_16")
    out = tmp_path / "w.csv"
    assert score.main([str(path), "--profile", PROFILE, "--defense", "none", "--windows", "--out", str(out)]) == 0
    df, win = _csv(out), _csv(tmp_path / "w_windows.csv")
    assert df.n_windows.iloc[0] == 4 and df["aggregate"].iloc[0].startswith("mean P(bonafide) over 4 windows")
    assert len(win) == 4 and (win.end_s - win.start_s).round(3).eq(SEG).all()
    assert df.p_bonafide.iloc[0] == pytest.approx(win.p_bonafide.mean(), abs=1e-9)


def test_missing_profile_names_the_command(use, capsys):
    assert score.main(["x.wav", "--profile", "nosuch"]) == 2
    err = capsys.readouterr().err
    assert "python run_all.py --profile nosuch" in err and "Traceback" not in err


def _m4a(path: Path, wav: np.ndarray, sr: int) -> None:
    x = np.ascontiguousarray(np.stack([wav, wav]).astype(np.float32))
    with av.open(str(path), "w") as c:
        s = c.add_stream("aac", rate=sr)
        s.layout = "stereo"
        f = av.AudioFrame.from_ndarray(x, format="fltp", layout="stereo")
        f.sample_rate = sr
        for p in s.encode(f):
            c.mux(p)
        for p in s.encode(None):
            c.mux(p)


@pytest.mark.parametrize("name,sr,kw", [("a.wav", 8000, {"subtype": "PCM_U8"}), ("b.wav", 44100, {"subtype": "PCM_24"}),
                                        ("c.flac", 22050, {}), ("d.ogg", 48000, {"format": "OGG", "subtype": "VORBIS"}),
                                        ("e.mp3", 32000, {"format": "MP3", "subtype": "MPEG_LAYER_III"}),
                                        ("f.m4a", 24000, None)])
def test_formats_rates_and_depths_decode(tmp_path, name, sr, kw):
    from helpers.data.audio import resample

    wav = resample(speechlike(2.0, seed=3), 16000, sr)
    path = tmp_path / name
    if kw is None:
        _m4a(path, wav, sr)
    else:
        sf.write(path, np.stack([wav, wav], 1) if name == "b.wav" else wav, sr, **kw)
    clip = score.read_clip(path)
    assert clip.sample_rate == sr and abs(clip.duration - 2.0) < 0.15
    assert clip.channels == (2 if name in ("b.wav", "f.m4a") else 1)
    ref = speechlike(2.0, seed=3)
    n = min(len(ref), len(clip.wav))
    if name not in ("e.mp3", "f.m4a"):      # lossy codecs add a delay; the others must be the same signal
        assert np.corrcoef(ref[:n], clip.wav[:n])[0, 1] > 0.9


def test_model_card_names_corpus_systems_and_licence(use):
    from helpers.reporting.model_card import NOT_EVIDENCE, write_model_card

    text = write_model_card(PROFILE, n_boot=50).read_text()
    assert NOT_EVIDENCE in text and "MIT" in text and "## What the detectors were not trained on" in text
    assert "| resnet18 | buzzA |  | seen | yes |" in text and "| resnet18 | all seen |  | seen |" in text
    assert "not recorded" in text          # every test system was in training: no unseen-system EER
    assert (Path(use["env"]["OUTPUT_DIR"]) / PROFILE / "MODEL_CARD.md").exists()


def test_certified_detector_gives_07s_vote_share_and_radius(use, tmp_path):
    """With 07's record, the certified rows carry the ablation votes' bonafide share and the certified radius."""
    from helpers.defenses import ablation as A
    from helpers.experiments.certified import CertConfig, CertifiedStage, train_base

    prep = use["prep"]
    cfg = CertConfig(k=45, n0=4, n=24, clips=None, epochs=1)
    res = train_base("resnet18", prep, TrainConfig(epochs=1, batch_size=8, lr=0.01, seed=1), "random", cfg.k, PROFILE,
                     progress=False)
    CertifiedStage(**CertifiedStage.head(PROFILE, prep), config=asdict(cfg),
                   checkpoints={"resnet18/ablation": stages.rel(PROFILE, res.checkpoint)}).save()
    clip = prep.table[prep.table.split == "test"].path.iloc[0]
    out = tmp_path / "c.csv"
    assert score.main([clip, "--profile", PROFILE, "--defense", "certified", "--out", str(out)]) == 0
    row = _csv(out).iloc[0]
    x = prep.sets["test"].x[:1]
    cert = A.certify_ablation(res.model.eval(), x, cfg.k, cfg.n0, cfg.n, cfg.alpha, cfg.seeds()["select"])
    assert row.defense == "certified" and row.threshold == 0.5
    assert abs(row.p_bonafide - float(cert.counts[0, 0]) / cfg.n) < 1e-9
    expected = "abstain" if int(cert.prediction[0]) < 0 else str(int(cert.radius[0]))
    assert str(row.certified_l0_radius) == expected
    head = out.read_text()
    assert "# threshold resnet18/certified" in head and "majority vote of 24 ablations" in head


def test_batched_blur_equals_the_defended_wrapper(use):
    x = use["prep"].sets["test"].x[:5]
    sig = score.sigma_grid([0.1, 5.0])
    assert len(sig) == score.SMOOTHING_DRAWS and sig[0] > 0.1 and sig[-1] < 5.0
    fast = score.blurred(use["model"], 5, sig)(x)
    ref = score.blurred_reference(use["model"], 5, sig, x)
    assert fast.shape == (5,) and np.abs(fast - ref).max() < 1e-6
