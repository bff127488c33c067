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
# # 06 · Attacks an adversary can mount, and a stronger check of Pixle
#
# Pixle edits the 32x32 colour image directly; an attacker of a deployed detector controls the audio, and
# most pixel rearrangements correspond to no waveform at all. This notebook asks two questions of the
# detectors of 01 and 04, bare and behind the blur of 03:
#
# 1. **Are they vulnerable to perturbations that are real audio?** `stft_pixle` rearranges patches of
#    the STFT magnitude as Pixle does in the image and resynthesises with the original phase; `square_audio`
#    is a Square-Attack-style random search on the waveform (Andriushchenko et al., ECCV 2020) under an SNR
#    budget. Every query is a waveform; the features, the blur and the detector run on it.
# 2. **Is Pixle a strong attack?** `sparse_rs` (Croce et al., AAAI 2022), the state-of-the-art score-based
#    L0 attack, at Pixle's L0 and query budgets, in Pixle's own threat model. If a defense that holds
#    against Pixle falls to Sparse-RS, "robust to Pixle" only meant that Pixle was weak.
#
# Every defense sits inside what these attacks query, so they are adaptive by construction. Pixle's own
# results on the same clips (from 02-04; adaptive where the blur is on) stand beside them.
#
# Part of `make run` (profile demo: 32 class-balanced clips of the 48 Pixle attacked, about 7 minutes on 2 CPU
# cores); `run_all.py` runs 05 after it, so the report includes its rows. On its own: `python run_all.py --only 06`.

# %% tags=["parameters"]
PROFILE = "demo"
SEED = 2022
REALIZABLE_N = 32          # clips, class-balanced, from those 02 attacked
STFT_RESTARTS = 4          # StftPixle budget (Pixle's 4x25 by default)
STFT_ITERATIONS = 25
STFT_FREQ_DIM = [0.02, 0.1]    # patch height: fraction of the frequency bins
STFT_TIME_DIM = [0.02, 0.1]    # patch width: fraction of the STFT frames
SQUARE_SNR_DB = 30.0       # SquareAudio: the perturbation stays at least this many dB below the clip
SQUARE_QUERIES = 100
SPARSE_RS_K = None         # Sparse-RS pixel budget (None: Pixle's mean L0 on each baseline in 02)
SPARSE_RS_QUERIES = None   # Sparse-RS queries (None: Pixle's restarts x iterations)

# %%
from IPython.display import Audio, Markdown, display

from helpers.reporting import figures as plots
from helpers.experiments import realizable
from helpers.experiments import stages
from helpers.runtime import setup

device = setup(SEED, params=globals())
plots.style()
prep = stages.load_prepared(PROFILE)

# %% [markdown]
# ## Attack every detector and defense
#
# Rows per model x defense x attack. *Attack success* counts the clips the detector (with its defense)
# had right before the attack; *L0 / SNR* is the mean pixels changed (image attacks) or the median SNR of
# the perturbation over fooled clips (audio attacks: higher is quieter; 30 dB is a faint hiss).

# %%
stage = realizable.run_realizable(PROFILE, prep, realizable.RealizableConfig.from_params(globals()), device)
table = realizable.realizable_table(stage.records, n_boot=1000, seed=SEED)
display(Markdown(realizable.summary_markdown(table, stage.budgets)), Markdown(f"Budgets: {stage.budgets}"),
        realizable.format_realizable(table))

# %% [markdown]
# ## Success against budget
#
# Left: the share of attacked clips fooled with at most *x* pixels changed, Sparse-RS (solid) next to Pixle
# (dashed) for the same detector and defense: a solid curve above its dashed twin means Pixle understated
# what an L0 attacker can do. Right: the share fooled by a perturbation at least *x* dB below the clip.

# %%
plots.save(plots.success_curves(stage.records), PROFILE, "06_success_vs_budget")

# %% [markdown]
# ## Listen: original, attacked, difference
#
# One bonafide and one spoof clip against the ResNet baseline (a fooled one where there is one). The
# difference is scaled up to be audible; the attacked clip is what the detector heard.

# %%
for name, path in stage.examples.items():
    display(Markdown(f"**{name}**"), Audio(str(stage.path(path))))
