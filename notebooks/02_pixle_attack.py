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
# # 02 · Pixle: a black-box attack that rearranges pixels
#
# Pixle (Pomponi et al., IJCNN 2022) only reads the detector's output probabilities. Each candidate
# copies a small random patch of the original image onto other positions; candidates that lower the
# true-class probability are kept, and the attack stops as soon as the prediction flips. Its budget is
# written *restarts x iterations* ("4x25": 4 restarts of 25 candidates each, at most 100 candidates per
# clip). The thesis ran `torchattacks.Pixle(model, x_dimensions=(0.1, 0.2), restarts=10,
# max_iterations=50)` ("10x50"); `helpers.attacks.pixle.Pixle` runs the same algorithm on whole batches
# (`benchmarks/pixle_speed.py` measures its speed and parity with torchattacks).

# %% tags=["parameters"]
PROFILE = "demo"
SEED = 2022
N_ATTACK = 48              # test clips to attack, class-balanced (None: every test clip, its own class mix)
PIXLE_RESTARTS = 4         # the thesis: 10
PIXLE_ITERATIONS = 25      # the thesis: 50
PIXLE_X_DIM = [0.1, 0.2]   # patch width: fractions of the image or pixels
PIXLE_Y_DIM = [2, 10]      # patch height (torchattacks' default, which the thesis kept)
PIXLE_MAPPING = "random"
PIXLE_TARGET_BATCH = 64    # candidates per forward pass (CPU: fastest near 64; GPU: thousands)
PIXLE_AMP = False          # bfloat16 forward passes on a GPU (see benchmarks/amp_tolerance.py)
ATTACK_BATCH = 64          # clips per cached chunk

# %%
from IPython.display import display

from helpers.reporting import figures as plots
from helpers.experiments import stages
from helpers.runtime import setup

device = setup(SEED, params=globals())
plots.style()
prep = stages.load_prepared(PROFILE)

# %% [markdown]
# ## Attack each baseline
#
# Every clip the baseline gets right is attacked; clips it already gets wrong count as failures of the
# detector, not successes of the attack. Attack success is the share of attacked clips that flip.

# %%
runs, detectors, pixle = stages.run_pixle(PROFILE, prep, stages.attack_config(globals()), N_ATTACK, ATTACK_BATCH, device)
display(stages.records_frame(pixle.records))

# %% [markdown]
# ## What Pixle does to a spectrogram image
#
# Original, adversarial, and the pixels it moved, for two clips of each class that the detector had
# right. The moved pixels are copies of other pixels of the same image: Pixle invents no colour, but most
# such rearrangements correspond to no sound at all (notebook 06 asks what an attacker of the audio can do).

# %%
clips = stages.attacked_clips(PROFILE, prep)
arch = next(iter(detectors))
plots.save(plots.attack_examples_for(detectors[arch], clips.x, clips.y, runs[arch].adv), PROFILE, "02_pixle_examples")

# %% [markdown]
# ## Robust accuracy against the attack budget
#
# Accuracy if the same attack had stopped after *b* candidates. Exact for every budget up to the one
# run: the candidates are a fixed sequence, so stopping early gives the images that had not fallen by
# then. A curve still falling at the right edge means a larger budget would break more clips.

# %%
plots.save(plots.budget_curve(pixle.budget_curve), PROFILE, "02_budget_curve")
