"""Certified robustness to L0 attacks: randomized ablation and its derandomized column and block variants.

Certified defenses of a detector, one per threat model:

- **Randomized ablation** (Levine & Feizi, "Robustness certificates for sparse adversarial attacks by
  randomized ablation", AAAI 2020). The base detector sees an image in which only ``k`` of the ``d = H*W``
  pixels, chosen uniformly at random, are kept; every other pixel is replaced by a *null* value the network can
  tell from real ones (all channels 0 and an extra channel that is 1 exactly on kept pixels). The smoothed
  detector predicts the class the base detector returns most often over random ablations. If an attacker
  changes ``rho`` pixels, an ablation misses all of them with probability ``C(d-rho, k) / C(d, k)``, so the
  top class's probability drops by at most ``Delta(rho) = 1 - C(d-rho, k)/C(d, k)``; the prediction cannot
  change while ``p_lower - Delta(rho) > 0.5`` (two classes; the paper's Theorem 1 with its Clopper-Pearson
  lower bound ``p_lower``). **Threat covered: any ``rho`` pixels changed arbitrarily** (a pixel = one (h, w)
  location, all its channels, as Pixle and Sparse-RS count L0) -- Pixle's whole perturbation, wherever its
  patches land, is covered when its L0 is at most the radius.
- **Column smoothing** (Levine & Feizi, "(De)randomized smoothing for certifiable defense against patch
  attacks", NeurIPS 2020). The base detector sees one band of ``s`` adjacent columns (cyclic), every band
  position once: ``W`` deterministic evaluations, no sampling, no confidence level. A patch ``m`` columns
  wide intersects at most ``m + s - 1`` bands, so it moves at most that many votes; the prediction is certified
  when the top count beats every other count (plus one where ties break against the top class) by ``2(m+s-1)``.
  **Threat covered: any perturbation confined to ``m`` adjacent columns** (one patch of width ``m``, any
  height). Pixle copies a patch but, with its default ``random`` mapping, writes its pixels to random
  destinations; its perturbation is then spread over many columns and the column certificate covers it only
  when the bands those columns touch number at most ``Delta`` (:func:`bands_touched` measures it per image).
- **Block smoothing** (the same paper's 2-D variant). The base detector sees one ``b`` x ``b`` square (cyclic in
  both axes), every one of the ``H*W`` positions once. A patch of ``m_h`` x ``m_w`` pixels meets at most
  ``(m_h + b - 1)(m_w + b - 1)`` positions (:func:`blocks_per_patch`), with the same vote-margin condition.
  A ``stride`` keeps every ``t``-th offset along each axis (``H*W/t^2`` evaluations, at most
  ``ceil((m+b-1)/t)`` offsets met per axis): cheaper, with a coarser vote.
  **Threat covered: any perturbation confined to one ``m_h`` x ``m_w`` rectangle** -- one of Pixle's patches,
  bounded in height as well as width, at ``H*W`` evaluations per prediction instead of ``W``.

One documented function per step, so each can be tested against hand-computed cases
(``tests/test_certified.py``). Randomness comes from :func:`helpers.attacks.base.counter_uniform` keyed by
(seed, sample, pixel): a seeded smoothed prediction is the same for any batch size and device.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Callable

import torch
from torch import nn

from helpers.attacks.base import counter_uniform
from helpers.models.detectors import eval_mode

ABSTAIN = -1


# --------------------------------------------------------------------------- ablation (the base detector's input)

def keep_masks(n: int, h: int, w: int, k: int, seed: int, offset: int = 0,
               device: torch.device | str = "cpu") -> torch.Tensor:
    """``n`` uniformly random sets of exactly ``k`` of the ``h*w`` pixel locations, as (n, h, w) bools.

    Sample ``i`` is keyed by ``(seed, offset + i)``: a pure function of its arguments (the k smallest of d
    counter-based uniforms is a uniform k-subset).
    """
    d = h * w
    if not 0 < k <= d:
        raise ValueError(f"k={k} must be in 1..{d} (pixels of a {h}x{w} image)")
    ctr = (torch.arange(offset, offset + n, device=device, dtype=torch.long)[:, None] * d
           + torch.arange(d, device=device, dtype=torch.long))
    keys = counter_uniform(seed, ctr)
    idx = keys.topk(k, dim=1, largest=False).indices
    return torch.zeros(n, d, dtype=torch.bool, device=device).scatter_(1, idx, True).reshape(n, h, w)


def apply_mask(x: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """The null encoding: (B, C, H, W) images and (B, H, W) keep masks -> (B, C+1, H, W).

    Kept pixels keep their values and get 1 in the extra channel; ablated pixels are 0 in every channel,
    so "ablated" (mask 0) is distinguishable from a real black pixel (mask 1).
    """
    m = keep.to(x.dtype).unsqueeze(1)
    return torch.cat([x * m, m], dim=1)


def ablate(x: torch.Tensor, k: int, seed: int, offset: int = 0) -> torch.Tensor:
    """Each image of ``x`` (B, C, H, W) with its own random ``k`` kept pixels (sample ``offset + i``)."""
    b, _, h, w = x.shape
    return apply_mask(x, keep_masks(b, h, w, k, seed, offset, x.device))


def masked_logits(model: nn.Module, x: torch.Tensor, masks: torch.Tensor, batch: int = 256) -> torch.Tensor:
    """The base detector's logits (B, M, classes) on every image of ``x`` under every keep mask of ``masks`` (M, H, W),
    in forward passes of at most ``batch`` ablated images (image-major), whatever ``M`` is."""
    b, m = len(x), len(masks)
    flat_img = torch.arange(b, device=x.device).repeat_interleave(m)
    flat_mask = torch.arange(m, device=x.device).repeat(b)
    outs = []
    for i in range(0, b * m, batch):
        xi, mi = flat_img[i:i + batch], flat_mask[i:i + batch]
        outs.append(model(apply_mask(x[xi], masks[mi]).contiguous(memory_format=torch.channels_last)).float())
    logits = torch.cat(outs) if outs else torch.zeros(0, 2, device=x.device)
    return logits.reshape(b, m, -1)


def ablation_transform(k: int) -> Callable[[torch.Tensor, torch.Generator], torch.Tensor]:
    """Training-time transform ``(x, generator) -> ablated x`` for :func:`helpers.models.training.train`'s
    ``transform`` hook: each image keeps its own ``k`` random pixels, drawn from the batch's seeded generator."""
    def transform(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        b, _, h, w = x.shape
        idx = torch.rand(b, h * w, generator=g).topk(k, dim=1, largest=False).indices
        keep = torch.zeros(b, h * w, dtype=torch.bool).scatter_(1, idx, True).reshape(b, h, w)
        return apply_mask(x, keep.to(x.device))

    return transform


def _windows(n: int, starts: torch.Tensor, size: int) -> torch.Tensor:
    """(P, n) bool: for each start, the ``size`` consecutive indices of ``0..n-1`` from it, wrapping around."""
    return (torch.arange(n, device=starts.device)[None, :] - starts[:, None]) % n < size


def block_mask(h: int, w: int, top: int, left: int, bh: int, bw: int,
               device: torch.device | str = "cpu") -> torch.Tensor:
    """(h, w) bool: the ``bh`` x ``bw`` block whose top-left pixel is (``top``, ``left``), wrapping around both edges."""
    rows = _windows(h, torch.tensor([top], device=device), bh)[0]
    cols = _windows(w, torch.tensor([left], device=device), bw)[0]
    return rows[:, None] & cols[None, :]


def block_positions(h: int, w: int, bh: int, bw: int, stride: int = 1) -> list[tuple[int, int]]:
    """Every position of a cyclic ``bh`` x ``bw`` block in an ``h`` x ``w`` image, every ``stride`` pixels: ``h /
    stride`` row offsets unless the block spans every row (then one), likewise for columns. A column band
    (``bh = h``, stride 1) has ``w`` positions; ``stride`` must divide each side the block does not span, so the
    offsets stay evenly spaced around the wrap (what :func:`blocks_per_patch` counts on)."""
    for side, b in ((h, bh), (w, bw)):
        if b < side and side % stride:
            raise ValueError(f"stride {stride} must divide the image side {side} (block {bh}x{bw} in {h}x{w})")
    return [(t, l) for t in (range(0, h, stride) if bh < h else (0,)) for l in (range(0, w, stride) if bw < w else (0,))]


def block_masks(h: int, w: int, bh: int, bw: int, device: torch.device | str = "cpu", stride: int = 1) -> torch.Tensor:
    """(P, h, w) bools: the block at each of :func:`block_positions` (the deterministic "ablations" of derandomized
    smoothing, one vote each)."""
    tops, lefts = torch.tensor(block_positions(h, w, bh, bw, stride), device=device).T
    return _windows(h, tops, bh)[:, :, None] & _windows(w, lefts, bw)[:, None, :]


def block_shape(h: int, w: int, band: int | None = None, block: int | None = None) -> tuple[int, int]:
    """The kept region's (rows, columns) for one of the two variants: a column band of ``band`` columns (all rows), or
    a ``block`` x ``block`` square (both clipped to the image)."""
    if (band is None) == (block is None):
        raise ValueError("give exactly one of band (columns) or block (square side)")
    return (h, min(band, w)) if band is not None else (min(block, h), min(block, w))


def column_mask(h: int, w: int, start: int, s: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """(h, w) bool: the band of ``s`` columns starting at ``start``, wrapping around the right edge."""
    return block_mask(h, w, 0, start, h, s, device)


def block_transform(band: int | None = None, block: int | None = None,
                    stride: int = 1) -> Callable[[torch.Tensor, torch.Generator], torch.Tensor]:
    """Training-time transform for derandomized smoothing (the ``transform`` hook): each image keeps one band of
    ``band`` columns, or one ``block`` x ``block`` square, at a position drawn uniformly from
    :func:`block_positions` (every ``stride`` pixels) with the batch's seeded generator."""
    masks_of: dict[tuple[int, int], torch.Tensor] = {}     # per image size: built once, not every batch

    def transform(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        b, _, h, w = x.shape
        if (h, w) not in masks_of:
            masks_of[h, w] = block_masks(h, w, *block_shape(h, w, band, block), stride=stride)
        masks = masks_of[h, w]
        pick = torch.randint(0, len(masks), (b,), generator=g)
        return apply_mask(x, masks[pick].to(x.device))

    return transform


def column_transform(s: int) -> Callable[[torch.Tensor, torch.Generator], torch.Tensor]:
    """Training-time transform for column smoothing: each image keeps one band of ``s`` columns at a random start."""
    return block_transform(band=s)


# --------------------------------------------------------------------------- randomized ablation: the certificate

@lru_cache(maxsize=None)
def ablation_delta(d: int, k: int, rho: int) -> float:
    """``Delta = 1 - C(d-rho, k) / C(d, k)``: the probability that ``k`` kept pixels of ``d`` include at least one
    of ``rho`` given ones (Levine & Feizi 2020, Theorem 1). Exact rational arithmetic, then float."""
    if not (0 <= rho <= d and 0 < k <= d):
        raise ValueError(f"need 0 <= rho <= d and 0 < k <= d (d={d}, k={k}, rho={rho})")
    if rho > d - k:
        return 1.0
    num = math.comb(d - rho, k)
    den = math.comb(d, k)
    return 1.0 - num / den    # int / int is correctly rounded in Python, however large


def clopper_pearson_lower(count: int, n: int, alpha: float = 0.05) -> float:
    """One-sided ``1 - alpha`` Clopper-Pearson lower bound of a binomial proportion (``count`` of ``n``):
    the ``alpha`` quantile of Beta(count, n - count + 1); 0 when count is 0. (Cohen et al. 2019's and Levine &
    Feizi's lower confidence bound.)"""
    from scipy.stats import beta

    if not 0 <= count <= n or n < 1:
        raise ValueError(f"need 0 <= count <= n and n >= 1 (count={count}, n={n})")
    return 0.0 if count == 0 else float(beta.ppf(alpha, count, n - count + 1))


def _certifies(p_lower: float, d: int, k: int, rho: int) -> bool:
    """Levine & Feizi's two-class condition: the top class keeps the majority after ``rho`` changed pixels."""
    return p_lower - ablation_delta(d, k, rho) > 0.5


def _last_true(ok: Callable[[int], bool], lo: int, hi: int) -> int:
    """The largest ``x`` in ``[lo, hi)`` with ``ok(x)``, for ``ok`` true at ``lo`` and monotone (true, then false)."""
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if ok(mid) else (lo, mid)
    return lo


def certified_radius(p_lower: float, d: int, k: int) -> int:
    """The largest ``rho`` with ``p_lower - Delta(rho) > 0.5`` (two classes), or ``ABSTAIN`` (-1) when even
    ``rho = 0`` fails (``p_lower <= 0.5``: the top class is not certified to be the majority).

    Radius 0 means: the prediction is certified for the clean input only. ``Delta`` grows with ``rho``, so the
    largest one is found by bisection (``Delta(d - k + 1) = 1`` always fails).
    """
    if p_lower <= 0.5:
        return ABSTAIN
    return _last_true(lambda rho: _certifies(p_lower, d, k, rho), 0, d - k + 1)


def max_certifiable_radius(n: int, alpha: float, d: int, k: int) -> int:
    """The ceiling ``n``, ``alpha`` and ``k`` put on any radius: :func:`certified_radius` of a unanimous vote (the
    Clopper-Pearson lower bound of ``n`` of ``n``). No detector, however good, certifies beyond it."""
    return certified_radius(clopper_pearson_lower(n, n, alpha), d, k)


def largest_k_for_radius(rho: int, n: int, alpha: float, d: int) -> int:
    """The most pixels an ablation may keep for a unanimous vote of ``n`` to certify radius ``rho``: the largest
    ``k`` with :func:`max_certifiable_radius` ``>= rho`` (0 when none, i.e. ``rho`` is out of reach at this ``n``).
    It turns a target L0 (Pixle's) into the share of the image a base detector would have to decide from.
    ``Delta(rho)`` grows with ``k``, so the answer is found by bisection on ``p_lower - Delta(rho) > 0.5``."""
    if not 0 <= rho <= d:
        raise ValueError(f"need 0 <= rho <= d (rho={rho}, d={d})")
    p = clopper_pearson_lower(n, n, alpha)          # a unanimous vote's lower bound
    ok = lambda k: _certifies(p, d, k, rho)         # noqa: E731
    return _last_true(ok, 1, d + 1) if ok(1) else 0   # k = d + 1 is out of range (treated as failing)


@torch.inference_mode()
def ablation_votes(model: nn.Module, x: torch.Tensor, k: int, n: int, seed: int, batch: int = 256,
                   num_classes: int = 2) -> torch.Tensor:
    """Class counts (B, classes) of the base detector over ``n`` seeded random ablations of each image.

    Sample ``j`` uses the same mask for every image (masks keyed by (seed, j)); each image's counts are then
    ``n`` i.i.d. draws of its own base prediction, which is all one clip's certificate needs.
    """
    b, _, h, w = x.shape
    dev = next(model.parameters()).device
    x = x.to(dev)
    counts = torch.zeros(b, num_classes, dtype=torch.long)
    per = max(1, batch // max(b, 1))          # ablations per chunk: masks are drawn a chunk at a time
    with eval_mode(model):
        for j in range(0, n, per):
            masks = keep_masks(min(per, n - j), h, w, k, seed, j, dev)             # (m, H, W)
            pred = masked_logits(model, x, masks, batch).argmax(2).cpu()
            counts += torch.nn.functional.one_hot(pred, num_classes).sum(1)
    return counts


@dataclass
class Certificate:
    """Per image: the smoothed prediction (``ABSTAIN`` = -1), the certified L0 radius (-1 when abstaining),
    the top class's lower bound, and the estimation counts it came from."""

    prediction: torch.Tensor    # (B,) long
    radius: torch.Tensor        # (B,) long
    p_lower: torch.Tensor       # (B,) float
    counts: torch.Tensor        # (B, classes) estimation counts
    selection: torch.Tensor     # (B, classes) selection counts


def certify_ablation(model: nn.Module, x: torch.Tensor, k: int, n0: int, n: int, alpha: float = 0.05,
                     seed: int = 0, batch: int = 256) -> Certificate:
    """Levine & Feizi's CERTIFY: pick the top class from ``n0`` ablations, bound its probability from ``n``
    *other* ablations (Clopper-Pearson, level ``1 - alpha``), and turn the bound into an L0 radius.

    Selection and estimation use disjoint seeds (``seed`` and ``seed + 1``), so the bound is valid for the
    class picked. Abstains (prediction and radius -1) where ``p_lower <= 0.5``.
    """
    _, _, h, w = x.shape
    d = h * w
    sel = ablation_votes(model, x, k, n0, seed, batch)
    est = ablation_votes(model, x, k, n, seed + 1, batch)
    top = sel.argmax(1)
    p_low = torch.tensor([clopper_pearson_lower(int(est[i, top[i]]), n, alpha) for i in range(len(x))])
    radius = torch.tensor([certified_radius(float(p), d, k) for p in p_low], dtype=torch.long)
    pred = torch.where(radius >= 0, top, torch.full_like(top, ABSTAIN))
    return Certificate(pred, radius, p_low, est, sel)


def smoothed_predict(model: nn.Module, x: torch.Tensor, k: int, n: int, seed: int = 0,
                     batch: int = 256) -> torch.Tensor:
    """The smoothed detector's majority vote over ``n`` seeded ablations (ties: the lower class index)."""
    return ablation_votes(model, x, k, n, seed, batch).argmax(1)


def vote_scores(base: nn.Module, x: torch.Tensor, masks: torch.Tensor, batch: int = 256) -> torch.Tensor:
    """What a smoothed detector shows an attacker: for each image, ``log`` of the base detector's vote shares over
    the fixed keep ``masks`` (M, H, W), plus 1e-3 x its mean softmax (breaks vote ties, and gives a random search
    a signal between vote changes). Shared by :class:`SmoothedScore` and :class:`BlockScore`."""
    probs = torch.softmax(masked_logits(base, x, masks.to(x.device), batch), 2)
    votes = torch.nn.functional.one_hot(probs.argmax(2), probs.shape[2]).float().mean(1)
    return torch.log(votes + 1e-3 * probs.mean(1) + 1e-6)


class SmoothedScore(nn.Module):
    """The smoothed detector as a model an attacker can query: logits = log of the vote shares over a *fixed*
    seeded set of ``n`` ablations (plus 1e-3 x the mean softmax, which only breaks exact vote ties and gives the
    random search a gradient-free signal between vote changes).

    Fixed masks make the attack's objective deterministic. Its argmax is the majority vote of those ``n``
    ablations, i.e. the deployed smoothed prediction as an attacker with ``n`` queries of the base detector per
    image sees it. Use a seed different from the certification's, so the attack cannot overfit the masks the
    certificate is computed with.
    """

    def __init__(self, base: nn.Module, k: int, n: int, seed: int, batch: int = 256):
        super().__init__()
        self.base, self.k, self.n, self.seed, self.batch = base, k, n, seed, batch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _, _, h, w = x.shape
        return vote_scores(self.base, x, keep_masks(self.n, h, w, self.k, self.seed, 0, x.device), self.batch)


# --------------------------------------------------------------------------- derandomized smoothing: the patch certificates

@torch.inference_mode()
def block_votes(model: nn.Module, x: torch.Tensor, band: int | None = None, block: int | None = None, batch: int = 256,
                num_classes: int = 2, stride: int = 1) -> torch.Tensor:
    """Class counts (B, classes) of the base detector over every position of a column band (``band`` columns) or a
    square ``block`` (:func:`block_positions`, every ``stride`` pixels; Levine & Feizi, NeurIPS 2020: one
    deterministic evaluation each)."""
    _, _, h, w = x.shape
    dev = next(model.parameters()).device
    x = x.to(dev)
    with eval_mode(model):
        masks = block_masks(h, w, *block_shape(h, w, band, block), dev, stride)
        pred = masked_logits(model, x, masks, batch).argmax(2).cpu()
    return torch.nn.functional.one_hot(pred, num_classes).sum(1)


def band_votes(model: nn.Module, x: torch.Tensor, s: int, batch: int = 256, num_classes: int = 2) -> torch.Tensor:
    """Class counts (B, classes) over all ``W`` cyclic bands of ``s`` columns (:func:`block_votes` with ``band=s``)."""
    return block_votes(model, x, band=s, batch=batch, num_classes=num_classes)


class BlockScore(nn.Module):
    """Derandomized smoothing as a model an attacker can query: logits = log of the vote shares over every position
    of a column band (``band``) or square ``block`` (:func:`block_votes`; deterministic), plus 1e-3 x the mean
    softmax, which only breaks vote ties and gives a random search a signal between vote changes. Its argmax is the
    smoothed prediction up to ties."""

    def __init__(self, base: nn.Module, band: int | None = None, block: int | None = None, batch: int = 256,
                 stride: int = 1):
        super().__init__()
        self.base, self.band, self.block, self.batch, self.stride = base, band, block, batch, stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _, _, h, w = x.shape
        masks = block_masks(h, w, *block_shape(h, w, self.band, self.block), x.device, self.stride)
        return vote_scores(self.base, x, masks, self.batch)


class ColumnScore(BlockScore):
    """Column smoothing as a model an attacker can query (:class:`BlockScore` with a band of ``s`` columns)."""

    def __init__(self, base: nn.Module, s: int, batch: int = 256):
        super().__init__(base, band=s, batch=batch)
        self.s = s


def blocks_per_patch(patch: tuple[int, int], shape: tuple[int, int], image: tuple[int, int], stride: int = 1) -> int:
    """``Delta``: the most block positions a ``patch`` (rows, columns) can meet, for blocks of ``shape`` (rows,
    columns) in an ``image`` (h, w), cyclic, every ``stride`` pixels. A block starting at row ``r`` meets the patch's
    rows iff ``r`` lies in a window of ``m_h + b_h - 1`` consecutive rows, which holds at most
    ``ceil((m_h + b_h - 1) / stride)`` offsets; likewise for columns. Each factor is capped by the number of
    positions along its axis (one where the block spans the axis); with stride 1: ``(m_h + b_h - 1)(m_w + b_w - 1)``."""
    (mh, mw), (bh, bw), (h, w) = patch, shape, image
    rows = 1 if bh >= h else min(h // stride, -(-(mh + bh - 1) // stride))
    cols = 1 if bw >= w else min(w // stride, -(-(mw + bw - 1) // stride))
    return rows * cols


def bands_per_patch(m: int, s: int, w: int) -> int:
    """``Delta = m + s - 1``: the most bands of width ``s`` (of ``w``, cyclic) a patch ``m`` columns wide meets."""
    return blocks_per_patch((1, m), (1, s), (1, w))


def column_certificate(counts: torch.Tensor, delta: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(prediction, certified) from band counts (B, classes): the top count, ties to the lower class index; certified
    iff ``n_c >= max_{c' != c} (n_c' + 1[c' < c]) + 2 * delta`` (Levine & Feizi 2020, Theorem 1: each of the
    ``delta`` affected bands can take one vote from ``c`` and give one to ``c'``; the indicator is the tie-break)."""
    counts = counts.long()
    pred = counts.argmax(1)          # torch.argmax returns the first maximum: ties go to the lower index
    c = torch.arange(counts.shape[1])[None, :]
    others = counts + (c < pred[:, None]).long()
    others = others.masked_fill(c == pred[:, None], -(10 ** 9))
    top = counts.gather(1, pred[:, None]).squeeze(1)
    return pred, top >= others.amax(1) + 2 * delta


def blocks_touched(x: torch.Tensor, x_adv: torch.Tensor, band: int | None = None, block: int | None = None,
                   stride: int = 1) -> torch.Tensor:
    """Per image, how many block positions (:func:`block_positions`) contain a changed pixel (any channel): the
    ``delta`` a derandomized certificate needs to cover this particular perturbation."""
    _, _, h, w = x.shape
    changed = (x != x_adv).any(1).flatten(1).float()                                   # (B, H*W)
    masks = block_masks(h, w, *block_shape(h, w, band, block), x.device, stride).flatten(1).float()   # (P, H*W)
    return (changed @ masks.T > 0).sum(1)


def bands_touched(x: torch.Tensor, x_adv: torch.Tensor, s: int) -> torch.Tensor:
    """Per image, how many of the ``W`` cyclic bands of width ``s`` contain a changed pixel (any channel, any row)."""
    return blocks_touched(x, x_adv, band=s)


__all__ = ["ABSTAIN", "keep_masks", "apply_mask", "ablate", "ablation_transform", "block_mask", "block_positions", "block_masks",
           "block_shape", "column_mask", "block_transform", "column_transform", "masked_logits", "BlockScore", "ColumnScore",
           "ablation_delta", "clopper_pearson_lower", "certified_radius", "max_certifiable_radius", "largest_k_for_radius",
           "ablation_votes", "Certificate",
           "certify_ablation", "smoothed_predict", "vote_scores", "SmoothedScore", "block_votes", "band_votes", "blocks_per_patch",
           "bands_per_patch", "column_certificate", "blocks_touched", "bands_touched"]
