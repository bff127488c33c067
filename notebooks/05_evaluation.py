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
# # 05 · Evaluation: does the thesis's claim hold?
#
# The verdict first, computed from the numbers under it. This notebook reads only
# `outputs/<profile>/metrics/*.json`: nothing is retrained or re-attacked.

# %% tags=["parameters"]
PROFILE = "demo"
SEED = 2022
N_BOOT = 1000

# %%
from IPython.display import Markdown, display

from helpers.reporting import figures as plots
from helpers.reporting import report
from helpers.runtime import setup, version_banner

device = setup(SEED, params=globals(), quiet=True)
plots.style()
results = report.collect(PROFILE, n_boot=N_BOOT, seed=SEED)
display(Markdown(results.verdict_markdown()))

# %% [markdown]
# ## The thesis's numbers next to ours, and what they measure
#
# Per model and condition: the thesis's accuracy (ASVspoof 2021 DF, its settings) beside ours computed the
# thesis's way (a mean of per-batch accuracies), and the metrics that do not depend on the class mix:
# balanced accuracy, bonafide and spoof recall, EER, each with a 95% bootstrap confidence interval over
# test clips. The two constant classifiers ("always spoof", "always bonafide") on the same clips are the
# floor any detector must beat. The thesis's numbers come from another corpus: read them as a pattern to
# compare, never as ours.

# %%
display(results.claim_display())

# %% [markdown]
# ## Accuracy against the test set's bonafide share
#
# Each line is one condition's accuracy recomputed for a test set with another class mix, exactly, from
# its per-class recalls: accuracy = share x bonafide recall + (1 - share) x spoof recall. A flat line is a
# detector that treats both classes alike; a line falling steeply from left to right owes its accuracy to
# the spoof majority. The dotted vertical line is the thesis's share (4.1%), the stars its numbers.

# %%
plots.save(results.share_figure(), PROFILE, "05_accuracy_vs_bonafide_share")

# %% [markdown]
# ## All conditions, with confidence intervals
#
# The full table of this run. Bars: accuracy per condition with 95% CIs; hatched bars mark detectors that
# call every clean clip one class (their accuracy is that class's share, not robustness).

# %%
display(results.full_display())
plots.save(results.accuracy_figure(), PROFILE, "05_accuracy_by_condition")

# %% [markdown]
# ## Attacks an adversary can mount, and a stronger check of Pixle (from 06)
#
# If notebook 06 has run: accuracy of every detector and defense under Pixle, Sparse-RS (the stronger L0
# attack, at Pixle's budget) and two attacks on the audio itself, all on the same test clips, with the
# sentences they support. `run_all.py` runs this notebook after 06 so that the report includes it; results
# of 06 computed for other detectors or settings than the current ones are left out, with a warning.

# %%
display(Markdown(results.realizable_markdown() or "Notebook 06 has not run for this profile "
                 f"(python run_all.py --profile {PROFILE} --only 06)."))

# %% [markdown]
# ## A defense with a guarantee (from 07)
#
# If notebook 07 has run: detectors smoothed by randomized ablation (Levine & Feizi, AAAI 2020) certify, per clip,
# an L0 radius within which no change of pixels can flip their answer. How far that guarantee reaches, against
# the L0 that Pixle and Sparse-RS actually used; bonafide and spoof recall shown apart, since a detector can
# certify by answering "spoof".

# %%
display(Markdown(results.certified_markdown() or "Notebook 07 has not run for this profile "
                 f"(python run_all.py --profile {PROFILE} --only 07)."))

# %% [markdown]
# ## DET curves per condition
#
# One panel per model; each curve is one condition on the attacked test clips (see 01 for how to read a DET curve).

# %%
for model, fig in results.det_figures().items():
    plots.save(fig, PROFILE, f"05_det_{model}")

# %% [markdown]
# ## Explore: a clip, a model, a condition
#
# Pick a test clip, a model and a condition: the spectrogram image, the attacked and blurred images, the
# scores, and the audio. Headless runs show one static example.

# %%
from helpers.reporting.widgets import Explorer

Explorer(PROFILE).show()

# %% [markdown]
# ## Report
#
# `report.md` and `results.csv` beside the notebooks; `report.html` is this notebook without code.

# %%
print("wrote", results.write())

# %% [markdown]
# ## Model card
#
# `MODEL_CARD.md` beside the report: the training corpus and its spoofing systems, clean EER per system (seen or
# unseen in training) with 95% CIs, the codec conditions, what the detectors were not trained on, and the
# checkpoints' licence. `python -m helpers.score` and notebook 08 point a user scoring their own audio to it.

# %%
from helpers.reporting.model_card import write_model_card

print("wrote", write_model_card(PROFILE, n_boot=N_BOOT, seed=SEED))
print(version_banner())
