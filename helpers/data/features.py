"""Spectrogram features the detectors see, computed once and cached.

- ``thesis_rgb32``: what the thesis fed its ResNets: a log-power spectrogram painted with
  matplotlib's viridis colormap as an RGB image and resized to 32x32. Computed without drawing a
  figure (the colormap is applied to the array directly, then the image is resized with an
  antialiasing filter), which is far faster than rendering and saving figures and matches a
  figure-rendered image closely (:func:`render_via_figure` is kept to show that). Images are in
  [0, 1]; ImageNet normalisation lives inside the model (:mod:`helpers.models.detectors`).
- ``logspec``: a single-channel log-mel spectrogram at a configurable size, mapped to [0, 1].
- ``lfcc`` (high resolution): the ASVspoof 2021 LFCC baselines' front end (Todisco et al. 2019; Wang & Yamagishi
  2021): 20 linear-filterbank cepstral coefficients from a 512-point STFT with 20 ms Hann windows every 10 ms,
  plus deltas and delta-deltas, on a fixed-length crop: (1, 60, frames), squashed into [0, 1] by a fixed sigmoid
  per coefficient block (no per-clip normalisation, so level and spectral tilt stay visible).
- ``lfcc_cmn`` (high resolution): the same LFCC with cepstral mean normalisation (each clip's mean cepstrum over
  its frames subtracted, the classic channel compensation of speaker recognition): exactly blind to the level and to
  a constant gain per filterbank band, and nearly blind to a real fixed filter (whose gain varies inside a band, and
  which the 80 dB floor clips in places), i.e. to the recording channel a detector can otherwise take for
  "bonafide" (README: the held speaker's roll-off), and to a vocoder's fixed spectral colouring as well.
- ``loglin`` (high resolution): the full-resolution log-power linear-frequency spectrogram of Alzantot et al.
  (Interspeech 2019, "Spec" ResNet), same STFT and crop: (1, 257, frames), mapped to [0, 1] as ``logspec``.

The high-resolution images are not resized: the detector gets a stem that downsamples them
(:func:`FeatureConfig.stem`, :mod:`helpers.models.detectors`).

Silence never produces ``-inf``: power is floored (``amin``) and the dynamic range is limited to
``top_db`` below the clip's peak, as librosa's ``power_to_db`` does.
"""

from __future__ import annotations

import io
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

from helpers.data.audio import TARGET_SR, AudioError, load_audio
from helpers.io import atomic_path, cache_key, read_or_quarantine
from helpers.progress import progress_iter

FeatureName = Literal["thesis_rgb32", "logspec", "lfcc", "lfcc_cmn", "loglin"]
FEATURES: tuple[str, ...] = ("thesis_rgb32", "logspec", "lfcc", "lfcc_cmn", "loglin")
HIRES: tuple[str, ...] = ("lfcc", "lfcc_cmn", "loglin")
# LFCC with cepstral mean normalisation: each clip's mean cepstrum (over the crop's frames) subtracted, which removes
# the level and a constant dB per band (hence per cepstral coefficient) exactly, a real fixed filter nearly
LFCC_NAMES: tuple[str, ...] = ("lfcc", "lfcc_cmn")
# The ASVspoof 2021 LFCC baselines' analysis: 512-point FFT, 20 ms (320-sample) Hann window, 10 ms hop, 20 linear
# filters, 20 cepstral coefficients (with deltas and delta-deltas: 60 rows).
HIRES_STFT = {"n_fft": 512, "win": 320, "hop": 160}
LFCC_FILTERS, LFCC_COEFFS = 20, 20
# sigmoid(x / scale) per row block: c0 (log energy, tens of dB * sqrt(20)), c1-c19, deltas, delta-deltas;
# measured spreads on the demo corpus: c0 std ~50, c1.. std ~11, deltas ~3.5, delta-deltas ~1.4
LFCC_SCALES = (50.0, 15.0, 5.0, 2.0)


@dataclass(frozen=True)
class FeatureConfig:
    name: FeatureName = "thesis_rgb32"
    size: int = 32            # output height and width
    n_fft: int = 512
    hop: int = 128
    n_mels: int = 64           # logspec only
    top_db: float = 80.0
    amin: float = 1e-10
    sample_rate: int = TARGET_SR
    crop_s: float = 3.0        # lfcc / loglin: fixed-length crop (the first crop_s seconds, shorter clips repeated)

    @property
    def channels(self) -> int:
        return 3 if self.name == "thesis_rgb32" else 1

    @property
    def hires(self) -> bool:
        return self.name in HIRES

    @property
    def crop_samples(self) -> int:
        return int(round(self.crop_s * self.sample_rate))

    @property
    def shape(self) -> tuple[int, int, int]:
        """(channels, height, width); ``size`` x ``size`` for the resized images, the analysis's own for lfcc/loglin."""
        if not self.hires:
            return (self.channels, self.size, self.size)
        frames = self.crop_samples // HIRES_STFT["hop"] + 1
        rows = 3 * LFCC_COEFFS if self.name in LFCC_NAMES else HIRES_STFT["n_fft"] // 2 + 1
        return (1, rows, frames)

    @property
    def stem(self) -> str:
        """The detector stem sized for the image (:mod:`helpers.models.detectors`): the thesis's CIFAR stem for
        the 32x32 images, the ImageNet stem (4x downsampling) for the high-resolution ones."""
        return "imagenet" if self.hires else "cifar"

    def key(self) -> str:
        d = asdict(self)
        if not self.hires:
            d.pop("crop_s")   # not used by the resized images: their cache keys stay as they were
        return cache_key(d)


def _viridis_lut() -> torch.Tensor:
    from matplotlib import colormaps

    return torch.tensor(colormaps["viridis"](np.linspace(0, 1, 256))[:, :3], dtype=torch.float32)


viridis_lut = _viridis_lut   # public: (256, 3) viridis colours, shared with helpers.attacks.audio's batched features
_LUT: torch.Tensor | None = None


def power_spectrogram(wav: torch.Tensor, cfg: FeatureConfig) -> torch.Tensor:
    """|STFT|^2 with a Hann window, (freq, time)."""
    window = torch.hann_window(cfg.n_fft, device=wav.device)
    if wav.numel() < cfg.n_fft:
        wav = F.pad(wav, (0, cfg.n_fft - wav.numel()))
    spec = torch.stft(wav, cfg.n_fft, cfg.hop, window=window, return_complex=True, center=True)
    return spec.abs().pow(2)


def power_to_db(power: torch.Tensor, amin: float = 1e-10, top_db: float = 80.0) -> torch.Tensor:
    """10 log10(max(power, amin)), limited to ``top_db`` below the peak: always finite."""
    db = 10.0 * torch.log10(power.clamp_min(amin))
    return torch.maximum(db, db.max() - top_db)


def _minmax(x: torch.Tensor) -> torch.Tensor:
    lo, hi = x.min(), x.max()
    if float(hi - lo) <= 0:
        return torch.zeros_like(x)
    return (x - lo) / (hi - lo)


def thesis_rgb32(wav: torch.Tensor, cfg: FeatureConfig = FeatureConfig()) -> torch.Tensor:
    """Viridis-coloured log spectrogram (low frequencies at the bottom), resized: (3, size, size)."""
    global _LUT
    if _LUT is None:
        _LUT = _viridis_lut()
    lut = _LUT.to(wav.device)
    db = power_to_db(power_spectrogram(wav, cfg), cfg.amin, cfg.top_db)
    norm = _minmax(db).flip(0)                        # origin="lower", as specgram/specshow draw
    idx = (norm * 255).round().long().clamp(0, 255)   # matplotlib quantises to 256 colours
    rgb = lut[idx].permute(2, 0, 1)                    # (3, F, T)
    img = F.interpolate(rgb[None], size=(cfg.size, cfg.size), mode="bilinear",
                        antialias=True, align_corners=False)[0]
    return img.clamp(0, 1)


def logspec(wav: torch.Tensor, cfg: FeatureConfig) -> torch.Tensor:
    """Log-mel spectrogram mapped to [0, 1] (0 = ``top_db`` below the peak), (1, size, size)."""
    import torchaudio.transforms as T

    mel = T.MelScale(n_mels=cfg.n_mels, sample_rate=cfg.sample_rate, n_stft=cfg.n_fft // 2 + 1).to(wav.device)
    db = power_to_db(mel(power_spectrogram(wav, cfg)), cfg.amin, cfg.top_db)
    img = ((db - db.max() + cfg.top_db) / cfg.top_db).flip(0)
    img = F.interpolate(img[None, None], size=(cfg.size, cfg.size), mode="bilinear",
                        antialias=True, align_corners=False)[0]
    return img.clamp(0, 1)


def fixed_crop(wav: torch.Tensor, n: int) -> torch.Tensor:
    """(..., T) -> (..., n): the first ``n`` samples; a shorter clip is repeated until it fills them (as the
    ASVspoof 2021 baselines pad), an empty one is zeros."""
    t = wav.shape[-1]
    if t == 0:
        return wav.new_zeros((*wav.shape[:-1], n))
    if t < n:
        wav = wav.repeat(*([1] * (wav.dim() - 1)), -(-n // t))
    return wav[..., :n]


def _hires_power(wav: torch.Tensor, cfg: FeatureConfig) -> torch.Tensor:
    """|STFT|^2 of the fixed-length crop, (B, 257, frames)."""
    wav = fixed_crop(wav, cfg.crop_samples)
    st = HIRES_STFT
    window = torch.hann_window(st["win"], device=wav.device)
    spec = torch.stft(wav, st["n_fft"], st["hop"], st["win"], window=window, return_complex=True, center=True)
    return spec.abs().pow(2)


def _db_per_clip(power: torch.Tensor, amin: float, top_db: float) -> torch.Tensor:
    db = 10.0 * torch.log10(power.clamp_min(amin))
    return torch.maximum(db, db.amax((-2, -1), keepdim=True) - top_db)


_LFCC_MATS: dict[tuple, tuple[torch.Tensor, torch.Tensor]] = {}


def _lfcc_matrices(sample_rate: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """torchaudio's linear filterbank (257 x 20) and orthonormal DCT-II (20 x 20), as ``torchaudio.transforms.LFCC``."""
    key = (sample_rate, str(device))
    if key not in _LFCC_MATS:
        import torchaudio.functional as AF

        fb = AF.linear_fbanks(HIRES_STFT["n_fft"] // 2 + 1, 0.0, sample_rate / 2, LFCC_FILTERS, sample_rate)
        dct = AF.create_dct(LFCC_COEFFS, LFCC_FILTERS, "ortho")
        _LFCC_MATS[key] = (fb.to(device), dct.to(device))
    return _LFCC_MATS[key]


def _lfcc_dct(device: torch.device) -> torch.Tensor:
    return _lfcc_matrices(16_000, device)[1]     # the DCT does not depend on the rate


def lfcc(wav: torch.Tensor, cfg: FeatureConfig) -> torch.Tensor:
    """LFCC + deltas + delta-deltas of each clip's fixed-length crop, squashed into [0, 1]: (B, 1, 60, frames).

    Per clip the same numbers as ``torchaudio.transforms.LFCC(n_filter=20, n_lfcc=20)`` with the 512/320/160
    STFT (tested), but with the 80 dB floor below each clip's own peak in a batch too; ``lfcc_cmn`` then subtracts
    each cepstral row's mean over the frames (:func:`lfcc_image_from_db`)."""
    batched = wav.dim() == 2
    wav = wav if batched else wav[None]
    fb, _ = _lfcc_matrices(cfg.sample_rate, wav.device)
    power = _hires_power(wav, cfg)                                           # (B, 257, frames)
    db = _db_per_clip(torch.matmul(power.transpose(1, 2), fb).transpose(1, 2), cfg.amin, cfg.top_db)
    img = lfcc_image_from_db(db, cmn=cfg.name == "lfcc_cmn")
    return img if batched else img[0]


_LFCC_SCALE: dict[str, torch.Tensor] = {}


def _lfcc_scale(device: torch.device) -> torch.Tensor:
    """(1, 60, 1): the divisor of each LFCC image row before the sigmoid (:data:`LFCC_SCALES` per row block)."""
    if str(device) not in _LFCC_SCALE:
        s0, s1, s2, s3 = LFCC_SCALES
        _LFCC_SCALE[str(device)] = torch.tensor([s0] + [s1] * (LFCC_COEFFS - 1) + [s2] * LFCC_COEFFS
                                                + [s3] * LFCC_COEFFS, device=device).view(1, -1, 1)
    return _LFCC_SCALE[str(device)]


def lfcc_image_from_db(db: torch.Tensor, cmn: bool = False) -> torch.Tensor:
    """(B, 20, frames) log filterbank energies in dB -> the LFCC image (B, 1, 60, frames): DCT, deltas,
    delta-deltas, each row block squashed by its scale. The one place the LFCC image's layout is defined.

    ``cmn`` (``FEATURES = "lfcc_cmn"``): cepstral mean normalisation, each cepstral row minus its mean over the
    clip's frames. A gain that is constant over each filterbank band adds a constant in dB to that band in every
    frame, hence a constant to each cepstral coefficient, so the normalised image is exactly the same with or
    without it; a real fixed filter (its gain varies inside a band) nearly so (the recording channel and the level
    are gone; a vocoder's fixed spectral colouring goes with them). The deltas do not change."""
    import torchaudio.functional as AF

    c = torch.matmul(db.transpose(1, 2), _lfcc_dct(db.device)).transpose(1, 2)   # (B, 20, frames)
    if cmn:
        c = c - c.mean(-1, keepdim=True)
    d = AF.compute_deltas(c)
    feats = torch.cat([c, d, AF.compute_deltas(d)], 1)
    return torch.sigmoid(feats / _lfcc_scale(db.device))[:, None]


def lfcc_db_from_image(img: torch.Tensor) -> torch.Tensor:
    """The inverse of :func:`lfcc_image_from_db` on the cepstral rows: (B, 1, 60, frames) -> (B, 20, frames) dB.
    Exact up to float32's resolution of the sigmoid (rows saturated at 0 or 1 are clipped at 1e-6 from them);
    the deltas are not needed, they are linear in the cepstra along time."""
    if img.dim() != 4 or img.shape[1] != 1 or img.shape[2] != 3 * LFCC_COEFFS:
        raise ValueError(f"an LFCC image batch is (B, 1, {3 * LFCC_COEFFS}, frames); got {tuple(img.shape)} "
                         "(FEATURES must be 'lfcc' for this; an 'lfcc_cmn' image has the same shape and is not refused here)")
    c = torch.logit(img[:, 0, :LFCC_COEFFS].clamp(1e-6, 1 - 1e-6)) * _lfcc_scale(img.device)[:, :LFCC_COEFFS]
    # the DCT is orthonormal: its inverse is its transpose
    return torch.matmul(c.transpose(1, 2), _lfcc_dct(img.device).T).transpose(1, 2)


def lfcc_filtered(img: torch.Tensor, response_db: torch.Tensor) -> torch.Tensor:
    """LFCC images as if their audio had passed a linear filter whose gain per linear filterbank band is
    ``response_db`` ((B, 20) per image, or (20,) for all): exact, as the filter adds a constant in dB per band and
    frame. Computed in float32 and returned in ``img``'s dtype; what ``AUGMENT eq`` and the channel benchmark use."""
    db = lfcc_db_from_image(img.float())
    return lfcc_image_from_db(db + response_db.reshape(-1, LFCC_FILTERS, 1).to(db)).to(img.dtype)


def loglin(wav: torch.Tensor, cfg: FeatureConfig) -> torch.Tensor:
    """Full-resolution log-power linear-frequency spectrogram of the fixed-length crop, mapped to [0, 1]
    (0 = ``top_db`` below the clip's peak), low frequencies at the bottom: (B, 1, 257, frames)."""
    batched = wav.dim() == 2
    wav = wav if batched else wav[None]
    db = _db_per_clip(_hires_power(wav, cfg), cfg.amin, cfg.top_db)
    img = ((db - db.amax((-2, -1), keepdim=True) + cfg.top_db) / cfg.top_db).flip(-2)[:, None].clamp(0, 1)
    return img if batched else img[0]


def hires_batch(wav: torch.Tensor, cfg: FeatureConfig) -> torch.Tensor:
    """The high-resolution image of a batch of clips (B, T) -> (B, 1, H, W): what an audio-domain attack
    (``helpers.attacks.audio.features_batch``) needs for ``lfcc`` / ``loglin``; differentiable."""
    if cfg.name in LFCC_NAMES:
        return lfcc(wav.float(), cfg)
    if cfg.name == "loglin":
        return loglin(wav.float(), cfg)
    raise ValueError(f"{cfg.name!r} is not a high-resolution feature; choose from {HIRES}")


def extract(wav: np.ndarray | torch.Tensor, cfg: FeatureConfig, device: str | torch.device = "cpu") -> torch.Tensor:
    wav_t = torch.as_tensor(np.asarray(wav, dtype=np.float32)).to(device)
    if cfg.name not in FEATURES:
        raise ValueError(f"FEATURES={cfg.name!r}; choose from {FEATURES}")
    if cfg.hires:
        out = hires_batch(wav_t, cfg)
    else:
        out = thesis_rgb32(wav_t, cfg) if cfg.name == "thesis_rgb32" else logspec(wav_t, cfg)
    if not torch.isfinite(out).all():  # defensive: the floors above make this unreachable
        raise FloatingPointError("non-finite feature values")
    return out.cpu()


def render_via_figure(wav: np.ndarray, cfg: FeatureConfig = FeatureConfig(), dpi: int = 100) -> torch.Tensor:
    """The slow reference: draw the spectrogram with matplotlib, save a PNG, load it, resize."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    from PIL import Image

    db = power_to_db(power_spectrogram(torch.as_tensor(wav), cfg), cfg.amin, cfg.top_db).numpy()
    with plt.rc_context({"savefig.bbox": "standard", "savefig.pad_inches": 0}):   # whatever the caller's style
        fig = plt.figure(figsize=(4, 4), dpi=dpi)
        ax = fig.add_axes((0, 0, 1, 1))
        ax.imshow(db, origin="lower", aspect="auto", cmap="viridis", interpolation="nearest")
        ax.axis("off")
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=dpi)
        plt.close(fig)
    img = Image.open(buf).convert("RGB").resize((cfg.size, cfg.size), Image.BILINEAR)
    return torch.from_numpy(np.asarray(img, dtype=np.float32) / 255.0).permute(2, 0, 1)


# --------------------------------------------------------------------------- cached tensors

@dataclass
class FeatureSet:
    x: torch.Tensor          # (N, C, H, W) in [0, 1]
    y: torch.Tensor          # (N,) 0 = bonafide, 1 = spoof
    trials: list[str]
    seconds: float = 0.0     # extraction time (0 when loaded from cache)
    conversions: list[dict] = field(default_factory=list)   # files that were resampled / mixed down / re-encoded

    def __len__(self) -> int:
        return len(self.trials)


def feature_path(cache_root: Path, corpus_key: str, split: str, cfg: FeatureConfig) -> Path:
    return Path(cache_root) / "features" / corpus_key / f"{cfg.name}-{cfg.key()}" / f"{split}.safetensors"


def compute_features(paths: Sequence[str], labels: Sequence[int], trials: Sequence[str], cfg: FeatureConfig,
                     device: str | torch.device = "cpu", desc: str = "features",
                     on_error: Literal["error", "skip"] = "error", skipped: list | None = None) -> FeatureSet:
    """Decode each clip and extract its feature; bad files raise, or are skipped and recorded."""
    xs, ys, ts, conv = [], [], [], []
    t0 = time.perf_counter()
    for p, y, t in progress_iter(list(zip(paths, labels, trials)), desc=desc, unit="clips"):
        try:
            wav, _info = load_audio(p, cfg.sample_rate)
        except AudioError as exc:
            if on_error == "error":
                raise
            if skipped is not None:
                skipped.append({"file": str(p), "trial": t, "reason": str(exc)})
            continue
        if any(not c.startswith("decoded PCM") for c in _info.conversions):
            conv.append({"file": str(p), "trial": t, "conversions": "; ".join(_info.conversions)})
        xs.append(extract(wav, cfg, device))
        ys.append(int(y))
        ts.append(str(t))
    if not xs:
        if len(paths):
            raise AudioError(f"no usable clips for {desc}: every one of {len(paths)} files failed to decode")
        return FeatureSet(torch.zeros((0, *cfg.shape)), torch.zeros(0, dtype=torch.long), [], 0.0, [])
    return FeatureSet(torch.stack(xs), torch.tensor(ys, dtype=torch.long), ts, time.perf_counter() - t0, conv)


def save_features(path: Path, fs: FeatureSet) -> None:
    with atomic_path(path, suffix=".safetensors") as tmp:
        save_file({"x": fs.x.contiguous(), "y": fs.y.contiguous()}, str(tmp),
                  metadata={"trials": json.dumps(fs.trials), "conversions": json.dumps(fs.conversions)})


def load_features(path: Path) -> FeatureSet:
    from safetensors import safe_open

    tensors = load_file(str(path))
    with safe_open(str(path), framework="pt") as fh:
        meta = fh.metadata()
    return FeatureSet(tensors["x"], tensors["y"], json.loads(meta["trials"]),
                      conversions=json.loads(meta.get("conversions", "[]")))


def cached_features(path: Path, paths: Sequence[str], labels: Sequence[int], trials: Sequence[str],
                    cfg: FeatureConfig, device: str | torch.device = "cpu", desc: str = "features",
                    on_error: Literal["error", "skip"] = "error", skipped: list | None = None) -> FeatureSet:
    """Load the feature tensor file if it exists (a damaged one is moved aside), else compute and write it."""
    cached = read_or_quarantine(path, load_features)
    if cached is not None:
        return cached
    fs = compute_features(paths, labels, trials, cfg, device, desc, on_error, skipped)
    save_features(path, fs)
    return fs
