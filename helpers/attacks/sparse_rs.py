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
success, and all randomness comes from :func:`helpers.attacks.base.counter_uniform` keyed by
(seed, image id, iteration, slot), so an image's result depends neither on the batch it is in
nor on the device, and the global random state is never touched. The only departure from the
authors' code is that one: they draw a single ``randperm`` for the whole batch per iteration
(the same slots are swapped in every image); here each image draws its own.

Queries are model evaluations: one for the clean image, one for the random initial
perturbation, and one per iteration, so at most ``n_queries + 1``.
"""

from __future__ import annotations

import torch
from torch import nn
from tqdm.auto import tqdm

from helpers.attacks.base import (LOSSES, Attack, AttackResult, LossName, check_choice, check_int, check_real,
                                  margin_and_loss, rescaled_schedule, step_uniform)
from helpers.evaluation.metrics import l0_pixels

# the paper's L0 schedule for alpha: (upper end of the rescaled iteration range, divisor)
_L0_SCHEDULE: tuple[tuple[int, int], ...] = (
    (0, 1), (50, 2), (200, 4), (500, 5), (1000, 6), (2000, 8), (4000, 10), (6000, 12), (8000, 15))


def alpha_schedule(alpha_init: float, it: int, n_queries: int) -> float:
    """Fraction of the ``k`` perturbed pixels to resample at iteration ``it`` (Sparse-RS, L0).

    The authors' ``p_selection`` for ``norm='L0'`` with ``resc_schedule=True``: the iteration is
    mapped to a 10 000-query budget, then ``alpha_init`` is divided by a piecewise-constant factor.
    """
    return rescaled_schedule(alpha_init, it, n_queries, _L0_SCHEDULE, 20)


class SparseRS(Attack):
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
        super().__init__(model, seed, skip_misclassified, progress)
        self.k, self.n_queries, self.alpha_init, self.loss = k, n_queries, alpha_init, loss
        self.allowed_mask = None if allowed_mask is None else allowed_mask.bool()
        self._check_params()

    def _check_params(self) -> None:
        check_int(self.name, "k", self.k, 1)
        check_int(self.name, "n_queries", self.n_queries, 1)
        check_real(self.name, "alpha_init", self.alpha_init, 0, 1, lo_open=True)
        check_choice(self.name, "loss", self.loss, LOSSES)
        if self.allowed_mask is not None and (self.allowed_mask.dim() != 2 or not bool(self.allowed_mask.any())):
            raise ValueError(f"{self.name}: allowed_mask must be an (H, W) boolean tensor with at least one True "
                             f"pixel (got shape {tuple(self.allowed_mask.shape)}, {int(self.allowed_mask.sum())} True)")

    # ------------------------------------------------------------------ scoring
    def _margin_loss(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One query: (margin, loss to minimise, success) for images x and true labels y."""
        return margin_and_loss(self._logits(x), y, self.loss)

    def _uniform(self, ids: torch.Tensor, it: int, offset: int, width: int, stride: int) -> torch.Tensor:
        """(n, width) uniforms for slots offset..offset+width of iteration ``it`` of each image."""
        return step_uniform(self.seed, ids, it, self.n_queries + 1, stride, width, offset)

    # ------------------------------------------------------------------ attack
    def _generate(self, x0: torch.Tensor, y: torch.Tensor, ids: torch.Tensor) -> AttackResult:
        dev = x0.device
        b, c, h, w = x0.shape
        n_pix = h * w
        allowed = (torch.ones(n_pix, dtype=torch.bool, device=dev) if self.allowed_mask is None
                   else self.allowed_mask.to(dev).reshape(-1))
        if allowed.numel() != n_pix:
            raise ValueError(f"allowed_mask has {tuple(self.allowed_mask.shape)} pixels, images are {(h, w)}")
        n_allowed = int(allowed.sum())
        k = min(self.k, n_allowed)
        n_free = n_allowed - k
        stride = n_pix * (2 + c)   # slots per (image, iteration): removal keys, addition keys, colours

        margin, loss, fooled = self._margin_loss(x0, y)       # the clean query
        queries = torch.ones(b, dtype=torch.long, device=dev)
        success, done = self._start(fooled)
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
        return AttackResult(adv=adv, success=success, queries=queries, l0=l0_pixels(x0, adv), margin=margin)
