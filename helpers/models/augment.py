"""Training-time augmentation of the images a detector sees, seeded per batch.

Why on images and not on waveforms: the training loop (single-process and DDP alike) works on cached feature
tensors; augmenting waveforms online would mean decoding and re-extracting every clip every epoch, and the
corpus already carries the waveform-domain augmentation that matters for channels, every ASVspoof 2021 DF codec
condition applied offline (:mod:`helpers.data.codecs`). What is left to do online acts on the image:

- ``shift``: a random circular shift along time (the last axis): where in the crop speech sits is not evidence.
- ``freqmask`` / ``timemask``: SpecAugment masks (Park et al., Interspeech 2019): one band of up to 1/8 of the
  rows / columns set to the image's mean. A frequency band that vanishes is what a low-bitrate codec does to a
  spectrogram, so the detector is pushed not to rest on one band (RawBoost's motivation, Tak et al., ICASSP 2022,
  in the image domain).
- ``noise``: additive Gaussian noise with a standard deviation drawn from [0, 0.03] per image (a noisy channel).
- ``gain``: a random brightness offset in [-0.05, 0.05] (a level change moves a log spectrogram by a constant;
  for the thesis's min-max-normalised RGB image it is a colour shift).
- ``eq`` (``FEATURES = "lfcc"`` images only, applied before the others): a random channel response, RawBoost's linear
  convolutive noise (Tak et al., ICASSP 2022) applied where a filter acts on LFCC, to the log filterbank energies:
  a high-frequency roll-off of 0-30 dB starting at a random filter centred between 3.4 and 7.6 kHz (of the 20
  linear filters over 0-8 kHz, centres (i + 1) x 8000 / 21 Hz), plus a smooth ripple of three cosines of up to
  3 dB each. A filter's response is constant in time, so it moves the cepstra by a constant per clip and the
  deltas not at all; the image is inverted to dB, filtered and rebuilt exactly
  (:func:`helpers.data.features.lfcc_filtered`).
  Why: in the demo corpus every bonafide source package has its own high-frequency level (festvox-ru's studio
  reading rolls off like the vocoders, the Asterisk prompts do not), so without it the LFCC detector can learn
  which recording conditions are bonafide (README, "S07's speaker held in test").

Every transform takes ``(x, generator)`` and returns an image batch of the same shape in [0, 1]; labels are
never touched. The same signature is the generic hook :func:`helpers.models.training.train` offers
(``transform=``), e.g. for training on ablated images.
"""

from __future__ import annotations

from typing import Callable

import torch

Transform = Callable[[torch.Tensor, torch.Generator], torch.Tensor]
# eq first: it rebuilds the image from its cepstral rows, so it must see the clean image, not a masked or noisy one
AUGMENTS: tuple[str, ...] = ("eq", "shift", "freqmask", "timemask", "noise", "gain")


def parse_augment(spec: str | None) -> tuple[str, ...]:
    """``"shift+freqmask"`` -> ``("shift", "freqmask")``; ``"none"``, ``""`` or None -> ``()``."""
    if not spec or spec == "none":
        return ()
    names = tuple(s.strip() for s in spec.split("+") if s.strip())
    bad = [n for n in names if n not in AUGMENTS]
    if bad:
        raise ValueError(f"AUGMENT={spec!r}: unknown {bad}; choose '+'-joined names from {AUGMENTS} or 'none'")
    return names


def _uniform(n: int, g: torch.Generator, lo: float, hi: float) -> torch.Tensor:
    return lo + (hi - lo) * torch.rand(n, generator=g)


def _mask(x: torch.Tensor, g: torch.Generator, axis: int, max_frac: float = 0.125) -> torch.Tensor:
    """One band along ``axis`` (-2: rows = frequency, -1: columns = time) per image, set to its mean."""
    size = x.shape[axis]
    widths = (torch.rand(len(x), generator=g) * max_frac * size).long()
    starts = (torch.rand(len(x), generator=g) * (size - widths + 1)).long()
    pos = torch.arange(size)
    band = (pos[None] >= starts[:, None]) & (pos[None] < (starts + widths)[:, None])      # (B, size)
    shape = (len(x), 1, size, 1) if axis == -2 else (len(x), 1, 1, size)
    band = band.view(shape).to(x.device)
    return torch.where(band, x.mean((1, 2, 3), keepdim=True), x)


def _shift(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    w = x.shape[-1]
    shifts = torch.randint(0, w, (len(x),), generator=g)
    idx = (torch.arange(w)[None] - shifts[:, None]) % w                                    # (B, W)
    return torch.gather(x, -1, idx.view(len(x), 1, 1, w).expand_as(x).to(x.device))


def _noise(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    sigma = _uniform(len(x), g, 0.0, 0.03).view(-1, 1, 1, 1)
    return x + sigma.to(x.device) * torch.randn(x.shape, generator=g).to(x.device)


def _gain(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    return x + _uniform(len(x), g, -0.05, 0.05).view(-1, 1, 1, 1).to(x.device)


# eq: the roll-off's depth, the first attenuated filter (index among the 20 linear filters over 0-8 kHz: 8 is
# centred at 3.4 kHz, 19 at 7.6 kHz), the ripple's amplitude per cosine
EQ_ROLLOFF_DB, EQ_CUTOFF_FILTERS, EQ_RIPPLE_DB = (0.0, 30.0), (8, 19), 3.0


def channel_response_db(n: int, g: torch.Generator) -> torch.Tensor:
    """``n`` random channel responses in dB over the LFCC's linear filters, (n, 20): a linear roll-off from a
    random first attenuated filter to full depth at the top one, of random depth, plus three random cosines."""
    from helpers.data.features import LFCC_FILTERS as n_filters

    f = torch.arange(n_filters, dtype=torch.float32)[None]
    depth = _uniform(n, g, *EQ_ROLLOFF_DB)[:, None]
    cut = torch.randint(EQ_CUTOFF_FILTERS[0], EQ_CUTOFF_FILTERS[1] + 1, (n, 1), generator=g).float()
    ramp = ((f - cut + 1) / (n_filters - cut)).clamp(0, 1)               # 0 below filter `cut`, 1 at the top
    k = torch.arange(1, 4, dtype=torch.float32).view(1, 3, 1)
    amp = _uniform(3 * n, g, -EQ_RIPPLE_DB, EQ_RIPPLE_DB).view(n, 3, 1)
    phase = _uniform(3 * n, g, 0.0, 2 * torch.pi).view(n, 3, 1)
    ripple = (amp * torch.cos(torch.pi * k * f[:, None] / (n_filters - 1) + phase)).sum(1)
    return -depth * ramp + ripple


def _eq(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    from helpers.data.features import lfcc_filtered

    return lfcc_filtered(x, channel_response_db(len(x), g))                # raises if x is not an LFCC image


_OPS: dict[str, Transform] = {"shift": _shift, "freqmask": lambda x, g: _mask(x, g, -2),
                              "timemask": lambda x, g: _mask(x, g, -1), "noise": _noise, "gain": _gain, "eq": _eq}


def make_augment(spec: str | None, features: str | None = None) -> Transform | None:
    """The composed transform for ``spec`` (applied in :data:`AUGMENTS` order, ``eq`` first), or None for none.

    ``features`` (the training images' front end, when known) refuses ``eq`` on anything but plain ``lfcc``: an
    ``lfcc_cmn`` image has LFCC's shape, so :func:`helpers.data.features.lfcc_filtered` cannot tell it apart, and
    filtering it would undo its normalisation."""
    names = parse_augment(spec)
    if "eq" in names and features is not None and features != "lfcc":
        raise ValueError(f"AUGMENT = {spec!r} on FEATURES = {features!r} images: 'eq' needs FEATURES 'lfcc'; "
                         "leave 'eq' out")
    if not names:
        return None
    ops = [_OPS[n] for n in AUGMENTS if n in names]

    def augment(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        for op in ops:
            x = op(x, g)
        return x.clamp(0, 1)

    return augment


def batch_generator(seed: int, epoch: int, batch: int) -> torch.Generator:
    """The CPU generator of one training batch: a pure function of (seed, epoch, batch), so a resumed run
    draws the same augmentation as an uninterrupted one."""
    return torch.Generator().manual_seed((seed * 1_000_003 + epoch * 10_007 + batch) % (2 ** 63))


__all__ = ["AUGMENTS", "Transform", "parse_augment", "make_augment", "batch_generator", "channel_response_db"]
