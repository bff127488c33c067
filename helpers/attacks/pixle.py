"""Pixle, batched: the score-based black-box attack that rearranges pixels, many times faster.

Pixle (Pomponi, Scardapane & Uncini, "Pixle: a fast and effective black-box attack based on
rearranging pixels", IJCNN 2022, arXiv:2202.02236). Each candidate copies a random patch of the
*original* image onto positions of the current image chosen by a pixel mapping; a candidate that
lowers the true-class probability is kept; the attack stops at the first candidate that changes
the prediction. This follows ``torchattacks.Pixle`` (restart and iterative modes, patch sizes as
fractions or pixels, the five pixel mappings, targeted/untargeted, early exit in candidate
order, including its quirks: the last row/column is never drawn, and a restart without any
improvement continues from its last candidate) but

- scores a *block* of candidates for every image of a batch in one forward pass, and reads
  success from the same scores (torchattacks runs a second batch-of-one forward per candidate);
- builds candidates on the model's device with batched tensor operations (gather/scatter);
- draws its randomness from a counter-based hash of (seed, image id, restart, iteration, slot),
  so the result for an image does not depend on the batch it is in, the block size or the
  device, and the global numpy/torch random state is never touched.

Two deliberate differences from torchattacks, both orientation/ordering fixes that matter only
for non-square images or duplicated destinations: destinations are (row, column) in range of
(H, W) (torchattacks swaps them for the similarity/distance mappings), and when two patch pixels
land on the same destination the later one wins deterministically (torchattacks leaves that to
``index_put``). Queries are counted as the algorithm's model evaluations: one for the clean
image plus one per candidate up to and including the successful one.
"""

from __future__ import annotations

import time
from typing import Literal, Sequence

import torch
from torch import nn
from tqdm.auto import tqdm

from helpers.attacks.base import Attack, AttackResult, check_choice, check_int, check_patch_dims, counter_uniform
from helpers.evaluation.metrics import l0_pixels

PixelMapping = Literal["random", "similarity", "similarity_random", "distance", "distance_random"]
MAPPINGS: tuple[str, ...] = ("random", "similarity", "similarity_random", "distance", "distance_random")


def patch_bounds(dims: Sequence[int | float], size: int) -> tuple[int, int]:
    """Pixle's (smallest, largest) patch side in pixels along an axis of ``size`` pixels, from integer pixels or
    fractions of the side (its ``x_dimensions`` / ``y_dimensions``)."""
    lo, hi = (max(1, d if isinstance(d, int) else round(size * d)) for d in dims)
    return int(lo), int(hi)


def patch_dims(dims: Sequence[int | float] | int | float) -> list[int | float]:
    """A patch side as (min, max): one number means min = max."""
    return [dims] * 2 if isinstance(dims, (int, float)) else list(dims)


def check_search(owner: str, restarts: int, max_iterations: int, pixel_mapping: str, block: int | None,
                 **dims: Sequence[int | float]) -> None:
    """Pixle's search settings, checked for Pixle and for StftPixle (which names its patch sides ``dims``)."""
    check_int(owner, "restarts", restarts, 0)
    check_int(owner, "max_iterations", max_iterations, 0)
    check_choice(owner, "pixel_mapping", pixel_mapping, MAPPINGS)
    for name, d in dims.items():
        check_patch_dims(owner, name, d)
    if block is not None:
        check_int(owner, "block", block, 1)


def default_target_batch(device: torch.device | str) -> int:
    """Candidates per forward pass when none is given: 64 on a CPU, 4096 on a GPU."""
    return 4096 if torch.device(device).type == "cuda" else 64


def first_success(p: torch.Tensor, succ: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """A block of ``k`` candidates per item scored in order, (n, k) losses ``p`` and successes ``succ``:
    (any success, index of the first success (else ``k - 1``: all were queried), lowest loss among the
    candidates queried up to it, its index). Early exit in candidate order, as one query at a time would stop.
    """
    k = p.shape[1]
    any_s = succ.any(1)
    first = torch.where(any_s, succ.float().argmax(1), torch.full_like(any_s, k - 1, dtype=torch.long))
    evaluated = torch.arange(k, device=p.device)[None, :] <= first[:, None]
    minp, argk = torch.where(evaluated, p, torch.full_like(p, float("inf"))).min(1)
    return any_s, first, minp, argk


class Pixle(Attack):
    """Batched Pixle. Call it like torchattacks: ``Pixle(model, ...)(images, labels)`` -> :class:`AttackResult`
    (the contract of :class:`helpers.attacks.base.Attack`: eval mode, parameter and input checks).

    Arguments follow ``torchattacks.Pixle``; in addition:

    - ``block``: candidates scored per image per forward pass. ``None`` adapts it so each forward
      holds about ``target_batch`` images. ``target_batch=None`` picks 64 on a CPU, where the per-image forward
      cost is lowest near batch 64 and small blocks keep early exit cheap, and 4096 on a GPU, where
      a large batch scores a whole restart at once (measured: ``benchmarks/throughput.py``).
    - ``seed``: the attack's own random stream; ``ids`` in the call identify images across batches.
    - ``skip_misclassified``: images the model already gets wrong are returned unchanged (one query).
    - ``amp``: bfloat16 autocast for the forward passes. Faster on a GPU; on a CPU without
      bfloat16 instructions it is slower and only useful to measure the tolerance
      (``benchmarks/amp_tolerance.py``).
    """

    def __init__(self, model: nn.Module, x_dimensions=(2, 10), y_dimensions=(2, 10),
                 pixel_mapping: PixelMapping = "random", restarts: int = 20, max_iterations: int = 10,
                 update_each_iteration: bool = False, block: int | None = None, target_batch: int | None = None,
                 seed: int = 0, skip_misclassified: bool = False, amp: bool = False,
                 channels_last: bool = True, progress: bool = False):
        super().__init__(model, seed, skip_misclassified, progress)
        self.x_dimensions, self.y_dimensions = patch_dims(x_dimensions), patch_dims(y_dimensions)
        self.pixel_mapping = pixel_mapping.lower() if isinstance(pixel_mapping, str) else pixel_mapping
        self.restarts, self.max_iterations = restarts, max_iterations
        self.update_each_iteration = update_each_iteration
        self.block, self.target_batch = block, None if target_batch is None else max(1, target_batch)
        self.amp, self.channels_last = amp, channels_last
        self.stats = {"forward_s": 0.0, "total_s": 0.0, "evaluations": 0}   # where the time goes
        self._check_params()

    def _check_params(self) -> None:
        check_search(self.name, self.restarts, self.max_iterations, self.pixel_mapping, self.block,
                     x_dimensions=self.x_dimensions, y_dimensions=self.y_dimensions)

    # ------------------------------------------------------------------ scoring
    def _probs(self, x: torch.Tensor) -> torch.Tensor:
        t0 = time.perf_counter()
        try:
            return self._forward_probs(x)
        finally:
            if x.device.type == "cuda":
                torch.cuda.synchronize(x.device)
            self.stats["forward_s"] += time.perf_counter() - t0
            self.stats["evaluations"] += x.shape[0]

    def _forward_probs(self, x: torch.Tensor) -> torch.Tensor:
        if self.channels_last and x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.inference_mode():
            if self.amp:
                with torch.autocast(x.device.type, dtype=torch.bfloat16):
                    logits = self.model(x)
            else:
                logits = self.model(x)
            return torch.softmax(logits.float(), dim=1)

    def _score(self, probs: torch.Tensor, labels: torch.Tensor, targeted: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """(loss to minimise, success) for probs (..., classes) and labels broadcastable to (...)."""
        p = probs.gather(-1, labels.unsqueeze(-1)).squeeze(-1)
        pred = probs.argmax(-1)
        if targeted:
            return 1 - p, pred == labels
        return p, pred != labels

    # ------------------------------------------------------------------ candidates
    def _slots(self, h: int, w: int) -> tuple[tuple[int, int], tuple[int, int], int]:
        xb, yb = patch_bounds(self.x_dimensions, w), patch_bounds(self.y_dimensions, h)
        return xb, yb, xb[1] * yb[1]

    def candidates(self, x0: torch.Tensor, base: torch.Tensor, ids: torch.Tensor, restart: int,
                   it_start: int, k: int) -> torch.Tensor:
        """``k`` consecutive candidates per image: (n, k, C, H, W). Pure function of its arguments."""
        n, c, h, w = x0.shape
        dev = x0.device
        (xlo, xhi), (ylo, yhi), pmax = self._slots(h, w)
        s_total = 4 + 2 * pmax
        its = torch.arange(it_start, it_start + k, device=dev)
        ctr = ((ids.to(dev).long()[:, None] * max(self.restarts, 1) + restart) * max(self.max_iterations, 1)
               + its[None, :]) * s_total
        u = counter_uniform(self.seed, ctr[..., None] + torch.arange(s_total, device=dev))  # (n, k, S)
        px = (u[..., 0] * (w - 1)).long()
        py = (u[..., 1] * (h - 1)).long()
        xo = torch.minimum(xlo + (u[..., 2] * (xhi - xlo + 1)).long(), w - px)
        yo = torch.minimum(ylo + (u[..., 3] * (yhi - ylo + 1)).long(), h - py)
        slot = torch.arange(pmax, device=dev)
        valid = slot < (xo * yo)[..., None]                                   # (n, k, P)
        xo_safe = xo.clamp_min(1)[..., None]
        src_r = (py[..., None] + slot // xo_safe).clamp_max(h - 1)
        src_c = (px[..., None] + slot % xo_safe).clamp_max(w - 1)
        src_flat = src_r * w + src_c                                          # (n, k, P)
        x0f = x0.reshape(n, c, h * w)
        vals = x0f.gather(2, src_flat.reshape(n, 1, -1).expand(n, c, -1)).reshape(n, c, k, pmax)
        vals = vals.permute(0, 2, 1, 3)                                       # (n, k, C, P)
        ud = u[..., 4:].reshape(n, k, pmax, 2)
        if self.pixel_mapping == "random":
            dst = (ud[..., 0] * (h - 1)).long() * w + (ud[..., 1] * (w - 1)).long()
        else:
            dst = self._mapped_destinations(base, vals, src_flat, ud[..., 0])
        # last write wins among duplicated destinations; invalid slots go to a dummy column
        dst = torch.where(valid, dst, torch.full_like(dst, h * w))
        later_same = (dst[..., :, None] == dst[..., None, :]) & torch.triu(
            torch.ones(pmax, pmax, dtype=torch.bool, device=dev), diagonal=1)
        dst = torch.where(later_same.any(-1), torch.full_like(dst, h * w), dst)
        out = torch.cat([base.reshape(n, 1, c, h * w).expand(n, k, c, h * w),
                         torch.zeros(n, k, c, 1, device=dev, dtype=base.dtype)], dim=3).clone()
        out.scatter_(3, dst[:, :, None, :].expand(n, k, c, pmax), vals.to(out.dtype))
        return out[..., : h * w].reshape(n, k, c, h, w)

    def _mapped_destinations(self, base: torch.Tensor, vals: torch.Tensor, src_flat: torch.Tensor,
                             u: torch.Tensor) -> torch.Tensor:
        """Similarity / distance mappings: softmax over all destination pixels of a score."""
        n, c, h, w = base.shape
        basef = base.reshape(n, 1, 1, c, h * w)
        out = []
        for j in range(vals.shape[1]):  # one candidate slot at a time keeps memory at n*P*C*HW
            diff = (basef[:, 0] - vals[:, j, :, :].permute(0, 2, 1)[..., None]).abs().mean(2)  # (n, P, HW)
            if "similarity" in self.pixel_mapping:
                diff = 1 / (1 + diff)
                diff = torch.where(diff == 1, torch.zeros_like(diff), diff)
            probs = torch.softmax(diff, dim=-1)
            own = torch.nn.functional.one_hot(src_flat[:, j], h * w).bool()
            if "random" in self.pixel_mapping:
                probs = probs.masked_fill(own, 0)
                cdf = probs.cumsum(-1)
                r = u[:, j, :, None] * cdf[..., -1:]
                idx = torch.searchsorted(cdf.contiguous(), r.contiguous()).squeeze(-1).clamp_max(h * w - 1)
            else:
                idx = probs.masked_fill(own, -1.0).argmax(-1)
            out.append(idx)
        return torch.stack(out, dim=1)

    # ------------------------------------------------------------------ attack
    def generate(self, x: torch.Tensor, labels: torch.Tensor, ids: torch.Tensor | None = None,
                 target_labels: torch.Tensor | None = None) -> AttackResult:
        """Attack images ``x`` (B, C, H, W) in [0, 1]; with ``target_labels`` the attack is targeted."""
        t_start = time.perf_counter()
        try:
            return super().generate(x, labels, ids, target_labels=target_labels)
        finally:
            self.stats["total_s"] += time.perf_counter() - t_start

    def _generate(self, x0: torch.Tensor, labels: torch.Tensor, ids: torch.Tensor,
                  target_labels: torch.Tensor | None = None) -> AttackResult:
        dev = x0.device
        b = x0.shape[0]
        targeted = target_labels is not None
        lab = target_labels.to(dev).long() if targeted else labels

        p0, s0 = self._score(self._probs(x0), lab, targeted)
        best_p = p0.clone()
        queries = torch.ones(b, dtype=torch.long, device=dev)
        forwards = queries.clone()
        success, done = self._start(s0)
        base = x0.clone()             # restart mode: the image candidates are built on
        best_sol = x0.clone()         # torchattacks' best_solution
        have_best = torch.zeros(b, dtype=torch.bool, device=dev)
        last = x0.clone()
        restarts = 1 if self.update_each_iteration else self.restarts
        target = self.target_batch or default_target_batch(dev)
        bar = tqdm(total=restarts * self.max_iterations, desc="Pixle", leave=False, disable=not self.progress)
        for r in range(restarts):
            it = 0
            while it < self.max_iterations and not bool(done.all()):
                act = (~done).nonzero().squeeze(1)
                k = 1 if self.update_each_iteration else (self.block or max(1, target // len(act)))
                k = min(k, self.max_iterations - it)
                cand = self.candidates(x0[act], base[act], ids[act], r, it, k)   # (n, k, C, H, W)
                n = cand.shape[0]
                probs = self._probs(cand.reshape(n * k, *cand.shape[2:])).reshape(n, k, -1)
                p, succ = self._score(probs, lab[act, None].expand(n, k), targeted)
                forwards[act] += k
                any_s, first, minp, argk = first_success(p, succ)
                queries[act] += first + 1
                improve = minp < best_p[act]
                rows = torch.arange(n, device=dev)
                # successful images: the successful candidate is the answer
                win = cand[rows, first]
                s_idx = act[any_s]
                best_sol[s_idx] = win[any_s]
                base[s_idx] = win[any_s]
                success[s_idx] = True
                done[s_idx] = True
                best_p[act] = torch.where(improve, minp, best_p[act])
                best_p[s_idx] = p[rows, first][any_s]
                # the others keep their best candidate so far, and the last one tried
                keep = ~any_s
                upd = keep & improve
                best_sol[act[upd]] = cand[rows, argk][upd]
                have_best[act[upd]] = True
                last[act[keep]] = cand[rows, first][keep]
                if self.update_each_iteration:
                    base[act[upd]] = best_sol[act[upd]]
                it += k
                bar.update(k)
            if not self.update_each_iteration:
                cont = ~done
                base[cont] = torch.where(have_best[cont, None, None, None], best_sol[cont], last[cont])
        bar.close()
        adv = base.clamp(0, 1)
        return AttackResult(adv=adv, success=success, queries=queries, forwards=forwards,
                            l0=l0_pixels(x0, adv), final_prob=best_p)
