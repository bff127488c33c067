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
# # 08 · Score your own audio
#
# What do this profile's detectors say about a clip you recorded or downloaded? Each file is decoded (any
# sample rate, mono or stereo, FLAC/WAV/OGG/MP3/M4A), cut into windows of the training clips' length, turned
# into the image the detectors were trained on, and scored by every detector of 01 and 04, bare and behind 03's
# blur, and by 07's certified detector when it exists. The same as the command
# `python -m helpers.score --profile demo FILE_OR_FOLDER`.
#
# **Reading a row.** `p_bonafide` is the detector's probability that the clip is **bonafide** (class 0);
# `decision` is `bonafide` when it is above the detector's threshold, the equal-error-rate point on the
# profile's *validation* split. A file longer than the training clips gets the mean `p_bonafide` over its
# windows. **A score on audio unlike the training corpus is not evidence either way**: read
# `outputs/<profile>/MODEL_CARD.md` for what the detectors were (and were not) trained on.

# %% tags=["parameters"]
PROFILE = "demo"
SEED = 2022

# %%
from IPython.display import display

from helpers import score
from helpers.runtime import setup

device = setup(SEED, params=globals())
prof = score.load_profile(PROFILE, device)
print("\n".join(score.header(prof)))

# %% [markdown]
# ## Your files
#
# Put your files or folders in `MY_AUDIO` (folders are searched recursively). Left empty, a few clips of the
# corpus's test split are scored, half bonafide and half spoof, so a headless run shows what a result looks like.
# A file that cannot be scored (not audio, empty, truncated, silent) gets a row with the reason.

# %%
MY_AUDIO = []    # e.g. ["~/recordings/call.m4a", "~/recordings/folder/"]
paths = [str(p) for p in MY_AUDIO] or score.corpus_examples(PROFILE, n=4)
rows, windows = score.score_files(paths, prof, windows=True)
display(score.frame(rows))

# %% [markdown]
# ## Per window, for files longer than the training clips

# %%
display(score.frame(windows, ("file", "detector", "defense", "window", "start_s", "end_s", "p_bonafide",
                              "decision", "certified_l0_radius")))

# %% [markdown]
# ## What the detector sees, and what it heard
#
# The spectrogram image of each window (the first four), as `helpers.data.features.extract` makes it for the
# detectors, with the bare detectors' P(bonafide), and the 16 kHz mono audio that was scored.

# %%
for path in paths[:4]:
    score.show_clip(path, prof)

# %% [markdown]
# ## Upload a file or name a folder
#
# In JupyterLab: upload one or more files, or type a folder (or file) path, then press *score*. Uploads are
# saved under `outputs/<profile>/scores/uploads/`; the table is written to `outputs/<profile>/scores/`.

# %%
score.ScoreApp(prof).show()

# %% [markdown]
# ## The table as CSV
#
# With the thresholds and where they came from in its `#` header lines (`pandas.read_csv(path, comment="#")`).

# %%
out = score.write_csv(score.default_out(PROFILE).with_name("08_scores.csv"), rows, score.CSV_FIELDS,
                      score.header(prof))
print("wrote", out, "| exit status the command would give:", score.exit_status(rows))
