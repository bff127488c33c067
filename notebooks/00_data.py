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
# # 00 · Data: corpus, splits and the spectrogram images the detectors see
#
# The thesis trained its detectors on a sample of **ASVspoof 2021 DF** (eval part00, 16 kHz FLAC)
# labelled by the official keys. That corpus (34.5 GB) cannot be downloaded on offline machines, so
# by default this notebook builds an **offline corpus** the way ASVspoof's is made: real speech
# recordings are the bonafide class, and the spoof class is speech made by **real synthesis systems**
# that install from the package registries and run offline (Piper VITS, Festival HTS, unit selection and
# diphone voices, Flite clustergen and diphone voices, eSpeak NG) reading the bonafide sources' own
# transcripts, plus copy synthesis the way TTS pipelines drive vocoders (80-band mel + Griffin-Lim, WORLD
# with a coded envelope, LPC). Each system has an ASVspoof-style id (`S01`...) in the keys' `attack`
# column; some are **unseen**: evaluation-only, as in ASVspoof 2019 LA. Both corpora share one layout (an
# official-format keys file plus `flac/`), so every later notebook runs unchanged on either: set
# `DATASET = "asvspoof2021_df"` (and `ASVSPOOF_ROOT`, or let it download) for the real one.
#
# The parameters below are the default profile's (`demo`): *Run All* here reproduces `make run` and
# reuses its caches. `python run_all.py --profile P` runs the same notebook with profile `P`.

# %% tags=["parameters"]
PROFILE = "demo"
DATASET = "copysynth"          # or asvspoof2021_df
SEED = 2022
SPEECH_DIR = ""                # copysynth: folder of real speech (empty: the Asterisk prompts, via apt)
ASVSPOOF_ROOT = ""             # asvspoof2021_df: local copy (empty: $ASVSPOOF2021_DF_ROOT, else download)
MAX_SOURCES = 900              # copysynth: at most N source recordings, round-robin over speakers (None: all)
SPEECH_SOURCES = ["asterisk_g722", "festvox_ru", "tuxpaint"]   # Debian speech (empty: Asterisk English, 8 kHz)
MINUTES_PER_SPEAKER = 4.0      # copysynth: cap per voice, so no voice dominates (None: no cap)
CODECS = ["nocodec", "low_mp3", "high_mp3", "low_m4a", "high_m4a", "low_ogg", "high_ogg"]   # DF conditions
SPOOF_SYSTEMS = ["S01", "S02", "S03", "S04", "S05", "S06", "S07", "S08", "S09", "S10", "S11", "S12", "S13", "S14"]
UNSEEN_SYSTEMS = ["S02", "S04", "S07", "S09", "S13"]   # evaluation-only systems: test split only
SEGMENT_S = 3.0
N_TRIALS = None                # sample size (None: as many as the class share allows)
BONAFIDE_SHARE = 0.5           # None keeps the corpus mix; the thesis's sample had 0.041
SPLIT = [0.7, 0.1, 0.2]        # train, val, test fractions
SPLIT_BY = "speaker"           # speaker (unseen voices in test), source (leak-free), or clip (the thesis's split)
UNSEEN_VOICE_SPEAKER = "drawn" # S07's own speaker (festvox_ru_nsh): drawn like any speaker, or "test" (ASVspoof's way)
FEATURES = "thesis_rgb32"      # or logspec, lfcc (profile demo_lfcc), lfcc_cmn (LFCC, mean-normalised), loglin
FEATURE_SIZE = 32
ON_ERROR = "error"             # or skip: bad files are listed in outputs/PROFILE/skipped.csv

# %%
from IPython.display import Audio, Markdown, display

from helpers.data.audio import load_audio
from helpers.reporting import data_views
from helpers.reporting import figures as plots
from helpers.experiments import stages
from helpers.runtime import setup

device = setup(SEED, params=globals())
plots.style()

# %% [markdown]
# ## Build (or reuse) the corpus, sample it, split it, extract features
#
# Everything here is cached under a key of the parameters that shape it; a re-run takes seconds.
# The record this notebook writes (`metrics/00_data.json`) tells every later notebook which data to use.

# %%
prep, data = stages.run_data(globals(), PROFILE, device)
display(Markdown(data_views.data_summary_markdown(prep)))

# %% [markdown]
# ## Who speaks: speakers, languages, minutes, sources
#
# The whole corpus (before sampling): one row per voice, with its language, the Debian package it came
# from, the rate and codec it came in, and its bonafide minutes. Every spoof went through its source's
# codec too (a detector cannot tell the classes apart by G.722 or Vorbis traces), and each source
# recording got one ASVspoof 2021 DF codec condition, applied to its bonafide clips and all their copies.

# %%
summary = data_views.corpus_summary(prep)
display(summary)
plots.save(plots.minutes_per_speaker(summary), PROFILE, "00_minutes_per_speaker")

# %% [markdown]
# ## The spoofing systems
#
# One row per system that ran: its family, engine, voice, the languages it spoke, its licence, whether the
# detectors see it in training (`seen`) or only at test time (`unseen`), its clips and minutes in the whole
# corpus, and its clips per split of the sample. A system whose engine or voice is not installed is left
# out and named below with the command that installs it (`make engines` installs them all).

# %%
from helpers.data.synthesis import example_per_system, systems_overview

systems = systems_overview(prep.corpus_root, prep.table)
display(systems)
for gone in data.summary.get("systems_missing", []):
    print(f"left out: {gone['system']} ({gone['name']}): {gone['reason']}")
print(f"sentences skipped by an engine (failed or silent): {data.summary.get('synthesis_skipped', 0)} "
      "(listed in the corpus's keys/CM/synthesis_skipped.csv)")

# %% [markdown]
# One clip per system, to listen to (from the test split where the system has one).

# %%
names = dict(zip(systems.get("system", []), systems.get("name", [])))
for sid, path in example_per_system(prep.table).items():
    display(Markdown(f"**{sid}** {names.get(sid, '')}"), Audio(load_audio(path)[0], rate=16000))

# %% [markdown]
# ## Class balance and clip lengths
#
# Left: trials per split and label: the class mix of the test split is what a constant classifier
# scores. Middle: spoofs per system. Right: codec conditions. Below: clip lengths per class; a detector
# could use length as a shortcut if the classes differed here (they should not).

# %%
plots.save(plots.class_balance(prep.table), PROFILE, "00_class_balance")
plots.save(plots.durations(prep.table), PROFILE, "00_clip_lengths")

# %% [markdown]
# ## A bonafide clip next to its copy-synthesised version
#
# A bonafide segment and the copy a copy-synthesis system made of it (each segment is copied by at most
# one system, so the spoof budget stays balanced across systems). The copies keep the words and the voice
# and leave their vocoder's artefacts: the mel + Griffin-Lim copy smears the harmonics, coded WORLD
# smooths the envelope, and LPC replaces the fine structure with a pulse train.

# %%
clips = data_views.example_clips(prep)
plots.save(plots.waveforms_and_spectrograms(clips), PROFILE, "00_vocoder_examples")
for name, wav in clips.items():
    display(Markdown(f"**{name}**"), Audio(wav, rate=16000))

# %% [markdown]
# ## The same recording, coded
#
# The DF codec conditions re-encode a clip at low and high bitrates: low-bitrate MP3 and AAC cut the band
# above a few kHz, which is where the vocoders leave much of their trace.

# %%
coded = data_views.coded_examples(prep)
plots.save(plots.waveforms_and_spectrograms(coded), PROFILE, "00_codec_examples")
for name, wav in coded.items():
    display(Markdown(f"**{name}**"), Audio(wav, rate=16000))

# %% [markdown]
# ## Where the bonafide recordings differ: long-term spectra
#
# Each bonafide source package was recorded its own way, and a detector can learn those recording conditions
# as "bonafide" instead of learning spoofing traces. Left: the long-term average spectrum of each bonafide
# source (uncoded clips, each normalised to its own peak); right: each spoofing system's, over the bonafide
# mean. In the demo corpus festvox-ru's studio reading rolls off above 6 kHz like several vocoders do (S03,
# S07, S13), while the Tux Paint and Asterisk recordings keep their level up to 8 kHz: a detector trained with
# that speaker drawn into train can call its spoofs bonafide (S07), and one trained without it calls its real
# recordings spoof (README, "S07's speaker held in test"). `AUGMENT = "eq"` (FEATURES "lfcc" only) trains on random
# roll-offs and ripples of the channel so that the band's edge alone cannot decide.

# %%
spectra = data_views.long_term_spectra(prep)
plots.save(plots.long_term_spectra(spectra), PROFILE, "00_long_term_spectra")

# %% [markdown]
# ## The images the detectors see
#
# `thesis_rgb32` paints the log spectrogram with viridis and resizes it to 32x32, directly on the array.
# Left pair: that image next to one rendered as a matplotlib figure and resized (what the thesis did);
# a pixel correlation near 1 means the shortcut changes nothing. Grid: training images per class.

# %%
check = data_views.direct_vs_figure(prep)
print(f"pixel correlation, array vs figure-rendered: {check['correlation']:.4f}; {check['speedup']:.0f}x faster")
plots.save(plots.image_grid(*prep.xy("train"), per_class=8), PROFILE, "00_input_grid")

# %% [markdown]
# ## Feature extraction throughput

# %%
throughput = data_views.feature_throughput(prep)
print(f"feature extraction: {throughput:.1f} clips/s (decode + {prep.feature_config.name}) on {device}")
data.feature_clips_per_second, data.figure_vs_direct_correlation = throughput, check["correlation"]
data.save()
