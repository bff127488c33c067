"""The allowed values of every choice parameter: a leaf the config layer and the modules it checks both read.

The config layer (:mod:`helpers.config.sections`) checks a profile against these lists without importing
the modules that implement the choices, so ``helpers.config`` sits below every other layer. A module that
owns a choice (``helpers.models.detectors.ARCHS``, ...) must hold the same tuple; ``tests/test_config.py``
fails when one drifts (the owners can import it from here: one line each).
"""

from __future__ import annotations

DATASETS: tuple[str, ...] = ("copysynth", "asvspoof2021_df")
SPLIT_BY: tuple[str, ...] = ("source", "speaker", "clip")                      # helpers.data.corpus.split_units
FEATURES: tuple[str, ...] = ("thesis_rgb32", "logspec", "lfcc", "lfcc_cmn", "loglin")                      # helpers.data.features.FEATURES
ON_ERROR: tuple[str, ...] = ("error", "skip")
SPEECH_SOURCES: tuple[str, ...] = ("asterisk_g722", "festvox_ru", "tuxpaint")  # helpers.data.speech_sources.SOURCES
DF_CODECS: tuple[str, ...] = ("nocodec", "low_mp3", "high_mp3", "low_m4a", "high_m4a", "low_ogg",
                              "high_ogg")                                      # helpers.data.codecs.DF_CODECS
ARCHS: tuple[str, ...] = ("resnet18", "resnet50")                              # helpers.models.detectors.ARCHS
LR_SCHEDULES: tuple[str, ...] = ("constant", "cosine")                         # helpers.models.training.TrainConfig
PIXLE_MAPPINGS: tuple[str, ...] = ("random", "similarity", "similarity_random", "distance",
                                   "distance_random")                          # helpers.attacks.pixle.MAPPINGS
BLUR_PER: tuple[str, ...] = ("batch", "image")                                 # helpers.defenses.smoothing.GaussianBlur
AT_INIT: tuple[str, ...] = ("scratch", "baseline")
BALANCE: tuple[str, ...] = ("none", "weighted")                                # helpers.models.training.TrainConfig
SELECT: tuple[str, ...] = ("last", "val_eer")                                  # helpers.models.training.TrainConfig
EARLY_STOP_METRICS: tuple[str, ...] = ("val_loss", "val_eer")                  # helpers.models.training.EarlyStop
AUGMENTS: tuple[str, ...] = ("eq", "shift", "freqmask", "timemask", "noise", "gain")  # helpers.models.augment.AUGMENTS
CERT_INIT: tuple[str, ...] = ("baseline", "scratch")                           # helpers.experiments.certified
UNSEEN_VOICE_SPEAKER: tuple[str, ...] = ("drawn", "test")                             # helpers.data.corpus.assign_splits

__all__ = ["DATASETS", "SPLIT_BY", "FEATURES", "ON_ERROR", "SPEECH_SOURCES", "DF_CODECS", "ARCHS", "LR_SCHEDULES",
           "PIXLE_MAPPINGS", "BLUR_PER", "AT_INIT", "BALANCE", "SELECT", "EARLY_STOP_METRICS", "AUGMENTS", "CERT_INIT",
           "UNSEEN_VOICE_SPEAKER"]
