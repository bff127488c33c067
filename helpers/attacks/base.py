"""The attack contract every attack here implements, and the seeded random numbers they share.

In the spirit of the Adversarial Robustness Toolbox's ``EvasionAttack`` (one base class, ``generate``,
``_check_params`` at the end of ``__init__``) and torchattacks' ``Attack.__call__`` (the model is put in
eval mode once, for every attack), written for score-based black-box attacks on batches:

- :class:`Attack`: ``attack(x, labels, ids=None)`` = ``attack.generate(...)`` checks the input's shape
  and range, puts every submodule of the model in eval mode and afterwards gives each submodule back its
  *own* mode (:func:`helpers.models.detectors.eval_mode`), and times the run. A subclass implements
  ``_check_params`` (called at the end of its ``__init__``: a bad parameter fails at construction, with
  the allowed range in the message) and ``_generate``.
- :class:`AttackResult`: the one result type. Adversarial input, success, queries, and the size of the
  perturbation: L0 (pixels) for the image attacks, SNR (dB) for the waveform attacks, the other NaN;
  plus what a particular attack also records (Pixle's forwards, the final probability or margin, ...).
- :func:`counter_uniform`: uniforms that depend only on (seed, counter), so an item's result does not
  depend on the batch it is in or the device, and the global random state is never touched.
"""

from __future__ import annotations

import math
import numbers
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, fields
from typing import Any, ClassVar, Literal, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from helpers.models.detectors import eval_mode

# --------------------------------------------------------------------------- seeded random numbers

_M32 = 0xFFFFFFFF


def _hash32(x: torch.Tensor) -> torch.Tensor:
    """A 32-bit integer mixer on int64 tensors (constants < 2**31, so products never overflow)."""
    x = x & _M32
    x = x ^ (x >> 16)
    x = (x * 0x45D9F3B) & _M32
    x = x ^ (x >> 16)
    x = (x * 0x45D9F3B) & _M32
    return x ^ (x >> 16)


def counter_uniform(seed: int, counters: torch.Tensor) -> torch.Tensor:
    """Uniform floats in [0, 1) that depend only on (seed, counter): batch- and device-independent."""
    key = _hash32(torch.tensor(((seed >> 32) & _M32) + 0x9E3779B9, device=counters.device))
    key = _hash32(key ^ (seed & _M32))
    h = _hash32((counters & _M32) ^ _hash32(((counters >> 32) & _M32) ^ key))
    return (h >> 8).to(torch.float32) * (1.0 / (1 << 24))


def step_uniform(seed: int, ids: torch.Tensor, step: int, steps: int, stride: int, width: int,
                 offset: int = 0) -> torch.Tensor:
    """(n, width) uniforms for slots ``offset .. offset + width`` of step ``step`` of each item ``ids``.

    Each (item, step) owns ``stride`` consecutive counters; ``steps`` bounds the step index, so two items'
    counters never overlap.
    """
    ctr = (ids[:, None] * steps + step) * stride + offset
    return counter_uniform(seed, ctr + torch.arange(width, device=ids.device))


def rescaled_schedule(init: float, it: int, n_queries: int, table: Sequence[tuple[int, int]], last: int) -> float:
    """``init / divisor`` of a piecewise-constant schedule written for 10 000 queries, rescaled to ``n_queries``.

    ``table`` holds (upper end of a range of iterations out of 10 000, divisor); past the last range the
    divisor is ``last`` (Square Attack's ``p`` and Sparse-RS's ``alpha`` schedules).
    """
    t = int(it / max(n_queries, 1) * 10000)
    for upper, div in table:
        if t <= upper:
            return init / div
    return init / last


LossName = Literal["margin", "ce"]
LOSSES: tuple[str, ...] = ("margin", "ce")


def margin_and_loss(logits: torch.Tensor, y: torch.Tensor,
                    loss: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(margin, loss to minimise, fooled) for ``logits`` (B, classes) and true labels ``y`` (B,).

    Margin = true logit minus the best other logit (< 0: fooled); the loss is the margin (``"margin"``,
    the untargeted choice of Square Attack and Sparse-RS) or the negative cross-entropy (``"ce"``).
    """
    true = logits.gather(1, y[:, None]).squeeze(1)
    margin = true - logits.scatter(1, y[:, None], float("-inf")).amax(1)
    value = margin if loss == "margin" else -F.cross_entropy(logits, y, reduction="none")
    return margin, value, logits.argmax(1) != y


# --------------------------------------------------------------------------- parameter checks

def check_int(owner: str, name: str, value: Any, lo: int, hi: int | None = None) -> None:
    """ValueError naming the allowed range unless ``value`` is an integer in [lo, hi] (hi None: no upper end)."""
    integer = isinstance(value, numbers.Integral) and not isinstance(value, bool)
    if not integer or value < lo or (hi is not None and value > hi):
        raise ValueError(f"{owner}: {name}={value!r} is out of range; allowed: an integer in "
                         f"[{lo}, {'inf' if hi is None else hi}]")


def check_real(owner: str, name: str, value: Any, lo: float, hi: float, lo_open: bool = False) -> None:
    """ValueError naming the allowed range unless ``value`` is a real number in [lo, hi] (``(lo, hi]`` if lo_open)."""
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value) and (
        lo < value <= hi if lo_open else lo <= value <= hi)
    if not ok:
        raise ValueError(f"{owner}: {name}={value!r} is out of range; allowed: a number in "
                         f"{'(' if lo_open else '['}{lo:g}, {hi:g}]")


def check_choice(owner: str, name: str, value: Any, choices: Sequence[str]) -> None:
    """ValueError listing the choices unless ``value`` is one of them."""
    if value not in choices:
        raise ValueError(f"{owner}: {name}={value!r} is not allowed; choose one of {tuple(choices)}")


def check_patch_dims(owner: str, name: str, dims: Sequence[int | float]) -> None:
    """Pixle's patch sizes: (min, max) each an integer >= 1 (pixels) or a float in [0, 1] (a fraction of the side)."""
    if len(dims) != 2 or not all((isinstance(d, numbers.Integral) and not isinstance(d, bool) and d > 0)
                                 or (isinstance(d, numbers.Real) and not isinstance(d, numbers.Integral) and 0 <= d <= 1)
                                 for d in dims):
        raise ValueError(f"{owner}: {name}={tuple(dims)!r} is out of range; allowed: (min, max), each an integer "
                         "in [1, inf] (pixels) or a float in [0, 1] (fraction of the side)")


# --------------------------------------------------------------------------- the result

@dataclass
class AttackResult:
    """What every attack returns, per item (image or clip) of the batch.

    ``l0`` and ``snr_db`` are always tensors: the image attacks measure L0 and leave SNR NaN, the waveform
    attacks measure SNR and leave L0 NaN, so a per-clip table holds both columns for every attack.
    The other optional fields are what a particular attack records; None where it records nothing.
    """

    adv: torch.Tensor | list[torch.Tensor]   # adversarial inputs: (B, C, H, W) images in [0, 1] or (B, T) waveforms
    #                                          in [-1, 1]; a list when clips of several lengths were attacked in groups
    success: torch.Tensor                    # (B,) bool: the returned input fooled the model (as the attack scored it)
    queries: torch.Tensor                    # (B,) model evaluations the algorithm needed (clean one included)
    l0: torch.Tensor | None = None           # (B,) pixels changed (any channel); NaN for waveform attacks
    snr_db: torch.Tensor | None = None       # (B,) SNR of adv - clean over clean, dB (inf: unchanged); NaN for images
    forwards: torch.Tensor | None = None     # (B,) evaluations computed (Pixle's block scoring may compute a few extra)
    final_prob: torch.Tensor | None = None   # (B,) true-class (targeted: 1 - target) probability recorded for adv
    final_score: torch.Tensor | None = None  # (B,) bonafide score (logit 0 - logit 1) recorded for adv (audio attacks)
    margin: torch.Tensor | None = None       # (B,) true logit minus best other logit of adv (< 0: fooled; Sparse-RS)
    linf: torch.Tensor | None = None         # (B,) max |adv - clean| (audio attacks)
    adv_mag: torch.Tensor | None = None      # (B, bins, frames) STFT magnitude adv was synthesised from (StftPixle)
    seconds: float = 0.0                     # wall time of the run

    def __post_init__(self) -> None:
        for name in ("l0", "snr_db"):
            if getattr(self, name) is None:
                setattr(self, name, torch.full(self.success.shape, float("nan"), device=self.success.device))

    def cpu(self) -> "AttackResult":
        """The same result with every tensor on the CPU."""
        def move(v):
            if isinstance(v, torch.Tensor):
                return v.cpu()
            return [t.cpu() for t in v] if isinstance(v, list) else v
        return AttackResult(**{f.name: move(getattr(self, f.name)) for f in fields(self)})

    @classmethod
    def gather(cls, parts: Sequence[tuple[torch.Tensor, "AttackResult"]], n: int) -> "AttackResult":
        """One result for ``n`` items from results of groups of them: ``parts`` = (item indices, result) pairs.

        Per-item scalars are scattered into (n,) tensors; per-item arrays (the adversarial inputs, StftPixle's
        magnitudes) become lists, since groups may differ in shape (clips of different lengths).
        """
        out: dict[str, Any] = {"seconds": sum(r.seconds for _, r in parts)}
        for f in fields(cls):
            vals = [(idx, getattr(r, f.name)) for idx, r in parts]
            if f.name == "seconds" or any(v is None for _, v in vals) or not vals:
                continue
            if all(isinstance(v, torch.Tensor) and v.dim() == 1 for _, v in vals):
                full = torch.zeros(n, dtype=vals[0][1].dtype)
                for idx, v in vals:
                    full[idx] = v.cpu()
                out[f.name] = full
            else:
                items: list = [None] * n
                for idx, v in vals:
                    for j, i in enumerate(idx.tolist()):
                        items[i] = v[j].cpu()
                out[f.name] = items
        return cls(**out)


# --------------------------------------------------------------------------- the base class

class Attack(ABC):
    """One score-based black-box attack: ``attack(x, labels, ids=None) -> AttackResult``.

    Subclasses set ``input_range`` / ``input_dims`` / ``input_name`` for their domain, end ``__init__``
    with ``self._check_params()`` and implement ``_generate(x, y, ids)``, which receives a detached copy of
    the batch, labels as int64 on its device and the items' ids (default ``0 .. B-1``; they key the
    randomness, so the same item gets the same result in any batch).

    - ``model``: what the attack queries (logits); a wrapper with a preprocessing step (a blur, the
      feature extraction of an audio pipeline) is queried whole, so defenses sit inside the attack.
    - ``seed``: the attack's own random stream (:func:`counter_uniform`).
    - ``skip_misclassified``: items the first query finds misclassified are returned unchanged (one query).
    - ``progress``: a tqdm bar per call.
    """

    input_range: ClassVar[tuple[float, float]] = (0.0, 1.0)
    input_dims: ClassVar[int] = 4
    input_name: ClassVar[str] = "images (B, C, H, W)"

    def __init__(self, model: nn.Module, seed: int = 0, skip_misclassified: bool = False, progress: bool = False):
        self.model, self.seed = model, seed
        self.skip_misclassified, self.progress = skip_misclassified, progress

    @property
    def name(self) -> str:
        return type(self).__name__

    @abstractmethod
    def _check_params(self) -> None:
        """Raise ValueError, naming the parameter and its allowed range, for any parameter out of range."""

    @abstractmethod
    def _generate(self, x: torch.Tensor, y: torch.Tensor, ids: torch.Tensor, **kwargs) -> AttackResult:
        """Attack the prepared batch (the model is already in eval mode)."""

    def __call__(self, x: torch.Tensor, labels: torch.Tensor, ids: torch.Tensor | None = None,
                 **kwargs) -> AttackResult:
        return self.generate(x, labels, ids, **kwargs)

    def generate(self, x: torch.Tensor, labels: torch.Tensor, ids: torch.Tensor | None = None,
                 **kwargs) -> AttackResult:
        """Attack ``x`` with true ``labels``; every submodule of the model in eval mode meanwhile, each
        submodule's own mode restored afterwards. ``ids`` identify the items across batches."""
        t0 = time.perf_counter()
        x, y, ids = self._inputs(x, labels, ids)
        with eval_mode(self.model):
            res = self._generate(x, y, ids, **kwargs)
        res.seconds = time.perf_counter() - t0
        return res

    def _inputs(self, x: torch.Tensor, labels: torch.Tensor,
                ids: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        if x.dim() == self.input_dims - 1:
            x = x.unsqueeze(0)
        if x.dim() != self.input_dims:
            raise ValueError(f"{self.name} expects {self.input_name}, got shape {tuple(x.shape)}")
        lo, hi = self.input_range
        if x.numel() and (x.min() < lo or x.max() > hi):
            raise ValueError(f"{self.name} expects {self.input_name} in [{lo:g}, {hi:g}], got values in "
                             f"[{float(x.min()):.3g}, {float(x.max()):.3g}]; rescale them first")
        dev = x.device
        ids = torch.arange(x.shape[0], device=dev) if ids is None else ids.to(dev).long()
        return x.detach().clone(), labels.to(dev).long(), ids

    def _logits(self, x: torch.Tensor) -> torch.Tensor:
        """One query: float32 logits of ``x``, no autograd."""
        with torch.inference_mode():
            return self.model(x).float()

    def _start(self, fooled: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(success, done) after the clean query: with ``skip_misclassified`` the items already fooled are done
        (and count as successes), otherwise every item is attacked."""
        if self.skip_misclassified:
            return fooled.clone(), fooled.clone()
        return torch.zeros_like(fooled), torch.zeros_like(fooled)


__all__ = ["Attack", "AttackResult", "counter_uniform", "step_uniform", "rescaled_schedule", "LOSSES", "LossName",
           "margin_and_loss", "check_int", "check_real", "check_choice", "check_patch_dims"]
