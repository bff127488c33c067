"""The thesis's own numbers and the six conditions it reports: a leaf module every layer may import.

Source: the master thesis "Defense against state-of-the-art black-box adversarial attacks on audio deepfake
detection models by adversarial training and spatial smoothing" (ASVspoof 2021 DF sample, 32x32 images).
These are the thesis's numbers, never this project's: every table that shows them says so.
"""

from __future__ import annotations

# Its headline: accuracy under Pixle (non-adaptive), in percent.
THESIS_ACCURACY: dict[tuple[str, str], float] = {
    ("resnet18", "baseline_pixle"): 25.16, ("resnet18", "combined_pixle"): 91.89,
    ("resnet50", "baseline_pixle"): 23.04, ("resnet50", "combined_pixle"): 93.72,
}
# Its test set: 68 bonafide of 1,649 clips (a bonafide share of 0.041), scored in batches of 16.
THESIS_N_BONAFIDE, THESIS_N_SPOOF = 68, 1581
THESIS_SHARE: float = THESIS_N_BONAFIDE / (THESIS_N_BONAFIDE + THESIS_N_SPOOF)   # 0.04124
THESIS_BATCH_SIZE = 16

# The six conditions (condition id, label) and how each is evaluated.
CONDITIONS: list[tuple[str, str]] = [
    ("baseline_clean", "baseline, clean"),
    ("baseline_pixle", "baseline under Pixle"),
    ("smoothing_pixle", "smoothing under Pixle"),
    ("adv_training_clean", "adversarial training, clean"),
    ("adv_training_pixle", "adversarial training under Pixle"),
    ("combined_pixle", "adv. training + smoothing under Pixle"),
]
EVALUATIONS: dict[str, list[str]] = {
    "baseline_clean": ["clean"], "adv_training_clean": ["clean"],
    "baseline_pixle": ["non-adaptive"], "adv_training_pixle": ["non-adaptive"],
    "smoothing_pixle": ["non-adaptive", "adaptive"], "combined_pixle": ["non-adaptive", "adaptive"]}
DEFENDED = {"smoothing_pixle", "combined_pixle"}   # conditions whose clean accuracy is measured through the blur
