"""Spectrogram features the detectors see, computed once and cached.

- ``thesis_rgb32``: what the thesis fed its ResNets: a log-power spectrogram painted with
  matplotlib's viridis colormap as an RGB image and resized to 32x32. Computed without drawing a
  figure (the colormap is applied to the array directly, then the image is resized with an
  antialiasing filter), which is far faster than rendering and saving figures and matches a
  figure-rendered image closely (:func:`render_via_figure` is kept to show that). Images are in
  [0, 1]; ImageNet normalisation lives inside the model (:mod:`helpers.models.detectors`).
- ``logspec``: a single-channel log-mel spectrogram at a configurable size, mapped to [0, 1].

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

FeatureName = Literal["thesis_rgb32", "logspec"]
FEATURES: tuple[str, ...] = ("thesis_rgb32", "logspec")


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

    @property
    def channels(self) -> int:
        return 3 if self.name == "thesis_rgb32" else 1

    @property
    def shape(self) -> tuple[int, int, int]:
        return (self.channels, self.size, self.size)

    def key(self) -> str:
        return cache_key(asdict(self))


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


def extract(wav: np.ndarray | torch.Tensor, cfg: FeatureConfig, device: str | torch.device = "cpu") -> torch.Tensor:
    wav_t = torch.as_tensor(np.asarray(wav, dtype=np.float32)).to(device)
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
