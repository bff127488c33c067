"""Score-based black-box attacks whose every query is a waveform.

The image attacks (:mod:`helpers.attacks.pixle`, :mod:`helpers.attacks.sparse_rs`) perturb the 32x32 picture
the detector sees, which no attacker can hand to a deployed system: it receives audio. Here
the detector is wrapped with its feature extraction, :class:`AudioPipeline` (waveform batch ->
logits, the same features as :func:`helpers.data.features.extract`, computed in batch on the model's
device), and the attacks only ever query waveforms:

- :class:`StftPixle`: Pixle (Pomponi et al., IJCNN 2022) realised as audio. Patches of the
  clip's STFT *magnitude* are copied from the original to random time-frequency destinations
  exactly as Pixle rearranges image pixels (:meth:`helpers.attacks.pixle.Pixle.candidates` builds the
  candidates), and each candidate is resynthesised with the *original* phase by the inverse STFT.
- :class:`SquareAudio`: Square Attack's L-inf random search (Andriushchenko et al., "Square
  Attack: a query-efficient black-box adversarial attack via random search", ECCV 2020) in 1-D:
  windows of the waveform perturbation are set to +-eps, the window length decays with the
  query count as Square Attack's ``p`` schedule, the budget is an absolute eps or an SNR in dB.

Both attack a batch at once (one forward pass over all candidate waveforms), stop per clip at
the first success, and draw their randomness from :func:`helpers.attacks.base.counter_uniform` keyed
by (seed, clip id, step, slot): a clip's result does not depend on the batch it is in. The score
each returns (``final_score``, ``final_prob``) was recorded from the query of the returned
waveform itself, so re-scoring ``adv`` reproduces it. Both follow the contract of
:class:`helpers.attacks.base.Attack` and return its :class:`~helpers.attacks.base.AttackResult`;
:func:`attack_clips` runs one over clips of several lengths.
"""

from __future__ import annotations

from typing import ClassVar, Sequence

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from helpers.attacks.base import (LOSSES, Attack, AttackResult, LossName, check_choice, check_int, check_real,
                                  margin_and_loss, rescaled_schedule, step_uniform)
from helpers.attacks.pixle import PixelMapping, Pixle, check_search, default_target_batch, first_success, patch_dims
from helpers.data.features import FeatureConfig, hires_batch, viridis_lut
from helpers.evaluation.metrics import bonafide_score
from helpers.models.detectors import eval_mode

# --------------------------------------------------------------------------- batched features

_LUTS: dict[str, torch.Tensor] = {}


def _lut(device: torch.device) -> torch.Tensor:
    key = str(device)
    if key not in _LUTS:
        _LUTS[key] = viridis_lut().to(device)
    return _LUTS[key]


def power_spectrogram_batch(wav: torch.Tensor, cfg: FeatureConfig) -> torch.Tensor:
    """|STFT|^2 of each clip (B, T) -> (B, freq, time), as :func:`helpers.data.features.power_spectrogram`."""
    window = torch.hann_window(cfg.n_fft, device=wav.device)
    if wav.shape[-1] < cfg.n_fft:
        wav = F.pad(wav, (0, cfg.n_fft - wav.shape[-1]))
    spec = torch.stft(wav, cfg.n_fft, cfg.hop, window=window, return_complex=True, center=True)
    return spec.abs().pow(2)


def power_to_db_batch(power: torch.Tensor, amin: float = 1e-10, top_db: float = 80.0) -> torch.Tensor:
    """Per-clip :func:`helpers.data.features.power_to_db`: the ``top_db`` floor is below each clip's own peak."""
    db = 10.0 * torch.log10(power.clamp_min(amin))
    return torch.maximum(db, db.amax((-2, -1), keepdim=True) - top_db)


def features_batch(wav: torch.Tensor, cfg: FeatureConfig = FeatureConfig(),
                   mel: nn.Module | None = None) -> torch.Tensor:
    """The detector's input for a batch of equal-length clips: (B, T) -> (B, C, size, size) in [0, 1].

    Computes, per clip, what :func:`helpers.data.features.extract` computes (``thesis_rgb32``: power
    STFT, dB with the clip's own peak and ``top_db``, the clip's own min-max, low frequencies at
    the bottom, viridis with 256-level quantisation, antialiased bilinear resize; ``logspec``:
    the log-mel analogue), but for the whole batch at once on ``wav``'s device. ``mel`` is an
    optional prebuilt ``torchaudio.transforms.MelScale`` for ``logspec``.
    """
    if wav.dim() == 1:
        wav = wav[None]
    wav = wav.float()
    power = power_spectrogram_batch(wav, cfg)
    if cfg.name == "thesis_rgb32":
        db = power_to_db_batch(power, cfg.amin, cfg.top_db)
        lo, hi = db.amin((-2, -1), keepdim=True), db.amax((-2, -1), keepdim=True)
        span = hi - lo
        norm = torch.where(span > 0, (db - lo) / torch.where(span > 0, span, torch.ones_like(span)),
                           torch.zeros_like(db)).flip(-2)
        idx = (norm * 255).round().long().clamp(0, 255)
        rgb = _lut(wav.device)[idx].permute(0, 3, 1, 2)            # (B, 3, F, T)
        img = F.interpolate(rgb, size=(cfg.size, cfg.size), mode="bilinear", antialias=True, align_corners=False)
        return img.clamp(0, 1)
    if cfg.name == "logspec":
        if mel is None:
            mel = _mel_scale(cfg, wav.device)
        db = power_to_db_batch(mel(power), cfg.amin, cfg.top_db)
        img = ((db - db.amax((-2, -1), keepdim=True) + cfg.top_db) / cfg.top_db).flip(-2)
        img = F.interpolate(img[:, None], size=(cfg.size, cfg.size), mode="bilinear",
                            antialias=True, align_corners=False)
        return img.clamp(0, 1)
    if cfg.hires:                       # lfcc / loglin: already batched and differentiable
        return hires_batch(wav, cfg)
    raise ValueError(f"unknown feature {cfg.name!r}; choose 'thesis_rgb32', 'logspec', 'lfcc', 'lfcc_cmn' or 'loglin'")


def _mel_scale(cfg: FeatureConfig, device: torch.device | str) -> nn.Module:
    import torchaudio.transforms as T

    return T.MelScale(n_mels=cfg.n_mels, sample_rate=cfg.sample_rate, n_stft=cfg.n_fft // 2 + 1).to(device)


class AudioPipeline(nn.Module):
    """Waveforms (B, T) -> logits: batched features, an optional image preprocess, the detector.

    ``preprocess`` is an image-space module such as :class:`helpers.defenses.smoothing.GaussianBlur`, so an
    audio attack queries the defended system end to end. The rgb features are not
    differentiable through the colour lookup; the attacks here are black-box and need no gradient.
    """

    def __init__(self, model: nn.Module, cfg: FeatureConfig = FeatureConfig(),
                 preprocess: nn.Module | None = None):
        super().__init__()
        self.model, self.cfg, self.preprocess = model, cfg, preprocess
        self.mel = _mel_scale(cfg, "cpu") if cfg.name == "logspec" else None

    def features(self, wav: torch.Tensor) -> torch.Tensor:
        """The detector's input images for ``wav`` (B, T)."""
        return features_batch(wav, self.cfg, self.mel)

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        x = self.features(wav)
        if self.preprocess is not None:
            x = self.preprocess(x)
        return self.model(x)


# --------------------------------------------------------------------------- shared pieces

def snr_db(clean: torch.Tensor, adv: torch.Tensor) -> torch.Tensor:
    """Signal-to-noise ratio of the perturbation ``adv - clean`` in dB, per clip (last axis = time).

    ``10 log10(sum clean^2 / sum (adv - clean)^2)``; ``inf`` where nothing changed.
    """
    clean64, adv64 = clean.double(), adv.double()
    signal = clean64.pow(2).sum(-1)
    noise = (adv64 - clean64).pow(2).sum(-1)
    out = 10 * torch.log10(signal / noise.clamp_min(1e-300))
    return torch.where(noise > 0, out, torch.full_like(out, float("inf"))).float()


def by_length(waves: Sequence[torch.Tensor]) -> list[list[int]]:
    """Indices of ``waves`` grouped by clip length: a batch of waveforms must share one length (no padding: it
    would change the spectrogram image)."""
    groups: dict[int, list[int]] = {}
    for i, w in enumerate(waves):
        groups.setdefault(len(w), []).append(i)
    return list(groups.values())


def attack_clips(attack: Attack, waves: Sequence[torch.Tensor], labels: torch.Tensor,
                 ids: torch.Tensor) -> AttackResult:
    """``attack`` on clips of any lengths, one batch per length; one result over all clips, in their order
    (``adv`` a list of waveforms). ``ids`` key the randomness, so results depend neither on the grouping nor on
    which other clips are attacked."""
    parts = []
    for idx in by_length(waves):
        sel = torch.tensor(idx)
        parts.append((sel, attack(torch.stack([waves[i] for i in idx]), labels[sel], ids=ids[sel])))
    return AttackResult.gather(parts, len(waves))


def audio_logits(pipeline: nn.Module, waves: Sequence[torch.Tensor]) -> torch.Tensor:
    """(n, classes) logits of clips of any lengths, one batch per length, in eval mode."""
    out = torch.zeros(len(waves), 2)
    with eval_mode(pipeline), torch.inference_mode():
        for idx in by_length(waves):
            out[torch.tensor(idx)] = pipeline(torch.stack([waves[i] for i in idx])).float()
    return out


class AudioAttack(Attack):
    """The contract for waveform attacks: clips (B, T) in [-1, 1] as float32, and the audio result fields."""

    input_range: ClassVar[tuple[float, float]] = (-1.0, 1.0)
    input_dims: ClassVar[int] = 2
    input_name: ClassVar[str] = "waveforms (B, T) of float PCM"

    @property
    def pipeline(self) -> nn.Module:
        """What the attack queries: waveforms -> logits (an :class:`AudioPipeline`)."""
        return self.model

    def _inputs(self, x: torch.Tensor, labels: torch.Tensor,
                ids: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x, y, ids = super()._inputs(x, labels, ids)
        return x.float(), y, ids

    def _result(self, x0: torch.Tensor, adv: torch.Tensor, success: torch.Tensor, queries: torch.Tensor,
                logits: torch.Tensor, y: torch.Tensor, **extra: torch.Tensor) -> AttackResult:
        prob = torch.softmax(logits, 1).gather(1, y[:, None]).squeeze(1)
        return AttackResult(adv=adv, success=success, queries=queries, snr_db=snr_db(x0, adv),
                            linf=(adv - x0).abs().amax(-1), final_score=bonafide_score(logits), final_prob=prob,
                            **extra)


# --------------------------------------------------------------------------- STFT-magnitude Pixle

class StftPixle(AudioAttack):
    """Pixle on the STFT magnitude, every candidate resynthesised with the original phase.

    Each candidate copies a random patch of the clip's *original* STFT magnitude to random
    destination bins of the current magnitude, as :class:`helpers.attacks.pixle.Pixle` does with
    pixels (the same candidate generator, on the magnitude as a one-channel image of
    frequency bins x frames), and is turned back into audio as ``clean + istft((|S'| - |S|) *
    e^{i angle S})``, which equals ``istft(|S'| e^{i angle S})`` up to the STFT's reconstruction
    error (about 1e-7) and leaves samples outside the touched frames bit-identical. Restarts x
    iterations: candidates within a restart are built on the restart's starting magnitude; a
    candidate that lowers the true-class probability becomes the best; the next restart starts
    from the best so far (torchattacks' quirk of continuing from the last candidate of a restart
    without improvement is not kept, so the returned waveform is always the best one queried).
    Stops per clip at the first candidate (in order) that changes the prediction.

    - ``freq_dimensions`` / ``time_dimensions``: patch height in frequency bins and width in
      frames, as (min, max) integers or fractions of the bins / frames (Pixle's y/x dimensions).
    - ``n_fft``, ``hop``: the STFT the attack edits (default: the pipeline's ``cfg``, so the
      patches live on the grid the detector's spectrogram is computed on).
    - ``block`` / ``target_batch``: candidates per clip per forward pass, as in Pixle
      (default: about 64 waveforms per forward on a CPU, 512 on a GPU).
    - Queries: 1 (clean) + candidates until the stop, at most ``1 + restarts * max_iterations``.
    - The :class:`~helpers.attacks.base.AttackResult` also holds ``adv_mag``, the edited magnitude.
    """

    def __init__(self, pipeline: nn.Module, freq_dimensions: Sequence[int | float] | int | float = (0.02, 0.1),
                 time_dimensions: Sequence[int | float] | int | float = (0.02, 0.1),
                 pixel_mapping: PixelMapping = "random", restarts: int = 20, max_iterations: int = 10,
                 update_each_iteration: bool = False, block: int | None = None, target_batch: int | None = None,
                 n_fft: int | None = None, hop: int | None = None, seed: int = 0,
                 skip_misclassified: bool = False, progress: bool = False):
        super().__init__(pipeline, seed, skip_misclassified, progress)
        cfg = getattr(pipeline, "cfg", FeatureConfig())
        self.n_fft = n_fft or cfg.n_fft
        self.hop = hop or cfg.hop
        self.freq_dimensions, self.time_dimensions = patch_dims(freq_dimensions), patch_dims(time_dimensions)
        self.restarts, self.max_iterations, self.pixel_mapping = restarts, max_iterations, pixel_mapping
        self.update_each_iteration = update_each_iteration
        self.block, self.target_batch = block, target_batch
        self._check_params()
        # the candidate generator: Pixle's x is the image width (frames), y the height (frequency bins)
        self._pixle = Pixle(model=pipeline, x_dimensions=self.time_dimensions, y_dimensions=self.freq_dimensions,
                            pixel_mapping=pixel_mapping, restarts=restarts, max_iterations=max_iterations,
                            update_each_iteration=update_each_iteration, seed=seed)

    def _check_params(self) -> None:
        check_search(self.name, self.restarts, self.max_iterations, str(self.pixel_mapping).lower(), self.block,
                     freq_dimensions=self.freq_dimensions, time_dimensions=self.time_dimensions)
        check_int(self.name, "n_fft", self.n_fft, 2)
        check_int(self.name, "hop", self.hop, 1, self.n_fft)

    def _window(self, device: torch.device) -> torch.Tensor:
        return torch.hann_window(self.n_fft, device=device)

    def stft(self, wav: torch.Tensor) -> torch.Tensor:
        """Complex STFT (B, bins, frames) of ``wav`` (B, T), Hann window, centred."""
        return torch.stft(wav, self.n_fft, self.hop, window=self._window(wav.device), return_complex=True,
                          center=True)

    def istft(self, spec: torch.Tensor, length: int) -> torch.Tensor:
        """Inverse of :meth:`stft` (overlap-add), ``length`` samples."""
        return torch.istft(spec, self.n_fft, self.hop, window=self._window(spec.device), center=True,
                           length=length)

    def synthesise(self, x0: torch.Tensor, mag0: torch.Tensor, phase0: torch.Tensor,
                   mag: torch.Tensor) -> torch.Tensor:
        """Waveforms for magnitudes ``mag`` (n, bins, frames) with the original phase: clean + istft(delta)."""
        delta = self.istft((mag - mag0) * phase0, x0.shape[-1])
        return (x0 + delta).clamp(-1, 1)

    def _generate(self, x0: torch.Tensor, y: torch.Tensor, ids: torch.Tensor) -> AttackResult:
        dev = x0.device
        b, t = x0.shape
        if t < self.n_fft:
            raise ValueError(f"clips of {t} samples are shorter than n_fft={self.n_fft}; pad them first")
        spec0 = self.stft(x0)
        mag0 = spec0.abs()
        phase0 = torch.polar(torch.ones_like(mag0), spec0.angle())

        logits0 = self._logits(x0)
        best_logits = logits0.clone()
        best_p = torch.softmax(logits0, 1).gather(1, y[:, None]).squeeze(1)
        success, done = self._start(logits0.argmax(1) != y)
        queries = torch.ones(b, dtype=torch.long, device=dev)
        best_wav, best_mag, base = x0.clone(), mag0.clone(), mag0.clone()

        restarts = 1 if self.update_each_iteration else self.restarts
        target = self.target_batch or min(default_target_batch(dev), 512)
        bar = tqdm(total=restarts * self.max_iterations, desc="STFT-Pixle", leave=False, disable=not self.progress)
        for r in range(restarts):
            it = 0
            while it < self.max_iterations and not bool(done.all()):
                act = (~done).nonzero().squeeze(1)
                n = len(act)
                k = 1 if self.update_each_iteration else (self.block or max(1, target // n))
                k = min(k, self.max_iterations - it)
                cand = self._pixle.candidates(mag0[act, None], base[act, None], ids[act], r, it, k)[:, :, 0]
                rep = act.repeat_interleave(k)
                wavs = self.synthesise(x0[rep], mag0[rep], phase0[rep], cand.reshape(n * k, *mag0.shape[1:]))
                logits = self._logits(wavs)
                p = torch.softmax(logits, 1).gather(1, y[rep, None]).squeeze(1).reshape(n, k)
                succ = (logits.argmax(1) != y[rep]).reshape(n, k)
                any_s, first, minp, argk = first_success(p, succ)
                queries[act] += first + 1
                pick = torch.where(any_s, first, argk)
                take = any_s | (minp < best_p[act])
                rows = torch.arange(n, device=dev)
                flat = rows * k + pick
                upd = act[take]
                best_mag[upd] = cand[rows, pick][take]
                best_wav[upd] = wavs[flat][take]
                best_logits[upd] = logits[flat][take]
                best_p[upd] = p[rows, pick][take]
                success[act[any_s]] = True
                done[act[any_s]] = True
                if self.update_each_iteration:
                    base[upd] = best_mag[upd]
                it += k
                bar.update(k)
            if not self.update_each_iteration:
                base[~done] = best_mag[~done]
        bar.close()
        return self._result(x0, best_wav, success, queries, best_logits, y, adv_mag=best_mag)


# --------------------------------------------------------------------------- Square Attack in 1-D

def square_p_schedule(p_init: float, it: int, n_queries: int) -> float:
    """Square Attack's piecewise-constant schedule for ``p``, rescaled to a 10 000-query budget.

    ``p_init`` halves at iterations 10, 50, 200, 500, 1000, 2000, 4000, 6000, 8000 (of 10 000).
    """
    return rescaled_schedule(p_init, it, n_queries, ((10, 1), (50, 2), (200, 4), (500, 8), (1000, 16), (2000, 32),
                                                     (4000, 64), (6000, 128), (8000, 256)), 512)


class SquareAudio(AudioAttack):
    """Square Attack (L-inf, untargeted, margin loss) on the waveform, adapted to 1-D.

    Start: every sample of the perturbation is +-eps with a random sign (the 1-D counterpart of
    Square Attack's vertical stripes). Each iteration draws one window of ``round(p * T)``
    samples, ``p`` following Square Attack's schedule from ``p_init``, at a random position, and
    sets the perturbation there to +-eps with one random sign (flipped if that would leave the
    window unchanged, as Square Attack resamples). The candidate ``clip(clean + delta, -1, 1)``
    is kept if the margin (true logit minus the other's) decreases or the clip is misclassified;
    a clip stops at its first success. ``|adv - clean| <= eps`` always.

    Budget: ``eps`` (absolute, in [-1, 1] full scale) or ``snr_db``: then each clip gets
    ``eps = rms(clip) * 10^(-snr_db / 20)``, so the perturbation's SNR is at least ``snr_db``
    (equal when every sample sits at +-eps and nothing is clipped).
    Queries: 1 (clean) + 1 (start) + iterations, at most ``n_queries + 1``.
    """

    def __init__(self, pipeline: nn.Module, eps: float | None = None, snr_db: float | None = None,
                 n_queries: int = 1000, p_init: float = 0.05, loss: LossName = "margin",
                 seed: int = 0, skip_misclassified: bool = False, progress: bool = False):
        super().__init__(pipeline, seed, skip_misclassified, progress)
        self.eps, self.snr_db = eps, snr_db
        self.n_queries, self.p_init, self.loss = n_queries, p_init, loss
        self._check_params()

    def _check_params(self) -> None:
        if (self.eps is None) == (self.snr_db is None):
            raise ValueError(f"{self.name}: give exactly one of eps (absolute L-inf budget, in (0, 2]) or snr_db "
                             "(SNR target in dB, in [-100, 200])")
        if self.eps is not None:
            check_real(self.name, "eps", self.eps, 0, 2, lo_open=True)   # waveforms in [-1, 1]
        else:
            check_real(self.name, "snr_db", self.snr_db, -100, 200)
        check_int(self.name, "n_queries", self.n_queries, 1)
        check_real(self.name, "p_init", self.p_init, 0, 1, lo_open=True)
        check_choice(self.name, "loss", self.loss, LOSSES)

    def budget(self, wav: torch.Tensor) -> torch.Tensor:
        """Per-clip L-inf budget eps (B,) for clips ``wav`` (B, T)."""
        if self.eps is not None:
            return torch.full((wav.shape[0],), float(self.eps), device=wav.device)
        rms = wav.double().pow(2).mean(-1).sqrt()
        return (rms * 10 ** (-self.snr_db / 20)).float()

    def _uniform(self, ids: torch.Tensor, it: int, width: int, stride: int) -> torch.Tensor:
        return step_uniform(self.seed, ids, it, self.n_queries + 1, stride, width)

    def _objective(self, logits: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        _, loss, fooled = margin_and_loss(logits, y, self.loss)
        return loss, fooled

    def _generate(self, x0: torch.Tensor, y: torch.Tensor, ids: torch.Tensor) -> AttackResult:
        dev = x0.device
        b, t = x0.shape
        eps = self.budget(x0)[:, None]                       # (B, 1)
        stride = max(t, 2)

        logits0 = self._logits(x0)
        best_logits = logits0.clone()
        best_loss, fooled = self._objective(logits0, y)
        success, done = self._start(fooled)
        queries = torch.ones(b, dtype=torch.long, device=dev)
        adv = x0.clone()
        pos = torch.arange(t, device=dev)

        bar = tqdm(total=self.n_queries, desc="Square-audio", leave=False, disable=not self.progress)
        for it in range(self.n_queries):
            act = (~done).nonzero().squeeze(1)
            if act.numel() == 0:
                break
            xa, ea = x0[act], eps[act]
            if it == 0:    # random +-eps on every sample
                sign = torch.where(self._uniform(ids[act], it, t, stride) < 0.5, -1.0, 1.0)
                cand = (xa + ea * sign).clamp(-1, 1)
            else:
                s = min(max(round(square_p_schedule(self.p_init, it, self.n_queries) * t), 1), t)
                u = self._uniform(ids[act], it, 2, stride)
                start = (u[:, 0] * (t - s + 1)).long().clamp_max(t - s)
                sign = torch.where(u[:, 1] < 0.5, -1.0, 1.0)[:, None]
                win = (pos[None, :] >= start[:, None]) & (pos[None, :] < (start + s)[:, None])
                cur = adv[act]
                same = (~win | ((xa + ea * sign).clamp(-1, 1) - cur).abs().lt(1e-7)).all(1, keepdim=True)
                sign = torch.where(same, -sign, sign)          # an unchanged window would waste a query
                cand = torch.where(win, (xa + ea * sign).clamp(-1, 1), cur)
            logits = self._logits(cand)
            loss, succ = self._objective(logits, y[act])
            queries[act] += 1
            accept = succ | (loss < best_loss[act]) if it > 0 else torch.ones_like(succ)
            upd = act[accept]
            adv[upd], best_logits[upd], best_loss[upd] = cand[accept], logits[accept], loss[accept]
            success[upd] = succ[accept]
            done[upd] |= succ[accept]
            bar.update(1)
        bar.close()
        return self._result(x0, adv, success, queries, best_logits, y)
