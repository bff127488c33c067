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
# # 04 · Adversarial training (AT), alone and combined with smoothing
#
# The thesis's second defense: each batch, Pixle examples are made against a frozen copy of the current
# model and the loss is `CE(clean) + CE(adversarial)` (SGD lr 1e-3, momentum 0.9, 10 epochs, from
# scratch, Pixle 10x50 per batch). Its third combines the adversarially trained model with the blur of
# notebook 03, evaluated by the same `stages.evaluate_defense`, non-adaptive and adaptive. The AT model
# without preprocessing is attacked directly, which is already adaptive. CPU profiles fine-tune the
# baselines with a small Pixle budget (`AT_INIT = "baseline"`); the `thesis` profile trains from scratch.

# %% tags=["parameters"]
PROFILE = "demo"
SEED = 2022
AT_INIT = "baseline"       # scratch (thesis) or baseline (fine-tune the 01 baseline)
AT_EPOCHS = 1              # the thesis: 10
AT_RESTARTS = 1            # Pixle budget inside training (the thesis: 10x50)
AT_ITERATIONS = 5
BATCH_SIZE = 16             # the thesis: 16 (the demo profile trains its baselines with 16 too)
AT_LR = 0.001              # constant (fine-tuning keeps the thesis's learning rate)
MOMENTUM = 0.9
MAX_BATCHES = None
ATTACK_BATCH = 64

# %%
from IPython.display import display

from helpers.reporting import figures as plots
from helpers.reporting import report
from helpers.experiments import stages
from helpers.runtime import setup

device = setup(SEED, params=globals())
plots.style()
prep = stages.load_prepared(PROFILE)

# %% [markdown]
# ## Train (or reuse) the adversarially trained detectors, then evaluate their three conditions

# %%
runs, at = stages.run_adversarial(PROFILE, prep, stages.train_config(globals(), prefix="AT_"), AT_INIT, AT_RESTARTS,
                                  AT_ITERATIONS, ATTACK_BATCH, device)
display(stages.records_frame(at.records))
for warning in report.one_class_warnings(at.records):
    print("WARNING:", warning)

# %% [markdown]
# ## Training curves next to the baselines'
#
# Solid: training, dashed: validation. Adversarial training usually costs some clean accuracy; the
# clean rows above say how much on the attacked test clips.

# %%
histories = {f"{a} baseline": h for a, h in stages.read_stage(PROFILE, stages.BaselinesStage).histories.items()}
histories.update({f"{a} adversarial": h for a, h in at.histories.items()})
plots.save(plots.training_curves(histories, "baseline vs adversarial training"), PROFILE, "04_training_curves")
