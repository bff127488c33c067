import json

import numpy as np

from helpers import report


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
