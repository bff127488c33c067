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
# # 03 · Spatial smoothing: a Gaussian blur before the detector
#
# The thesis's first defense blurs the (attacked) image before classification:
# `torchvision.transforms.GaussianBlur(kernel_size=5, sigma=(0.1, 5.0))`, one random sigma per call
# (per batch). The thesis attacked the bare model and blurred afterwards (**non-adaptive**). An attacker
# who can query the deployed detector queries the blur too, so we also run Pixle against
# `Defended(model, blur)` (**adaptive**, Carlini et al. 2019; Tramer et al. 2020). With `EOT_SAMPLES > 1`
# the adaptive attack averages its scores over that many blur draws (*expectation over transformation*).
# A blur that costs clean accuracy is not free: the clean accuracy with the blur on is reported too.

# %% tags=["parameters"]
PROFILE = "demo"
SEED = 2022
BLUR_KERNEL = 5
BLUR_SIGMA = [0.1, 5.0]    # a range (random sigma, as the thesis) or one number
BLUR_PER = "batch"         # thesis: one sigma per batch, or image: one per image
EVAL_BATCH = 16            # batch size of the evaluation (one sigma per batch)
EOT_SAMPLES = 1            # adaptive attack: average scores over this many blur draws
SIGMA_SWEEP = [0.5, 1.0, 2.0, 3.0, 5.0]
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
# ## Non-adaptive (the thesis) and adaptive evaluation
#
# `stages.evaluate_defense` is the one protocol for every blurred condition (04 uses it for the
# combined defense). A warning below the table flags a blurred detector that calls every clean clip one
# class: its accuracy under attack is the class mix of the test clips, not robustness.

# %%
clips, models, bare, evals, smoothing = stages.run_smoothing(PROFILE, prep, stages.BlurConfig.from_params(globals()),
                                                             SIGMA_SWEEP, ATTACK_BATCH, device)
display(stages.records_frame(smoothing.records))
for warning in report.one_class_warnings(smoothing.records):
    print("WARNING:", warning)

# %% [markdown]
# ## Original vs Pixle-attacked vs blurred (the thesis's figure)
#
# The blur smears the moved pixels into their neighbours, and everything else too: compare the last
# column with the first to see how much of the spectrogram survives.

# %%
arch = next(iter(models))
fig = plots.attack_examples_for(models[arch], clips.x, clips.y, bare[arch].adv, extra={"blurred": evals[arch].blurred_adv})
plots.save(fig, PROFILE, "03_original_pixle_blurred")

# %% [markdown]
# ## Sigma sweep (fixed sigma, non-adaptive)
#
# Clean accuracy and accuracy under (non-adaptive) Pixle as the blur grows: the trade-off the thesis's
# random sigma averages over. Where the two lines meet at the class share, the blurred detector has
# stopped detecting.

# %%
plots.save(plots.sigma_sweep(smoothing.sigma_sweep), PROFILE, "03_sigma_sweep")
