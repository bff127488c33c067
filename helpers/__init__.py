"""Companion package to the thesis on defending audio deepfake detectors against Pixle.

The notebooks in ``notebooks/`` tell the story; the modules here do the work. The folders are the
architecture, lowest layer first (a module imports only from its own layer or the layers above it in
this list; ``tests/test_module_map.py`` checks there is no import cycle):

Leaves (imported by every layer)
- :mod:`helpers.paths`     every path the project uses (overridable by environment variables)
- :mod:`helpers.io`        atomic writes (umask kept), JSON, cache keys, damaged-cache recovery
- :mod:`helpers.progress`  progress bars in JupyterLab, progress lines under run_all.py
- :mod:`helpers.runtime`   parameter check, seeding, device choice, version banner
- :mod:`helpers.thesis`    the thesis's own numbers and its six conditions

``config/`` profiles and the checks of their parameters
- :mod:`helpers.config.profiles`  parameter profiles (smoke, demo, thesis_protocol, thesis)
- :mod:`helpers.config.params`    every parameter of a run checked before any work starts
- :mod:`helpers.config.sections`  each profile section as a frozen dataclass that checks itself; the one adapter
- :mod:`helpers.config.choices`   the allowed values of every choice parameter (a leaf)

``data/`` from audio to the images a detector sees
- :mod:`helpers.data.keys`            the ASVspoof 2021 DF keys format
- :mod:`helpers.data.audio`           robust audio loading
- :mod:`helpers.data.asvspoof`        the real corpus: local copy or verified download, safe extraction
- :mod:`helpers.data.speech_sources`  wideband multi-speaker bonafide speech from Debian packages
- :mod:`helpers.data.codecs`          ASVspoof 2021 DF codec conditions (mp3, m4a, ogg) and source codecs
- :mod:`helpers.data.sentences`       the sentences TTS spoofs read: the bonafide sources' own transcripts
- :mod:`helpers.data.synthesis`       the spoofing systems (ids, families, engines, licences), availability, synthesis
- :mod:`helpers.data.copysynth`       the offline corpus: spoofing systems applied to the bonafide speech
- :mod:`helpers.data.corpus`          one loader for either corpus, sampling, splits (source / speaker / clip)
- :mod:`helpers.data.features`        spectrogram images (thesis_rgb32) and log-spectrograms, cached

``models/`` the detectors and the one training loop
- :mod:`helpers.models.resnet`     ResNet-18/50 built as torchvision builds them, without importing torchvision
- :mod:`helpers.models.detectors`  CIFAR-style ResNet-18/50 detectors, ``predict``, ``eval_mode``
- :mod:`helpers.models.training`   one training loop (plain, adversarial, ablated), checkpoints, resume
- :mod:`helpers.models.augment`    seeded image augmentation for training (time shift, SpecAugment masks, noise, gain)

``attacks/`` score-based attacks on the image or on the waveform
- :mod:`helpers.attacks.base`       the attack contract (``Attack``, ``AttackResult``), the seeded random numbers
- :mod:`helpers.attacks.pixle`      batched Pixle
- :mod:`helpers.attacks.sparse_rs`  Sparse-RS, the score-based L0 attack (a stronger check of Pixle)
- :mod:`helpers.attacks.audio`      waveform-domain attacks: StftPixle, SquareAudio; the batched audio pipeline

``defenses/``
- :mod:`helpers.defenses.smoothing`  Gaussian blur / median smoothing, the ``Defended`` wrapper
- :mod:`helpers.defenses.ablation`   certified L0 robustness: randomized ablation, column smoothing, their certificates

``evaluation/`` measuring detectors and attacks
- :mod:`helpers.evaluation.attack_loop`  attack runs cached in chunks, condition records
- :mod:`helpers.evaluation.metrics`      accuracy, EER, DET, bootstrap CIs, attack statistics
- :mod:`helpers.evaluation.claim`        "does the thesis's claim hold?": class-mix reweighting, constant classifiers, tests

``experiments/`` what each notebook runs, and what it hands the next
- :mod:`helpers.experiments.pipeline`    corpus -> sample -> splits -> cached features; training entry points
- :mod:`helpers.experiments.stages`      one function per notebook stage 00-04, typed records in ``metrics/*.json``
- :mod:`helpers.experiments.realizable`  notebook 06: audio-domain attacks and Sparse-RS beside Pixle
- :mod:`helpers.experiments.certified`   notebook 07: certified robustness by ablation, checked by adaptive attacks

``distributed/`` the only place that knows about ranks
- :mod:`helpers.distributed.ddp`           process set-up, the attack loop's chunks dealt to ranks, sharded features, DDP training (torchrun)
- :mod:`helpers.distributed.stage_runner`  notebooks 01-04's heavy work under torchrun, into the notebooks' own caches

``reporting/`` what a reader sees
- :mod:`helpers.reporting.report`      the results tables, the verdict and the report
- :mod:`helpers.reporting.figures`     seaborn styling, every figure, figure saving
- :mod:`helpers.reporting.format`      how a rate, its CI or a difference is written (a leaf: every layer may use it)
- :mod:`helpers.reporting.data_views`  what 00_data shows about the prepared data
- :mod:`helpers.reporting.widgets`     the ipywidgets explorer
- :mod:`helpers.reporting.model_card`  ``outputs/<profile>/MODEL_CARD.md``: what a profile's detectors were trained on

Entry point (imports the layers above; nothing imports it)
- :mod:`helpers.score`  ``python -m helpers.score PATH...``: a finished profile's detectors on your own audio
"""

import warnings as _warnings

__version__ = "0.3.0"

# pyworld 0.3.5 imports pkg_resources at import time; the deprecation warning it triggers is about
# pyworld's packaging, nothing a user of this project can act on, and it cluttered every notebook.
_warnings.filterwarnings("ignore", message="pkg_resources is deprecated", category=UserWarning)
