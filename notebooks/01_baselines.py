# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 01 · Baselines: ResNet-18 and ResNet-50 detectors
#
# The thesis trains CIFAR-style ResNets on its 32x32 spectrogram images (3x3 stride-1 stem, no
# max-pool, four residual stages, average pooling, a 2-way head) with SGD (lr 1e-3, momentum 0.9),
# batch 16, 10 epochs, cross-entropy. We report what the field reports for spoofing countermeasures:
# accuracy, balanced accuracy and the **EER** (equal error rate, bonafide as the positive class).
# Training is checkpointed every epoch; a re-run reuses the finished checkpoint, an interrupted one resumes.

# %% tags=["parameters"]
PROFILE = "demo"
SEED = 2022
MODELS = ["resnet18", "resnet50"]
EPOCHS = 15                # the thesis: 10
BATCH_SIZE = 16            # the thesis: 16 (32 trains 1.9x more images per second on a CPU but fitted worse on the demo)
LR = 0.01                  # the thesis: 0.001, constant (0.05 left ResNet-18 at chance for 4 epochs)
LR_SCHEDULE = "cosine"     # constant (the thesis) or cosine (decays to 0 over the run)
WARMUP_EPOCHS = 1.0        # linear warm-up from LR/10 (0: none, as the thesis)
MOMENTUM = 0.9
MAX_BATCHES = None         # cap on batches per epoch (smoke profile)
BALANCE = "weighted"       # none (the thesis) or weighted: bonafide and spoof carry the same total loss weight
SELECT = "val_eer"         # last (the thesis) or val_eer: the detector keeps its best validation-EER epoch (latest of ties)
EARLY_STOP_PATIENCE = None # epochs without improvement of EARLY_STOP_METRIC before stopping (None: off)
EARLY_STOP_METRIC = "val_loss"
AUGMENT = "none"           # image augmentation per training batch (helpers.models.augment), e.g. "shift+freqmask"

# %%
from IPython.display import display

from helpers.reporting import figures as plots
from helpers.experiments import stages
from helpers.runtime import setup

device = setup(SEED, params=globals())
plots.style()
prep = stages.load_prepared(PROFILE)

# %% [markdown]
# ## Train (or reuse) the baselines

# %%
runs, baselines = stages.run_baselines(PROFILE, prep, MODELS, stages.train_config(globals()), device)
for arch, res in runs.items():
    print(f"{arch}: {'reused checkpoint' if res.reused else f'trained in {res.seconds:.0f} s'}")

# %% [markdown]
# ## Training and validation curves (the thesis's first two figures)
#
# Accuracy and loss per epoch on the training and validation splits. A training curve still rising at
# the last epoch means the detector is under-trained; a validation curve falling while training rises
# means it over-fits.

# %%
plots.save(plots.training_curves(baselines.histories, "baseline"), PROFILE, "01_training_curves")

# %% [markdown]
# Does each detector fit? Its final train accuracy (on augmented batches, when `AUGMENT` is on) against the
# 0.95 a detector must reach before its robustness is read, its best validation EER and that epoch, and the
# epoch whose weights it keeps (`SELECT`). A detector that does not fit is shown, not hidden: its robustness
# numbers below say little.

# %%
import pandas as pd

from helpers.models.training import fit_summary

display(pd.DataFrame([{"model": arch, **fit_summary(hist, SELECT)} for arch, hist in baselines.histories.items()]))

# %% [markdown]
# ## Clean test performance
#
# On the whole test split. The DET curve plots, for every threshold, the share of bonafide clips
# rejected (miss) against spoofs accepted (false alarm) on normal-deviate axes; the EER is where it
# crosses the diagonal. Lower and further left is better; a curve on the diagonal is chance.

# %%
display(stages.records_frame(baselines.full_test_records, ("model", "accuracy", "balanced_accuracy", "eer", "n")))
plots.save(plots.det_from_records(baselines.full_test_records, "clean test set"), PROFILE, "01_det_clean")

# %% [markdown]
# ## Which spoofs are hard, and where
#
# Clean EER per vocoder (every bonafide clip against that vocoder's spoofs), per codec condition and per
# speaker. Griffin-Lim rebuilds the STFT magnitude by design, so its copies can be nearly invisible in a
# coarse magnitude image; low-bitrate codecs remove the high band on both classes.

# %%
plots.save(plots.eer_breakdown(baselines.breakdown), PROFILE, "01_eer_breakdown")

# %% [markdown]
# ## Per spoofing system, seen and unseen, with 95% confidence intervals
#
# Clean test EER per system (every test bonafide clip against that system's spoofs, ASVspoof's per-attack EER),
# pooled over the systems the detector saw in training and over the **unseen** ones (evaluation-only, as in
# ASVspoof 2019 LA), per family, per codec condition, and per bonafide speaker (that speaker's bonafide clips
# against every test spoof: a speaker near or above 50% is one whose real recordings the detector cannot tell from
# spoofs, which raises every pooled EER above; the per-speaker EER of the breakdown before is another comparison, a
# speaker's bonafide clips against the spoofs made from them). The intervals are percentile bootstrap CIs resampling
# the bonafide and the spoof clips separately; `metrics/01_baselines.json` keeps them under `per_system` for the
# report and the model card.

# %%
import pandas as pd

per_system = pd.DataFrame(baselines.per_system)
if len(per_system):
    shown = per_system.assign(**{"EER %": (100 * per_system.eer).round(1),
                                 "95% CI": [f"[{100 * a:.1f}, {100 * b:.1f}]" for a, b in
                                            zip(per_system.ci_low, per_system.ci_high)]})
    display(shown.pivot_table(index=["by", "group", "seen", "family"], columns="model",
                              values=["EER %", "95% CI", "n_spoof"], aggfunc="first"))
    plots.save(plots.per_system_eer(baselines.per_system), PROFILE, "01_eer_per_system")

# %% [markdown]
# ## Is it the image size?
#
# The thesis's images squeeze a whole clip into 32x32 pixels: 257 frequency bins into 32 rows, hundreds of
# frames into 32 columns. `python benchmarks/image_size.py` trains ResNet-18 on this profile's corpus and
# split with log-mel spectrograms of 32, 64 and 128 pixels per side (and the thesis's images for reference)
# and plots clean test EER, overall and per vocoder, against image size. It takes about half an hour on 2
# CPU cores, so it is a benchmark, not part of this notebook; its figure is shown here once it exists. The
# rest of this companion uses the thesis's 32x32 images.

# %%
from IPython.display import Image, Markdown

from helpers.paths import figures_dir

size_fig = figures_dir(PROFILE) / "bench_image_size.png"
display(Image(str(size_fig)) if size_fig.exists()
        else Markdown(f"Not measured yet: `python benchmarks/image_size.py --profile {PROFILE}`"))
