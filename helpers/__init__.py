"""Companion package to the thesis on defending audio deepfake detectors against Pixle.

The notebooks in ``notebooks/`` tell the story; the modules here do the work:

- :mod:`helpers.paths`      every path the project uses (overridable by environment variables)
- :mod:`helpers.io`         atomic writes, JSON, cache keys
- :mod:`helpers.runtime`    seeding, device choice, version banner
- :mod:`helpers.keys`       the ASVspoof 2021 DF keys format
- :mod:`helpers.audio`      robust audio loading
- :mod:`helpers.asvspoof`   the real corpus: local copy or verified download, safe extraction
- :mod:`helpers.copysynth`  the offline vocoder copy-synthesis corpus
- :mod:`helpers.corpus`     one loader for either corpus, sampling and splits
- :mod:`helpers.features`   spectrogram images (thesis_rgb32) and log-spectrograms, cached
- :mod:`helpers.models`     CIFAR-style ResNet-18/50 detectors
- :mod:`helpers.training`   one training loop (plain and adversarial), checkpoints, resume
- :mod:`helpers.metrics`    accuracy, EER, DET, bootstrap CIs, attack statistics
- :mod:`helpers.attacks`    batched Pixle
- :mod:`helpers.defenses`   Gaussian blur / median smoothing, the ``Defended`` wrapper
- :mod:`helpers.evaluation` the thesis's conditions, non-adaptive and adaptive
- :mod:`helpers.report`     the results table and report
- :mod:`helpers.plots`      seaborn styling and figure saving
- :mod:`helpers.widgets`    the ipywidgets explorer
"""

__version__ = "0.1.0"
