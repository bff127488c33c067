"""Sparse-RS, batched: the score-based black-box L0 (pixel) attack by random search.

Sparse-RS (Croce, Singh, Andriushchenko & Hein, "Sparse-RS: a versatile framework for
query-efficient sparse black-box adversarial attacks", AAAI 2022, arXiv:2006.12834; authors'
code ``fra31/sparse-rs``, ``rs_attacks.py``, ``norm='L0'``), untargeted. The threat model allows
``k`` changed pixels (spatial positions; all channels of a pixel may change). A perturbed pixel
takes a random vertex of the box ``{0, 1}^C``. The attack keeps a set of ``k`` perturbed pixels;
each iteration it swaps ``alpha_i * k`` of them (at least one) for as many unperturbed pixels
with fresh random vertices, and keeps the candidate when the margin loss (true-class logit minus
the best other logit) goes down or the image becomes misclassified. ``alpha_i`` follows the
paper's piecewise-constant L0 schedule (``alpha_init`` divided by 2, 4, 5, 6, 8, 10, 12, 15, 20
at iterations 50, 200, 500, 1000, 2000, 4000, 6000, 8000 of 10 000), rescaled to ``n_queries``.

As in :mod:`helpers.attacks.pixle` (batched Pixle), every image of a batch is attacked at once (one
forward pass per iteration over the images still running), each image stops at its first
success, and all randomness comes from :func:`helpers.attacks.pixle.counter_uniform` keyed by
(seed, image id, iteration, slot), so an image's result depends neither on the batch it is in
nor on the device, and the global random state is never touched. The only departure from the
authors' code is that one: they draw a single ``randperm`` for the whole batch per iteration
(the same slots are swapped in every image); here each image draws its own.

Queries are model evaluations: one for the clean image, one for the random initial
perturbation, and one per iteration, so at most ``n_queries + 1``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from helpers.attacks.pixle import counter_uniform
from helpers.evaluation.metrics import l0_pixels
from helpers.models.detectors import eval_mode

LossName = Literal["margin", "ce"]

# the paper's L0 schedule for alpha: (upper end of the rescaled iteration range, divisor)
_L0_SCHEDULE: tuple[tuple[int, int], ...] = (
    (0, 1), (50, 2), (200, 4), (500, 5), (1000, 6), (2000, 8), (4000, 10), (6000, 12), (8000, 15))


def alpha_schedule(alpha_init: float, it: int, n_queries: int) -> float:
    """Fraction of the ``k`` perturbed pixels to resample at iteration ``it`` (Sparse-RS, L0).

    The authors' ``p_selection`` for ``norm='L0'`` with ``resc_schedule=True``: the iteration is
    mapped to a 10 000-query budget, then ``alpha_init`` is divided by a piecewise-constant factor.
    """
    t = int(it / max(n_queries, 1) * 10000)
    for upper, div in _L0_SCHEDULE:
        if t <= upper:
            return alpha_init / div
    return alpha_init / 20


@dataclass
class SparseRSResult:
    """What one Sparse-RS run returns, per image."""

    adv: torch.Tensor         # (B, C, H, W) adversarial images, in [0, 1]
    success: torch.Tensor     # (B,) bool: the returned image is misclassified (as the attack saw it)
    queries: torch.Tensor     # (B,) model evaluations: clean + initial + iterations until stop
    l0: torch.Tensor          # (B,) pixels changed (any channel), <= k
    margin: torch.Tensor      # (B,) true logit minus best other logit of the returned image (< 0: fooled)

    def cpu(self) -> "SparseRSResult":
        return SparseRSResult(*(getattr(self, f).cpu() for f in self.__dataclass_fields__))


class SparseRS:
    """Batched untargeted Sparse-RS for the L0 threat model: ``SparseRS(model, k=10)(images, labels)``.

    - ``k``: pixel budget (spatial positions); ``n_queries``: iterations including the initial
      perturbation (the clean query comes on top).
    - ``alpha_init``: initial fraction of the ``k`` pixels resampled per iteration (the authors'
      code defaults to 0.8; on the toy detector of the tests 0.1, 0.3 and 0.8 gave the same rate).
    - ``loss``: ``"margin"`` (the paper's untargeted choice) or ``"ce"`` (negative cross-entropy).
    - ``allowed_mask``: (H, W) bool; only these pixels may be touched (``k`` is capped at their count).
    - ``skip_misclassified``: images the model already gets wrong are returned unchanged (one query).
    - ``seed``: the attack's own random stream; ``ids`` in the call identify images across batches.
    """

    def __init__(self, model: nn.Module, k: int = 10, n_queries: int = 1000, alpha_init: float = 0.3,
                 loss: LossName = "margin", allowed_mask: torch.Tensor | None = None, seed: int = 0,
                 skip_misclassified: bool = False, progress: bool = False):
        if not isinstance(k, int) or k < 1:
            raise ValueError(f"k must be an integer >= 1 ({k})")
        if not isinstance(n_queries, int) or n_queries < 1:
            raise ValueError(f"n_queries must be an integer >= 1 ({n_queries})")
        if not 0 < alpha_init <= 1:
            raise ValueError(f"alpha_init must be in (0, 1] ({alpha_init})")
        if loss not in ("margin", "ce"):
            raise ValueError(f"loss must be 'margin' or 'ce' ({loss!r})")
        if allowed_mask is not None and (allowed_mask.dim() != 2 or not bool(allowed_mask.any())):
            raise ValueError("allowed_mask must be an (H, W) boolean tensor with at least one True pixel")
        self.model, self.k, self.n_queries, self.alpha_init = model, k, n_queries, alpha_init
        self.loss = loss
        self.allowed_mask = None if allowed_mask is None else allowed_mask.bool()
        self.seed, self.skip_misclassified, self.progress = seed, skip_misclassified, progress

    # ------------------------------------------------------------------ scoring
    def _margin_loss(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(margin, loss to minimise, success) for images x and true labels y."""
        with torch.inference_mode():
            logits = self.model(x).float()
        true = logits.gather(1, y[:, None]).squeeze(1)
        other = logits.scatter(1, y[:, None], float("-inf")).amax(1)
        margin = true - other
        loss = margin if self.loss == "margin" else -F.cross_entropy(logits, y, reduction="none")
        return margin, loss, logits.argmax(1) != y

    # ------------------------------------------------------------------ randomness
    def _uniform(self, ids: torch.Tensor, it: int, offset: int, width: int, stride: int) -> torch.Tensor:
        """(n, width) uniforms for slots offset..offset+width of iteration ``it`` of each image."""
        ctr = (ids[:, None] * (self.n_queries + 1) + it) * stride + offset
        return counter_uniform(self.seed, ctr + torch.arange(width, device=ids.device))

    # ------------------------------------------------------------------ attack
    def __call__(self, images: torch.Tensor, labels: torch.Tensor,
                 ids: torch.Tensor | None = None) -> SparseRSResult:
        return self.attack(images, labels, ids)

    def attack(self, images: torch.Tensor, labels: torch.Tensor, ids: torch.Tensor | None = None) -> SparseRSResult:
        """Attack ``images`` (B, C, H, W) in [0, 1] with true ``labels`` (B,)."""
        if images.dim() == 3:
            images = images.unsqueeze(0)
        if images.min() < 0 or images.max() > 1:
            raise ValueError("SparseRS expects images in [0, 1]")
        with eval_mode(self.model):
            return self._attack(images, labels, ids)

    def _attack(self, images: torch.Tensor, labels: torch.Tensor, ids: torch.Tensor | None) -> SparseRSResult:
        dev = images.device
        x0 = images.detach().clone()
        b, c, h, w = x0.shape
        n_pix = h * w
        y = labels.to(dev).long()
        ids = torch.arange(b, device=dev) if ids is None else ids.to(dev).long()
        allowed = (torch.ones(n_pix, dtype=torch.bool, device=dev) if self.allowed_mask is None
                   else self.allowed_mask.to(dev).reshape(-1))
        if allowed.numel() != n_pix:
            raise ValueError(f"allowed_mask has {tuple(self.allowed_mask.shape)} pixels, images are {(h, w)}")
        n_allowed = int(allowed.sum())
        k = min(self.k, n_allowed)
        n_free = n_allowed - k
        stride = n_pix * (2 + c)   # slots per (image, iteration): removal keys, addition keys, colours

        margin, loss, success = self._margin_loss(x0, y)      # the clean query
        queries = torch.ones(b, dtype=torch.long, device=dev)
        done = success.clone() if self.skip_misclassified else torch.zeros(b, dtype=torch.bool, device=dev)
        if not self.skip_misclassified:
            success[:] = False
        adv = x0.clone()
        mask = torch.zeros(b, n_pix, dtype=torch.bool, device=dev)    # perturbed pixels
        colour = torch.zeros(b, c, n_pix, dtype=x0.dtype, device=dev)  # their vertex colours
        inf = torch.tensor(float("inf"), device=dev)

        def vertices(act: torch.Tensor, it: int) -> torch.Tensor:
            u = self._uniform(ids[act], it, 2 * n_pix, c * n_pix, stride).reshape(-1, c, n_pix)
            return (u < 0.5).to(x0.dtype)

        def compose(act: torch.Tensor, m: torch.Tensor, col: torch.Tensor) -> torch.Tensor:
            flat = torch.where(m[:, None, :], col, x0[act].reshape(len(act), c, n_pix))
            return flat.reshape(len(act), c, h, w)

        bar = tqdm(total=self.n_queries, desc="Sparse-RS", leave=False, disable=not self.progress)
        for it in range(self.n_queries):
            act = (~done).nonzero().squeeze(1)
            if act.numel() == 0:
                break
            m_new, col_new = mask[act].clone(), colour[act].clone()
            if it == 0:   # random initial perturbation: k allowed pixels, random vertices
                keys = torch.where(allowed, self._uniform(ids[act], it, n_pix, n_pix, stride), inf)
                add = keys.topk(k, dim=1, largest=False).indices
                m_new.scatter_(1, add, True)
                col_new = vertices(act, it)
            else:
                r = max(int(alpha_schedule(self.alpha_init, it, self.n_queries) * k), 1)
                r = min(r, k, n_free) if n_free > 0 else min(r, k)
                rm_keys = torch.where(m_new, self._uniform(ids[act], it, 0, n_pix, stride), inf)
                rm = rm_keys.topk(r, dim=1, largest=False).indices
                fresh = vertices(act, it)
                if n_free > 0:   # swap r perturbed pixels for r unperturbed ones with new colours
                    add_keys = torch.where(allowed & ~m_new, self._uniform(ids[act], it, n_pix, n_pix, stride), inf)
                    add = add_keys.topk(r, dim=1, largest=False).indices
                    m_new.scatter_(1, rm, False)
                    m_new.scatter_(1, add, True)
                else:            # every allowed pixel is perturbed: recolour r of them instead
                    add = rm
                idx = add[:, None, :].expand(-1, c, -1)
                col_new.scatter_(2, idx, fresh.gather(2, idx))
            cand = compose(act, m_new, col_new)
            mg, ls, sc = self._margin_loss(cand, y[act])
            queries[act] += 1
            accept = sc | (ls < loss[act]) if it > 0 else torch.ones_like(sc)
            upd = act[accept]
            mask[upd], colour[upd], adv[upd] = m_new[accept], col_new[accept], cand[accept]
            margin[upd], loss[upd], success[upd] = mg[accept], ls[accept], sc[accept]
            done[upd] |= sc[accept]
            bar.update(1)
        bar.close()
        adv = adv.clamp(0, 1)
        return SparseRSResult(adv=adv, success=success, queries=queries, l0=l0_pixels(x0, adv), margin=margin)
