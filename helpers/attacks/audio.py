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
the first success, and draw their randomness from :func:`helpers.attacks.pixle.counter_uniform` keyed
by (seed, clip id, step, slot): a clip's result does not depend on the batch it is in. The score
each returns (``final_score``, ``final_prob``) was recorded from the query of the returned
waveform itself, so re-scoring ``adv_wav`` reproduces it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Sequence

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from helpers.attacks.pixle import PixelMapping, Pixle, counter_uniform, default_target_batch
from helpers.data.features import FeatureConfig, _viridis_lut
from helpers.evaluation.metrics import bonafide_score
from helpers.models.detectors import eval_mode

# --------------------------------------------------------------------------- batched features

_LUTS: dict[str, torch.Tensor] = {}


def _lut(device: torch.device) -> torch.Tensor:
    key = str(device)
    if key not in _LUTS:
        _LUTS[key] = _viridis_lut().to(device)
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
    raise ValueError(f"unknown feature {cfg.name!r}; choose 'thesis_rgb32' or 'logspec'")


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


@dataclass
class AudioAttackResult:
    """What an audio attack returns, per clip."""

    adv_wav: torch.Tensor      # (B, T) adversarial waveforms in [-1, 1]
    success: torch.Tensor      # (B,) bool: the returned waveform is misclassified (as the attack scored it)
    queries: torch.Tensor      # (B,) waveforms the algorithm scored: clean + candidates until stop
    snr_db: torch.Tensor       # (B,) SNR of adv_wav - clean relative to clean, dB (inf: unchanged)
    linf: torch.Tensor         # (B,) max |adv_wav - clean|
    final_score: torch.Tensor  # (B,) bonafide score (logit 0 - logit 1) recorded for adv_wav
    final_prob: torch.Tensor   # (B,) true-class probability recorded for adv_wav

    def cpu(self) -> "AudioAttackResult":
        return type(self)(*(getattr(self, f).cpu() for f in self.__dataclass_fields__))


@dataclass
class StftPixleResult(AudioAttackResult):
    """:class:`AudioAttackResult` plus the STFT magnitude the returned waveform was synthesised from."""

    adv_mag: torch.Tensor      # (B, bins, frames): adv_wav = clip(istft(adv_mag * original phase), -1, 1)


class _AudioAttack:
    """Scoring and bookkeeping shared by the audio attacks."""

    pipeline: nn.Module
    skip_misclassified: bool

    def _logits(self, wav: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            return self.pipeline(wav).float()

    @staticmethod
    def _check(wav: torch.Tensor, labels: torch.Tensor, ids: torch.Tensor | None) -> tuple[torch.Tensor, ...]:
        if wav.dim() == 1:
            wav = wav[None]
        if wav.dim() != 2:
            raise ValueError(f"expected a waveform batch (B, T), got shape {tuple(wav.shape)}")
        if wav.abs().max() > 1:
            raise ValueError("waveforms must be in [-1, 1] (float PCM); normalise them first")
        dev = wav.device
        ids = torch.arange(wav.shape[0], device=dev) if ids is None else ids.to(dev).long()
        return wav.detach().float().clone(), labels.to(dev).long(), ids

    def _result(self, x0: torch.Tensor, adv: torch.Tensor, success: torch.Tensor, queries: torch.Tensor,
                logits: torch.Tensor, y: torch.Tensor) -> AudioAttackResult:
        prob = torch.softmax(logits, 1).gather(1, y[:, None]).squeeze(1)
        return AudioAttackResult(adv_wav=adv, success=success, queries=queries, snr_db=snr_db(x0, adv),
                                 linf=(adv - x0).abs().amax(-1), final_score=bonafide_score(logits),
                                 final_prob=prob)

    def _with_eval(self, fn, *args) -> AudioAttackResult:
        with eval_mode(self.pipeline):
            return fn(*args)


# --------------------------------------------------------------------------- STFT-magnitude Pixle

class StftPixle(_AudioAttack):
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
    - Returns a :class:`StftPixleResult`: the audio result plus ``adv_mag``, the edited magnitude.
    """

    def __init__(self, pipeline: nn.Module, freq_dimensions: Sequence[int | float] | int | float = (0.02, 0.1),
                 time_dimensions: Sequence[int | float] | int | float = (0.02, 0.1),
                 pixel_mapping: PixelMapping = "random", restarts: int = 20, max_iterations: int = 10,
                 update_each_iteration: bool = False, block: int | None = None, target_batch: int | None = None,
                 n_fft: int | None = None, hop: int | None = None, seed: int = 0,
                 skip_misclassified: bool = False, progress: bool = False):
        cfg = getattr(pipeline, "cfg", FeatureConfig())
        self.pipeline = pipeline
        self.n_fft = n_fft or cfg.n_fft
        self.hop = hop or cfg.hop
        # Pixle's x is the image width (frames), y the height (frequency bins)
        self._pixle = Pixle(model=pipeline, x_dimensions=time_dimensions, y_dimensions=freq_dimensions,
                            pixel_mapping=pixel_mapping, restarts=restarts, max_iterations=max_iterations,
                            update_each_iteration=update_each_iteration, seed=seed)
        self.restarts, self.max_iterations = restarts, max_iterations
        self.update_each_iteration = update_each_iteration
        self.block, self.target_batch = block, target_batch
        self.seed, self.skip_misclassified, self.progress = seed, skip_misclassified, progress

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

    def __call__(self, wav: torch.Tensor, labels: torch.Tensor, ids: torch.Tensor | None = None) -> StftPixleResult:
        return self.attack(wav, labels, ids)

    def attack(self, wav: torch.Tensor, labels: torch.Tensor, ids: torch.Tensor | None = None) -> StftPixleResult:
        """Attack clips ``wav`` (B, T) in [-1, 1] with true labels (B,); ``ids`` identify clips across batches."""
        return self._with_eval(self._attack, *self._check(wav, labels, ids))

    def _attack(self, x0: torch.Tensor, y: torch.Tensor, ids: torch.Tensor) -> StftPixleResult:
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
        success = logits0.argmax(1) != y
        done = success.clone() if self.skip_misclassified else torch.zeros(b, dtype=torch.bool, device=dev)
        if not self.skip_misclassified:
            success[:] = False
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
                any_s = succ.any(1)
                first = torch.where(any_s, succ.float().argmax(1), torch.full_like(any_s, k - 1, dtype=torch.long))
                kk = torch.arange(k, device=dev)
                queries[act] += first + 1
                pm = torch.where(kk[None, :] <= first[:, None], p, torch.full_like(p, float("inf")))
                minp, argk = pm.min(1)
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
        res = self._result(x0, best_wav, success, queries, best_logits, y)
        return StftPixleResult(**{f: getattr(res, f) for f in res.__dataclass_fields__}, adv_mag=best_mag)


# --------------------------------------------------------------------------- Square Attack in 1-D

def square_p_schedule(p_init: float, it: int, n_queries: int) -> float:
    """Square Attack's piecewise-constant schedule for ``p``, rescaled to a 10 000-query budget.

    ``p_init`` halves at iterations 10, 50, 200, 500, 1000, 2000, 4000, 6000, 8000 (of 10 000).
    """
    t = int(it / max(n_queries, 1) * 10000)
    for upper, div in ((10, 1), (50, 2), (200, 4), (500, 8), (1000, 16), (2000, 32), (4000, 64),
                       (6000, 128), (8000, 256)):
        if t <= upper:
            return p_init / div
    return p_init / 512


class SquareAudio(_AudioAttack):
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
                 n_queries: int = 1000, p_init: float = 0.05, loss: Literal["margin", "ce"] = "margin",
                 seed: int = 0, skip_misclassified: bool = False, progress: bool = False):
        if (eps is None) == (snr_db is None):
            raise ValueError("give exactly one of eps (absolute L-inf budget) or snr_db (SNR target)")
        if eps is not None and not 0 < eps <= 2:
            raise ValueError(f"eps must be in (0, 2] for waveforms in [-1, 1] ({eps})")
        if not isinstance(n_queries, int) or n_queries < 1:
            raise ValueError(f"n_queries must be an integer >= 1 ({n_queries})")
        if not 0 < p_init <= 1:
            raise ValueError(f"p_init must be in (0, 1] ({p_init})")
        if loss not in ("margin", "ce"):
            raise ValueError(f"loss must be 'margin' or 'ce' ({loss!r})")
        self.pipeline, self.eps, self.snr_db = pipeline, eps, snr_db
        self.n_queries, self.p_init, self.loss = n_queries, p_init, loss
        self.seed, self.skip_misclassified, self.progress = seed, skip_misclassified, progress

    def budget(self, wav: torch.Tensor) -> torch.Tensor:
        """Per-clip L-inf budget eps (B,) for clips ``wav`` (B, T)."""
        if self.eps is not None:
            return torch.full((wav.shape[0],), float(self.eps), device=wav.device)
        rms = wav.double().pow(2).mean(-1).sqrt()
        return (rms * 10 ** (-self.snr_db / 20)).float()

    def _uniform(self, ids: torch.Tensor, it: int, width: int, stride: int) -> torch.Tensor:
        ctr = (ids[:, None] * (self.n_queries + 1) + it) * stride
        return counter_uniform(self.seed, ctr + torch.arange(width, device=ids.device))

    def _objective(self, logits: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        true = logits.gather(1, y[:, None]).squeeze(1)
        margin = true - logits.scatter(1, y[:, None], float("-inf")).amax(1)
        loss = margin if self.loss == "margin" else -F.cross_entropy(logits, y, reduction="none")
        return loss, logits.argmax(1) != y

    def __call__(self, wav: torch.Tensor, labels: torch.Tensor, ids: torch.Tensor | None = None) -> AudioAttackResult:
        return self.attack(wav, labels, ids)

    def attack(self, wav: torch.Tensor, labels: torch.Tensor, ids: torch.Tensor | None = None) -> AudioAttackResult:
        """Attack clips ``wav`` (B, T) in [-1, 1] with true labels (B,); ``ids`` identify clips across batches."""
        return self._with_eval(self._attack, *self._check(wav, labels, ids))

    def _attack(self, x0: torch.Tensor, y: torch.Tensor, ids: torch.Tensor) -> AudioAttackResult:
        dev = x0.device
        b, t = x0.shape
        eps = self.budget(x0)[:, None]                       # (B, 1)
        stride = max(t, 2)

        logits0 = self._logits(x0)
        best_logits = logits0.clone()
        best_loss, success = self._objective(logits0, y)
        done = success.clone() if self.skip_misclassified else torch.zeros(b, dtype=torch.bool, device=dev)
        if not self.skip_misclassified:
            success[:] = False
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
