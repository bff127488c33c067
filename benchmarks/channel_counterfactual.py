#!/usr/bin/env python
"""How much does an LFCC detector rest on the band's top? Move every test clip's level above about 6 kHz and watch.

    OUTPUT_DIR=... python benchmarks/channel_counterfactual.py --profile demo_lfcc --arch resnet18

Reads the profile's prepared test split and 01's detector (``stages.load_prepared`` / ``stages.load_detector``), then
scores the test images again after a fixed channel change applied exactly to their log filterbank energies (``features.lfcc_filtered``,
as ``AUGMENT eq``): 0 dB up to the filter centred at 5.7 kHz, rising linearly to ``--gains`` dB at the top
filter (7.6 kHz). Prints, per gain, the mean bonafide score (logit(bonafide) - logit(spoof)) of each bonafide test
speaker and of the spoofs, the share of bonafide and of spoof clips called bonafide (score > 0), and the EER.

A detector that tells spoofs by their traces barely moves; one that learned "a bright top band is bonafide" calls
bonafide clips spoof when their top band is dimmed and spoofs bonafide when it is brightened (README, "What the
recording conditions are, and a channel augmentation against them"). Inference only: seconds on 2 cores.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from helpers.data.features import LFCC_FILTERS, lfcc_filtered
from helpers.evaluation.metrics import bonafide_score, eer
from helpers.experiments import stages
from helpers.models.detectors import predict

FIRST_FILTER = 14     # the last filter left unchanged (centred at 5.7 kHz); full gain at the top filter


def top_band(x: torch.Tensor, gain_db: float) -> torch.Tensor:
    """LFCC images with the level above ~6 kHz moved by up to ``gain_db`` (a linear ramp over the top filters)."""
    f = torch.arange(LFCC_FILTERS, dtype=torch.float32)
    ramp = ((f - FIRST_FILTER) / (LFCC_FILTERS - 1 - FIRST_FILTER)).clamp(0, 1)
    return lfcc_filtered(x, gain_db * ramp)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", default="demo_lfcc")
    ap.add_argument("--arch", default="resnet18", choices=("resnet18", "resnet50"))
    ap.add_argument("--gains", type=float, nargs="+", default=[-30.0, -15.0, 0.0, 15.0, 30.0])
    args = ap.parse_args()
    prep = stages.load_prepared(args.profile)
    if prep.params.features != "lfcc":
        why = (" ('lfcc_cmn' is blind to a per-band gain by construction: every gain gives the same scores)"
               if prep.params.features == "lfcc_cmn" else "")
        raise SystemExit(f"profile {args.profile} has FEATURES = {prep.params.features!r}; this needs 'lfcc'{why}")
    model = stages.load_detector(args.profile, args.arch, "baseline", prep)
    x, y = prep.xy("test")
    test = prep.table[prep.table["split"] == "test"].reset_index(drop=True)
    bona = (test["label"] == "bonafide").to_numpy()
    speakers = sorted(test.loc[bona, "speaker"].unique())
    print(f"profile {args.profile}, {args.arch}, test split: {len(test)} clips, {int(bona.sum())} bonafide "
          f"({', '.join(speakers)}); scores: logit(bonafide) - logit(spoof)")
    print("top-band gain | " + " | ".join(f"mean score {s}" for s in speakers)
          + " | mean score spoof | bonafide called bonafide | spoof called bonafide | EER %")
    for gain in args.gains:
        s = bonafide_score(predict(model, top_band(x, gain) if gain else x)).numpy()
        per_speaker = [f"{s[bona & (test['speaker'] == spk).to_numpy()].mean():+.2f}" for spk in speakers]
        print(f"{gain:+.0f} dB | " + " | ".join(per_speaker) + f" | {s[~bona].mean():+.2f} | "
              f"{np.mean(s[bona] > 0):.2f} | {np.mean(s[~bona] > 0):.2f} | {100 * eer(y.numpy(), s):.1f}")


if __name__ == "__main__":
    main()
