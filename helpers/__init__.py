"""Companion package to the thesis on defending audio deepfake detectors against Pixle.

The notebooks in ``notebooks/`` tell the story; the modules here do the work. Where to look:

Protocol (what each notebook runs, and what it hands the next)
- :mod:`helpers.stages`      one function per notebook stage, typed records saved as ``metrics/*.json``
- :mod:`helpers.realizable`  notebook 06: audio-domain attacks and Sparse-RS beside Pixle
- :mod:`helpers.profiles`    parameter profiles (smoke, demo, thesis_protocol, thesis)
- :mod:`helpers.params`      choice parameters checked before any work starts

Data
- :mod:`helpers.paths`          every path the project uses (overridable by environment variables)
- :mod:`helpers.keys`           the ASVspoof 2021 DF keys format
- :mod:`helpers.audio`          robust audio loading
- :mod:`helpers.asvspoof`       the real corpus: local copy or verified download, safe extraction
- :mod:`helpers.speech_sources` wideband multi-speaker bonafide speech from Debian packages
- :mod:`helpers.codecs`         ASVspoof 2021 DF codec conditions (mp3, m4a, ogg) and source codecs
- :mod:`helpers.copysynth`      the offline vocoder copy-synthesis corpus
- :mod:`helpers.corpus`         one loader for either corpus, sampling, splits (source / speaker / clip)
- :mod:`helpers.pipeline`       corpus -> sample -> splits -> cached features; training entry points
- :mod:`helpers.features`       spectrogram images (thesis_rgb32) and log-spectrograms, cached
- :mod:`helpers.data_views`     what 00_data shows about the prepared data

Detectors, attacks, defenses
- :mod:`helpers.models`        CIFAR-style ResNet-18/50 detectors
- :mod:`helpers.training`      one training loop (plain and adversarial), checkpoints, resume
- :mod:`helpers.attacks`       batched Pixle
- :mod:`helpers.sparse_rs`     Sparse-RS, the score-based L0 attack (a stronger check of Pixle)
- :mod:`helpers.audio_attacks` waveform-domain attacks: StftPixle, SquareAudio; the batched audio pipeline
- :mod:`helpers.defenses`      Gaussian blur / median smoothing, the ``Defended`` wrapper
- :mod:`helpers.evaluation`    attack runs cached in chunks, condition records
- :mod:`helpers.distributed`   the same stages on N processes (torchrun; gloo on CPU, NCCL on GPU)
- :mod:`helpers.stage_runner`  notebooks 01-04's heavy work under torchrun, into the notebooks' own caches

Results
- :mod:`helpers.metrics`  accuracy, EER, DET, bootstrap CIs, attack statistics
- :mod:`helpers.claim`    "does the thesis's claim hold?": class-mix reweighting, constant classifiers, tests
- :mod:`helpers.report`   the results tables, the verdict and the report
- :mod:`helpers.plots`    seaborn styling and figure saving

Plumbing
- :mod:`helpers.io`       atomic writes (umask kept), JSON, cache keys, damaged-cache recovery
- :mod:`helpers.progress` progress bars in JupyterLab, progress lines under run_all.py
- :mod:`helpers.runtime`  parameter check, seeding, device choice, version banner
- :mod:`helpers.widgets`  the ipywidgets explorer
"""

import warnings as _warnings

__version__ = "0.2.0"

# pyworld 0.3.5 imports pkg_resources at import time; the deprecation warning it triggers is about
# pyworld's packaging, nothing a user of this project can act on, and it cluttered every notebook.
_warnings.filterwarnings("ignore", message="pkg_resources is deprecated", category=UserWarning)
