"""Writes notebooks/*.ipynb from the cell sources below (run once after editing; outputs stay empty).

Kept in the repository so notebook structure changes are reviewable as Python diffs.
"""
from pathlib import Path

import nbformat as nbf

NB_DIR = Path(__file__).resolve().parent.parent / "notebooks"
SETUP = '''from helpers.runtime import setup
from helpers import plots
from IPython.display import Audio, Markdown, display

device = setup(SEED)
plots.style()'''


def md(s):
    return nbf.v4.new_markdown_cell(s.strip())


def code(s, tags=None):
    c = nbf.v4.new_code_cell(s.strip())
    if tags:
        c.metadata["tags"] = tags
    return c


def params(s):
    return code(s, ["parameters"])


def write(name, cells):
    nb = nbf.v4.new_notebook()
    nb.cells = cells
    for i, c in enumerate(nb.cells):   # stable ids keep regenerated notebooks diff-free
        c.id = f"{name[:2]}-{i:02d}"
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    nbf.write(nb, NB_DIR / name)


# ------------------------------------------------------------------------------------------ 00
write("00_data.ipynb", [
    md("""
# 00 · Data: corpus, splits and the spectrogram images the detectors see

The thesis trained its detectors on a small sample of **ASVspoof 2021 DF** (eval part00, FLAC,
16 kHz) labelled by the official keys. That corpus (34.5 GB) cannot be downloaded on offline
machines, so by default this notebook builds a **vocoder copy-synthesis** corpus instead: real
speech recordings are the bonafide class, and copies of them resynthesised by three vocoders
(Griffin-Lim, WORLD, LPC) are the spoof class. Both corpora end up in the same layout (an
official-format keys file plus `flac/`), so every later notebook is identical for either:
set `DATASET = "asvspoof2021_df"` (and `ASVSPOOF_ROOT`, or let it download) to use the real one.
"""),
    params('''PROFILE = "demo"
DATASET = "copysynth"          # or asvspoof2021_df
SEED = 2022
SPEECH_DIR = ""                # copysynth folder of real speech (empty means the Asterisk prompts via apt)
ASVSPOOF_ROOT = ""             # asvspoof2021_df local copy (empty means env ASVSPOOF2021_DF_ROOT or download)
MAX_SOURCES = None             # copysynth: use only the first N recordings
SEGMENT_S = 3.0
N_TRIALS = None                # sample size (None takes as many as the class share allows)
BONAFIDE_SHARE = 0.5           # None keeps the corpus mix (ASVspoof 2021 DF has about 3.7% bonafide)
SPLIT = [0.7, 0.1, 0.2]
FEATURES = "thesis_rgb32"      # or logspec
FEATURE_SIZE = 32
ON_ERROR = "error"             # or skip: bad files are listed in outputs/PROFILE/skipped.csv'''),
    code(SETUP + '''
import time
import numpy as np
import soundfile as sf
import torch
from helpers.audio import load_audio
from helpers.features import extract, render_via_figure
from helpers.pipeline import DataParams, prepare_data, save_metrics'''),
    md("## Build (or reuse) the corpus, sample it, split it, extract features\n\nEverything here is cached by the parameters that shape it; a re-run takes seconds."),
    code('''data_params = DataParams(dataset=DATASET, seed=SEED, speech_dir=SPEECH_DIR or None, asvspoof_root=ASVSPOOF_ROOT or None,
                         max_sources=MAX_SOURCES, segment_s=SEGMENT_S, n_trials=N_TRIALS, bonafide_share=BONAFIDE_SHARE,
                         split=tuple(SPLIT), features=FEATURES, feature_size=FEATURE_SIZE, on_error=ON_ERROR)
t0 = time.perf_counter()
prep = prepare_data(data_params, PROFILE)
print(f"prepared in {time.perf_counter() - t0:.1f} s: {prep.corpus_root}")
summary = prep.describe()
display(Markdown(f"**{len(prep.table)} trials** from corpus `{DATASET}`; per split: `{summary['by_split']}`"))
if DATASET == "copysynth" and not SPEECH_DIR:
    display(Markdown("The default bonafide speech is the Asterisk prompts: **8 kHz recordings**, so everything "
                     "above 4 kHz is empty in both classes. Point `SPEECH_DIR` at wideband speech (e.g. LibriSpeech) "
                     "to give the detectors the full band."))'''),
    md("## Class balance and clip lengths"),
    code('''table = prep.table
fig = plots.class_balance(table); plots.save(fig, PROFILE, "00_class_balance")
lengths = [sf.info(p).duration for p in table["path"]]
fig = plots.durations(table, lengths); plots.save(fig, PROFILE, "00_clip_lengths")
print(f"clip length: mean {np.mean(lengths):.2f} s, min {np.min(lengths):.2f} s, max {np.max(lengths):.2f} s")'''),
    md("## A bonafide clip next to its vocoded copies\n\nListen to them: the vocoders keep the words and the voice, and leave their own artefacts."),
    code('''example = table[table["label"] == "bonafide"].iloc[0]
if DATASET == "copysynth":   # the recording and its copies by every vocoder, from the whole corpus
    paths = sorted(prep.corpus_root.joinpath("flac").glob(f"{example['trial']}*.flac"))
    names = ["bonafide" if p.stem == example["trial"] else "spoof (" + p.stem[len(example["trial"]) + 1:] + ")" for p in paths]
else:                        # ASVspoof has no vocoded twins: a bonafide clip next to spoofs of other attacks
    rows = [example] + [r for _, r in table[table["label"] == "spoof"].drop_duplicates("attack").head(3).iterrows()]
    paths, names = [r["path"] for r in rows], [f"{r['label']} ({r['attack']})" for r in rows]
clips = {n: load_audio(p)[0] for n, p in zip(names, paths)}
fig = plots.waveforms_and_spectrograms(clips); plots.save(fig, PROFILE, "00_vocoder_examples")
for name, wav in clips.items():
    print(name); display(Audio(wav, rate=16000))'''),
    md("## The images the detectors see\n\n`thesis_rgb32` paints the log spectrogram with viridis and resizes it to 32x32, directly on the array. Below: how close that is to rendering a matplotlib figure and resizing the saved image (what the thesis did), and how much faster."),
    code('''wav = load_audio(example["path"])[0]
cfg = prep.feature_config
t0 = time.perf_counter(); fast = extract(wav, cfg); t_fast = time.perf_counter() - t0
t0 = time.perf_counter(); slow = render_via_figure(wav, cfg) if cfg.name == "thesis_rgb32" else fast; t_slow = time.perf_counter() - t0
corr = float(np.corrcoef(fast.flatten(), slow.flatten())[0, 1])
print(f"pixel correlation, array vs figure-rendered: {corr:.4f}; {t_slow / max(t_fast, 1e-9):.0f}x faster")
fig, axes = plots.plt.subplots(1, 2, figsize=(4, 2))
plots.show_image(axes[0], fast, "direct"); plots.show_image(axes[1], slow, "figure-rendered")
x_train, y_train = prep.xy("train")
fig = plots.image_grid(x_train, y_train, per_class=8); plots.save(fig, PROFILE, "00_input_grid")'''),
    md("## Feature extraction throughput"),
    code('''sample = table.head(32)
t0 = time.perf_counter()
for p in sample["path"]:
    extract(load_audio(p)[0], cfg)
clips_per_s = len(sample) / (time.perf_counter() - t0)
print(f"feature extraction: {clips_per_s:.1f} clips/s (decode + {cfg.name}) on {device}")
for split in ("train", "val", "test"):
    fs = prep.sets[split]
    assert torch.isfinite(fs.x).all() and fs.x.min() >= 0 and fs.x.max() <= 1
    print(split, tuple(fs.x.shape), "labels:", torch.bincount(fs.y, minlength=2).tolist())'''),
    code('''from dataclasses import asdict
save_metrics(PROFILE, "00_data", {"data_params": asdict(data_params), "summary": summary,
                                   "feature_clips_per_second": clips_per_s, "figure_vs_direct_correlation": corr,
                                   "sample_note": prep.table.attrs.get("note", "")}, prep)'''),
])

# ------------------------------------------------------------------------------------------ 01
write("01_baselines.ipynb", [
    md("""
# 01 · Baselines: ResNet-18 and ResNet-50 detectors

The thesis trains CIFAR-style ResNets on its 32x32 spectrogram images (3x3 stride-1 stem, no
max-pool, four residual stages, average pooling, a 2-way head) with SGD (lr 1e-3, momentum 0.9),
batch 16, 10 epochs, cross-entropy. We report what the field reports for spoofing
countermeasures: accuracy, balanced accuracy and the **EER** (bonafide as the positive class).
Training is checkpointed every epoch; a re-run reuses the finished checkpoint.
"""),
    params('''PROFILE = "demo"
SEED = 2022
MODELS = ["resnet18", "resnet50"]
EPOCHS = 10
BATCH_SIZE = 16
LR = 0.001
MOMENTUM = 0.9
MAX_BATCHES = None       # cap batches per epoch (smoke profile)'''),
    code(SETUP + '''
import pandas as pd
from helpers.evaluation import record
from helpers.metrics import roc_points
from helpers.models import count_parameters, predict
from helpers.pipeline import baseline, load_prepared, save_metrics, train_config

prep = load_prepared(PROFILE)
x_test, y_test = prep.xy("test")
cfg = train_config(EPOCHS, BATCH_SIZE, LR, MOMENTUM, SEED, MAX_BATCHES)
print(prep.describe()["by_split"])'''),
    md("## Train (or reuse)"),
    code('''runs, records, checkpoints = {}, [], {}
for arch in MODELS:
    res = baseline(arch, prep, cfg, PROFILE, device=str(device))
    runs[arch] = res
    checkpoints[arch] = str(res.checkpoint)
    state = "reused checkpoint" if res.reused else f"trained in {res.seconds:.0f} s"
    print(f"{arch}: {count_parameters(res.model) / 1e6:.1f} M parameters, {state}")
    logits = predict(res.model, x_test)
    records.append(record(arch, "baseline_clean", "clean", y_test, logits, clean_logits=logits, scope="full test split"))'''),
    md("## Training and validation curves (the thesis's first two figures)"),
    code('''fig = plots.training_curves({a: r.history for a, r in runs.items()}, "baseline"); plots.save(fig, PROFILE, "01_training_curves")'''),
    md("## Clean test performance"),
    code('''df = pd.DataFrame([{k: r[k] for k in ("model", "accuracy", "balanced_accuracy", "eer", "n")} for r in records])
display(df.style.format({"accuracy": "{:.2%}", "balanced_accuracy": "{:.2%}", "eer": "{:.2%}"}))
curves = {r["model"]: (roc_points(r["per_clip"]["y"], r["per_clip"]["score"])["far"],
                       roc_points(r["per_clip"]["y"], r["per_clip"]["score"])["frr"]) for r in records}
fig = plots.det_curves(curves, "clean test set"); plots.save(fig, PROFILE, "01_det_clean")'''),
    code('''save_metrics(PROFILE, "01_baselines", {"train": cfg.__dict__, "checkpoints": checkpoints,
                                        "histories": {a: r.history for a, r in runs.items()},
                                        "reused": {a: r.reused for a, r in runs.items()},
                                        "train_seconds": {a: r.seconds for a, r in runs.items()},
                                        "full_test_records": records}, prep)'''),
])

# ------------------------------------------------------------------------------------------ 02
write("02_pixle_attack.ipynb", [
    md("""
# 02 · Pixle: a black-box attack that rearranges pixels

Pixle (Pomponi et al., IJCNN 2022) only reads the detector's output probabilities. Each candidate
copies a small random patch of the original image onto other positions; candidates that lower
the true-class probability are kept, and the attack stops as soon as the prediction flips. The
thesis ran `torchattacks.Pixle(model, x_dimensions=(0.1, 0.2), restarts=10, max_iterations=50)`;
`helpers.attacks.Pixle` runs the same algorithm on whole batches (see `benchmarks/pixle_speed.py`
for its speed and parity with torchattacks).
"""),
    params('''PROFILE = "demo"
SEED = 2022
N_ATTACK = None            # test clips to attack in a class-balanced sample (None means all)
PIXLE_RESTARTS = 10
PIXLE_ITERATIONS = 50
PIXLE_X_DIM = [0.1, 0.2]   # patch width: fractions of the image or pixels
PIXLE_Y_DIM = [2, 10]      # patch height (torchattacks' default, which the thesis kept)
PIXLE_MAPPING = "random"
PIXLE_TARGET_BATCH = 64    # candidates per forward pass (CPU: fastest near 64; GPU: thousands)
PIXLE_AMP = False          # bfloat16 forward passes on a GPU (see benchmarks/amp_tolerance.py)
ATTACK_BATCH = 64'''),
    code(SETUP + '''
import pandas as pd
import torch
from helpers.evaluation import AttackConfig, attack_cache_dir, attack_dataset, record, robust_accuracy_curve
from helpers.models import predict
from helpers.paths import cache_dir
from helpers.pipeline import attack_subset, load_detector, load_metrics, load_prepared, save_metrics

prep = load_prepared(PROFILE)
models = list(load_metrics(PROFILE, "01_baselines")["checkpoints"])
x_all, y_all = prep.xy("test")
subset = attack_subset(y_all, N_ATTACK, SEED)
x, y = x_all[subset], y_all[subset]
attack_cfg = AttackConfig(restarts=PIXLE_RESTARTS, max_iterations=PIXLE_ITERATIONS, x_dimensions=tuple(PIXLE_X_DIM),
                          y_dimensions=tuple(PIXLE_Y_DIM), pixel_mapping=PIXLE_MAPPING, seed=SEED,
                          target_batch=PIXLE_TARGET_BATCH, amp=PIXLE_AMP)
print(f"attacking {len(subset)} of {len(y_all)} test clips ({torch.bincount(y, minlength=2).tolist()} bonafide/spoof); {attack_cfg}")'''),
    md("## Attack each baseline"),
    code('''records, runs, curves, adv_dirs = [], {}, {}, {}
budgets = list(range(0, PIXLE_RESTARTS * PIXLE_ITERATIONS + 1, max(1, PIXLE_ITERATIONS // 5)))
detectors = {arch: load_detector(PROFILE, arch, "baseline", prep, str(device)) for arch in models}
for arch, model in detectors.items():
    clean = predict(model, x)
    folder = attack_cache_dir(cache_dir(PROFILE), model.checkpoint_id, attack_cfg, "none", prep.key + str(subset.tolist()))
    run = attack_dataset(model, x, y, attack_cfg, folder, ATTACK_BATCH, device, tag=arch)
    adv_logits = predict(model, run.adv)
    runs[arch], adv_dirs[arch] = run, str(folder)
    records.append(record(arch, "baseline_clean", "clean", y, clean, clean_logits=clean))
    records.append(record(arch, "baseline_pixle", "non-adaptive", y, adv_logits, clean_logits=clean, run=run))
    curves[arch] = robust_accuracy_curve(y, clean.argmax(1), run, budgets)
    state = "from cache" if run.from_cache else f"{run.seconds:.0f} s"
    print(f"{arch}: clean acc {records[-2]['accuracy']:.2%} -> under Pixle {records[-1]['accuracy']:.2%} "
          f"(success {records[-1]['attack_success_rate']:.2%}, {records[-1]['queries']:.0f} queries, "
          f"L0 {records[-1]['l0']:.1f} px; {state})")'''),
    code('''cols = ["model", "condition", "accuracy", "balanced_accuracy", "eer", "attack_success_rate", "queries", "l0"]
display(pd.DataFrame([{c: r.get(c) for c in cols} for r in records]))'''),
    md("## What Pixle does to a spectrogram image\n\nOriginal, adversarial, and the pixels it moved, for a few clips of each class."),
    code('''arch = models[0]
run, model = runs[arch], detectors[arch]
pred_adv = predict(model, run.adv).argmax(1)
attacked = predict(model, x).argmax(1) == y        # clips the model got right, which Pixle had to move
pick = torch.cat([((y == c) & attacked).nonzero().flatten()[:2] for c in (0, 1)])
fig = plots.attack_examples(x[pick], run.adv[pick], y[pick], pred_adv[pick], n=len(pick)); plots.save(fig, PROFILE, "02_pixle_examples")'''),
    md("## Robust accuracy against the attack budget\n\nExact for every budget up to the one run: Pixle's candidates are a fixed sequence, so stopping after *b* candidates gives the images that had not fallen by then."),
    code('''df = pd.DataFrame([{"model": a, "candidates": b, "accuracy": acc} for a, c in curves.items() for b, acc in zip(budgets, c)])
fig = plots.line(df, "candidates", "accuracy", hue="model", title="accuracy under Pixle vs budget",
                 xlabel="candidates (restarts x iterations)"); plots.save(fig, PROFILE, "02_budget_curve")'''),
    code('''save_metrics(PROFILE, "02_pixle", {"attack": attack_cfg.__dict__, "subset": subset.tolist(), "records": records,
                                    "adv_cache": adv_dirs, "budget_curve": {"candidates": budgets, **curves},
                                    "attack_seconds": {a: r.seconds for a, r in runs.items()}}, prep)'''),
])

# ------------------------------------------------------------------------------------------ 03
write("03_spatial_smoothing.ipynb", [
    md("""
# 03 · Spatial smoothing: a Gaussian blur before the detector

The thesis's first defense blurs the (attacked) image before classification:
`torchvision.transforms.GaussianBlur(kernel_size=5, sigma=(0.1, 5.0))`, one random sigma per
call (per batch). The thesis attacked the bare model and blurred afterwards (**non-adaptive**).
An attacker who can query the deployed detector queries the blur too, so we also run Pixle
against `Defended(model, blur)` (**adaptive**, Carlini et al. 2019; Tramer et al. 2020).
A blur that costs clean accuracy is not free, so the clean accuracy with the blur on is reported too.
"""),
    params('''PROFILE = "demo"
SEED = 2022
BLUR_KERNEL = 5
BLUR_SIGMA = [0.1, 5.0]    # a range (random sigma, as the thesis) or one number
BLUR_PER = "batch"         # thesis: one sigma per batch, or image: one per image
EVAL_BATCH = 16            # batch size of the evaluation (one sigma per batch)
EOT_SAMPLES = 1            # adaptive attack: average scores over this many blur draws
SIGMA_SWEEP = [0.5, 1.0, 2.0, 3.0, 5.0]
ATTACK_BATCH = 64'''),
    code(SETUP + '''
import pandas as pd
import torch
from helpers.defenses import Defended, GaussianBlur, blur_factory
from helpers.evaluation import attack_cache_dir, attack_dataset, load_attack, record
from helpers.models import predict
from helpers.report import one_class_warnings
from helpers.paths import cache_dir
from helpers.pipeline import attacked_subset, load_detector, load_prepared, save_metrics

prep = load_prepared(PROFILE)
attack_cfg, subset, x, y, pix = attacked_subset(PROFILE, prep)
blur = blur_factory(BLUR_KERNEL, BLUR_SIGMA, BLUR_PER)
sigma = blur(0).sigma
models = {arch: load_detector(PROFILE, arch, "baseline", prep, str(device)) for arch in pix["adv_cache"]}
base_runs = {arch: load_attack(folder) for arch, folder in pix["adv_cache"].items()}   # 02's adversarial examples
print(f"{len(y)} attacked test clips; blur kernel {BLUR_KERNEL}, sigma {sigma} per {BLUR_PER}; attack {attack_cfg}")'''),
    md("## Non-adaptive (the thesis) and adaptive evaluation"),
    code('''records, examples, adaptive_dirs = [], {}, {}
for arch, model in models.items():
    clean_blur = predict(model, x, EVAL_BATCH, preprocess=blur(SEED + 1))
    base_run = base_runs[arch]
    adv_blur = predict(model, base_run.adv, EVAL_BATCH, preprocess=blur(SEED + 2))
    records.append(record(arch, "smoothing_pixle", "non-adaptive", y, adv_blur, clean_logits=clean_blur, run=base_run))
    defended = Defended(model, blur(SEED + 3), eot=EOT_SAMPLES)
    folder = attack_cache_dir(cache_dir(PROFILE), model.checkpoint_id, attack_cfg, f"blur{BLUR_KERNEL}-{sigma}-{BLUR_PER}-eot{EOT_SAMPLES}", prep.key + str(subset.tolist()))
    run = attack_dataset(defended, x, y, attack_cfg, folder, ATTACK_BATCH, device, tag=f"{arch} adaptive")
    adv_logits = predict(model, run.adv, EVAL_BATCH, preprocess=blur(SEED + 4))
    records.append(record(arch, "smoothing_pixle", "adaptive", y, adv_logits, clean_logits=clean_blur, run=run, eot=EOT_SAMPLES))
    adaptive_dirs[arch] = str(folder)
    examples[arch] = (base_run.adv, blur(SEED + 2)(base_run.adv))
    print(f"{arch}: clean with blur {records[-1]['clean_accuracy']:.2%}; under Pixle + blur: non-adaptive "
          f"{records[-2]['accuracy']:.2%}, adaptive {records[-1]['accuracy']:.2%}")
cols = ["model", "evaluation", "clean_accuracy", "accuracy", "balanced_accuracy", "eer", "attack_success_rate", "queries", "l0"]
display(pd.DataFrame([{c: r.get(c) for c in cols} for r in records]))
for warning in one_class_warnings(records):
    print("WARNING:", warning)'''),
    md("## Original vs Pixle-attacked vs blurred (the thesis's figure)"),
    code('''arch = next(iter(models))
adv, blurred = examples[arch]
model = models[arch]
attacked = predict(model, x).argmax(1) == y
pick = torch.cat([((y == c) & attacked).nonzero().flatten()[:2] for c in (0, 1)])
fig = plots.attack_examples(x[pick], adv[pick], y[pick], predict(model, adv[pick]).argmax(1),
                            extra={"blurred": blurred[pick]}, n=len(pick)); plots.save(fig, PROFILE, "03_original_pixle_blurred")'''),
    md("## Sigma sweep (fixed sigma, non-adaptive)\n\nClean accuracy and accuracy under (non-adaptive) Pixle as the blur grows: the trade-off the thesis's random sigma averages over."),
    code('''rows = []
for arch, model in models.items():
    base_run = base_runs[arch]
    for s in SIGMA_SWEEP:
        f = GaussianBlur(BLUR_KERNEL, float(s))
        rows.append({"model": arch, "sigma": s, "setting": "clean", "accuracy": float((predict(model, x, preprocess=f).argmax(1) == y).float().mean())})
        rows.append({"model": arch, "sigma": s, "setting": "Pixle (non-adaptive)", "accuracy": float((predict(model, base_run.adv, preprocess=f).argmax(1) == y).float().mean())})
sweep = pd.DataFrame(rows)
fig = plots.line(sweep, "sigma", "accuracy", hue="model", style_col="setting", title="accuracy vs blur sigma"); plots.save(fig, PROFILE, "03_sigma_sweep")'''),
    code('''save_metrics(PROFILE, "03_smoothing", {"blur": {"kernel_size": BLUR_KERNEL, "sigma": sigma, "per": BLUR_PER,
                                                  "eval_batch": EVAL_BATCH, "eot": EOT_SAMPLES},
                                         "records": records, "sigma_sweep": rows, "adaptive_adv_cache": adaptive_dirs}, prep)'''),
])

# ------------------------------------------------------------------------------------------ 04
write("04_adversarial_training.ipynb", [
    md("""
# 04 · Adversarial training, alone and combined with smoothing

The thesis's second defense: each batch, Pixle examples are generated against a frozen copy of the
current model and the loss is `CE(clean) + CE(adversarial)` (SGD lr 1e-3, momentum 0.9, 10 epochs).
Its third combines the adversarially trained model with the blur of notebook 03. The adversarially
trained model without preprocessing is attacked directly, which is already adaptive; the combined
defense is evaluated both ways, like in 03. CPU profiles fine-tune the baselines with a small Pixle
budget (`AT_INIT = "baseline"`); the `thesis` profile trains from scratch with the full budget.
"""),
    params('''PROFILE = "demo"
SEED = 2022
AT_INIT = "scratch"        # scratch (thesis) or baseline (fine-tune the 01 baseline)
AT_EPOCHS = 10
AT_RESTARTS = 10           # Pixle budget inside training
AT_ITERATIONS = 50
BATCH_SIZE = 16
LR = 0.001
MOMENTUM = 0.9
MAX_BATCHES = None
ATTACK_BATCH = 64'''),
    code(SETUP + '''
import pandas as pd
import torch
from helpers.defenses import Defended, blur_factory
from helpers.evaluation import attack_cache_dir, attack_dataset, record
from helpers.models import predict
from helpers.paths import cache_dir
from helpers.pipeline import (adversarial, attacked_subset, baseline, load_metrics, load_prepared, save_metrics,
                              train_config)

prep = load_prepared(PROFILE)
attack_cfg, subset, x, y, pix = attacked_subset(PROFILE, prep)
smooth, base_meta = load_metrics(PROFILE, "03_smoothing"), load_metrics(PROFILE, "01_baselines")
b = smooth["blur"]
blur = blur_factory(b["kernel_size"], b["sigma"], b["per"])
sigma = blur(0).sigma
train_attack = {**attack_cfg.kwargs(), "restarts": AT_RESTARTS, "max_iterations": AT_ITERATIONS}
cfg = train_config(AT_EPOCHS, BATCH_SIZE, LR, MOMENTUM, SEED, MAX_BATCHES)
models = list(base_meta["checkpoints"])
print(f"adversarial training: init {AT_INIT}, {AT_EPOCHS} epochs, Pixle {AT_RESTARTS}x{AT_ITERATIONS} per batch")'''),
    md("## Train (or reuse) the adversarially trained detectors"),
    code('''runs, checkpoints = {}, {}
for arch in models:
    init = None
    if AT_INIT == "baseline":
        b_cfg = train_config(**{k: base_meta["train"][k] for k in ("epochs", "batch_size", "lr", "momentum", "seed", "max_batches")})
        init = baseline(arch, prep, b_cfg, PROFILE, device=str(device), progress=False)
    res = adversarial(arch, prep, cfg, train_attack, PROFILE, init=init, device=str(device))
    runs[arch], checkpoints[arch] = res, str(res.checkpoint)
    print(f"{arch}: {'reused checkpoint' if res.reused else f'trained in {res.seconds:.0f} s'}")'''),
    md("## Training curves next to the baselines'"),
    code('''hist = {f"{a} baseline": h for a, h in base_meta["histories"].items()}
hist.update({f"{a} adversarial": r.history for a, r in runs.items()})
fig = plots.training_curves(hist, "baseline vs adversarial training"); plots.save(fig, PROFILE, "04_training_curves")'''),
    md("## Evaluate: adversarial training clean, under Pixle, and combined with smoothing"),
    code('''records, adv_dirs = [], {}
for arch, res in runs.items():
    model = res.model.to(device)
    clean = predict(model, x)
    records.append(record(arch, "adv_training_clean", "clean", y, clean, clean_logits=clean))
    folder = attack_cache_dir(cache_dir(PROFILE), res.checkpoint.stem, attack_cfg, "none", prep.key + str(subset.tolist()))
    run = attack_dataset(model, x, y, attack_cfg, folder, ATTACK_BATCH, device, tag=f"{arch} AT")
    adv_dirs[arch] = str(folder)
    records.append(record(arch, "adv_training_pixle", "non-adaptive", y, predict(model, run.adv), clean_logits=clean, run=run,
                          note="no preprocessing: attacking the model is already adaptive"))
    clean_blur = predict(model, x, b["eval_batch"], preprocess=blur(SEED + 1))
    records.append(record(arch, "combined_pixle", "non-adaptive", y, predict(model, run.adv, b["eval_batch"], preprocess=blur(SEED + 2)),
                          clean_logits=clean_blur, run=run))
    defended = Defended(model, blur(SEED + 3), eot=b["eot"])
    folder = attack_cache_dir(cache_dir(PROFILE), res.checkpoint.stem, attack_cfg,
                              f"blur{b['kernel_size']}-{sigma}-{b['per']}-eot{b['eot']}", prep.key + str(subset.tolist()))
    run_a = attack_dataset(defended, x, y, attack_cfg, folder, ATTACK_BATCH, device, tag=f"{arch} combined adaptive")
    records.append(record(arch, "combined_pixle", "adaptive", y, predict(model, run_a.adv, b["eval_batch"], preprocess=blur(SEED + 4)),
                          clean_logits=clean_blur, run=run_a, eot=b["eot"]))
cols = ["model", "condition", "evaluation", "clean_accuracy", "accuracy", "balanced_accuracy", "eer", "attack_success_rate", "queries", "l0"]
display(pd.DataFrame([{c: r.get(c) for c in cols} for r in records]))'''),
    code('''save_metrics(PROFILE, "04_adversarial_training", {"train": cfg.__dict__, "train_attack": train_attack, "init": AT_INIT,
                                                   "checkpoints": checkpoints, "histories": {a: r.history for a, r in runs.items()},
                                                   "train_seconds": {a: r.seconds for a, r in runs.items()},
                                                   "records": records, "adv_cache": adv_dirs}, prep)'''),
])

# ------------------------------------------------------------------------------------------ 05
write("05_evaluation.ipynb", [
    md("""
# 05 · Evaluation: the thesis's table and figures, regenerated and compared

This notebook reads only `outputs/<profile>/metrics/*.json`: nothing is retrained or re-attacked.
Every rate carries a 95% bootstrap confidence interval over test clips, so two conditions can be
told apart from noise. The thesis's own accuracies sit beside ours, labelled: they come from
ASVspoof 2021 DF with the thesis's settings, ours from the corpus and profile named in the title.
"""),
    params('''PROFILE = "demo"
SEED = 2022
N_BOOT = 1000'''),
    code(SETUP + '''
import pandas as pd
from helpers import report
from helpers.metrics import roc_points
from helpers.paths import metrics_dir, profile_dir

records, header = report.collect_records(metrics_dir(PROFILE))
models = sorted({r["model"] for r in records})
table = report.build_table(records, models, n_boot=N_BOOT, seed=SEED)
display(Markdown(f"### Results on corpus `{header.get('dataset')}`, profile `{header.get('profile')}`, features `{header.get('features')}`"))
display(report.format_table(table))'''),
    md("## Accuracy by condition"),
    code('''bars = table[table["present"]].copy()
bars["condition"] = bars["label"] + " (" + bars["evaluation"] + ")"
fig = plots.grouped_bars(bars, "condition", "accuracy", "model", "accuracy by condition (95% CI)", err=("accuracy_lo", "accuracy_hi"))
plots.save(fig, PROFILE, "05_accuracy_by_condition")'''),
    md("## DET curves per condition"),
    code('''for m in models:
    curves = {}
    for r in records:
        if r["model"] == m and r.get("scope") != "full test split":
            pts = roc_points(r["per_clip"]["y"], r["per_clip"]["score"])
            curves[f"{r['condition']} ({r['evaluation']})"] = (pts["far"], pts["frr"])
    fig = plots.det_curves(curves, f"{m}: DET per condition"); plots.save(fig, PROFILE, f"05_det_{m}")'''),
    md("## Training figures (baselines and adversarially trained models)"),
    code('''from helpers.pipeline import load_metrics
base, at = load_metrics(PROFILE, "01_baselines"), load_metrics(PROFILE, "04_adversarial_training")
hist = {f"{a} baseline": h for a, h in (base or {}).get("histories", {}).items()}
hist.update({f"{a} adversarial": h for a, h in (at or {}).get("histories", {}).items()})
fig = plots.training_curves(hist, "training / validation"); plots.save(fig, PROFILE, "05_training_curves")
test_rows = [{"model": r["model"], "condition": r["condition"], "evaluation": r["evaluation"], "accuracy": r["accuracy"]}
             for r in records if r["condition"] in ("baseline_clean", "adv_training_clean") and r.get("scope") != "full test split"]
display(pd.DataFrame(test_rows))'''),
    md("## Explore: a clip, a model, a condition\n\nPick a test clip, a model and a condition: the spectrogram image, the attacked and blurred images, the scores, and the audio."),
    code('''from helpers.widgets import Explorer
explorer = Explorer(PROFILE)
explorer.show()'''),
    md("## Report"),
    code('''figs = sorted((profile_dir(PROFILE) / "figures").glob("*.png"))
run_meta = load_metrics(PROFILE, "02_pixle") or {}
notes = [f"Attack: Pixle {run_meta.get('attack', {})} on {len(run_meta.get('subset', []))} test clips.",
         "Adaptive rows: Pixle queried model + blur (expectation over transformation when EOT > 1).",
         "Adversarial training without preprocessing is attacked directly, which is already adaptive; it has one row."]
for warning in report.one_class_warnings(records):
    print("WARNING:", warning)
    notes.append(f"**Warning**: {warning}")
at_meta = load_metrics(PROFILE, "04_adversarial_training") or {}
if at_meta:
    notes.append(f"Adversarial training: init {at_meta.get('init')}, {at_meta.get('train', {}).get('epochs')} epochs, "
                 f"Pixle {at_meta.get('train_attack', {}).get('restarts')}x{at_meta.get('train_attack', {}).get('max_iterations')} per batch.")
path = report.write_report(profile_dir(PROFILE) / "report.md", header, table, figs, notes)
table.drop(columns=["present"]).to_csv(profile_dir(PROFILE) / "results.csv", index=False)
print("wrote", path)'''),
])
print("notebooks written to", NB_DIR)
