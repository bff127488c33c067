"""Each profile section as a typed, frozen dataclass that checks itself when it is built.

A section (data, detectors, Pixle, smoothing, adversarial training, report, realizable attacks) lists its
notebook parameters, one line each::

    epochs: int = param("EPOCHS", ge=1, integer=True)

The field's default is the parameter's value in :data:`helpers.config.profiles.BASE` (lists become
tuples, so a section is hashable); ``choices`` come from the leaf :mod:`helpers.config.choices`, never
from the modules that implement them. Building a section (``TrainSection.from_params(globals())``, the one
adapter from the UPPER_CASE dict for every section) refuses a bad value at once, naming the parameter,
the value and what is allowed: a misspelt ``FEATURES = "thesis_rgb"`` costs no 20-minute run.

A new parameter is one line in its profile (``BASE``) and, to be checked, one line in its section.
Parameters no section lists pass unchecked.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar, Mapping

from helpers.config import choices as C
from helpers.config.profiles import BASE


class ParameterError(ValueError):
    """A parameter value outside its allowed choices or range (or of the wrong shape); ``problems`` lists each."""

    def __init__(self, problems: list[str]):
        super().__init__("; ".join(problems))
        self.problems = list(problems)


def _freeze(value: Any) -> Any:
    """Lists (YAML, JSON, papermill) become tuples, recursively, so sections are immutable and hashable."""
    if isinstance(value, (list, tuple)):
        return tuple(_freeze(v) for v in value)
    return value


def param(name: str, *, choices: tuple | None = None, empty_ok: bool = False, ge: float | None = None,
          gt: float | None = None, le: float | None = None, lt: float | None = None, integer: bool = False,
          optional: bool | None = None, check: Callable[[Any], str | None] | None = None) -> Any:
    """A section field read from the UPPER_CASE parameter ``name`` (default: ``BASE[name]``).

    ``choices``: allowed values (for a list, of each element; an empty list only with ``empty_ok``);
    ``ge``/``gt``/``le``/``lt``: numeric bounds; ``integer``: whole numbers only; ``optional``: None allowed
    (default: when ``BASE[name]`` is None); ``check(value)``: any other rule, returning a message or None.
    """
    if name not in BASE:
        raise KeyError(f"param({name!r}): no such parameter in helpers/config/profiles.py BASE; add it there first")
    default = _freeze(BASE[name])
    meta = {"param": name, "choices": choices, "empty_ok": empty_ok, "ge": ge, "gt": gt, "le": le, "lt": lt,
            "integer": integer, "optional": default is None if optional is None else optional, "check": check}
    return field(default=default, metadata=meta)


def _allowed_range(m: Mapping) -> str:
    parts = [f">= {m['ge']}" if m["ge"] is not None else "", f"> {m['gt']}" if m["gt"] is not None else "",
             f"<= {m['le']}" if m["le"] is not None else "", f"< {m['lt']}" if m["lt"] is not None else ""]
    kind = "a whole number" if m["integer"] else "a number"
    return f"{kind} {' and '.join(p for p in parts if p)}".strip() + (", or None" if m["optional"] else "")


def problems_of(name: str, value: Any, m: Mapping) -> list[str]:
    """What is wrong with ``value`` for the parameter ``name`` declared with metadata ``m`` (empty: nothing)."""
    if value is None:
        return [] if m["optional"] else [f"{name} = None: give a value"]
    out = []
    if m["choices"] is not None:
        allowed = list(m["choices"])
        values = value if isinstance(value, tuple) else (value,)
        if isinstance(value, tuple) and not value and not m["empty_ok"]:
            out.append(f"{name} is empty; choose from {allowed}")
        bad = [v for v in values if v not in allowed]
        if bad:
            out.append(f"{name} = {value!r}: {', '.join(map(repr, bad))} is not one of {allowed}")
    bounded = any(m[k] is not None for k in ("ge", "gt", "le", "lt")) or m["integer"]
    if bounded:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        ok = ok and (not m["integer"] or float(value).is_integer())
        ok = ok and (m["ge"] is None or value >= m["ge"]) and (m["gt"] is None or value > m["gt"])
        ok = ok and (m["le"] is None or value <= m["le"]) and (m["lt"] is None or value < m["lt"])
        if not ok:
            out.append(f"{name} = {value!r}: must be {_allowed_range(m)}")
    if m["check"] is not None and not out:
        msg = m["check"](value)
        if msg:
            out.append(f"{name} = {value!r}: {msg}")
    return out


@dataclass(frozen=True)
class Section:
    """Base of every section: validation at construction, and the one adapter from the parameter dict."""

    NOTEBOOK: ClassVar[str] = ""

    def __post_init__(self) -> None:
        found = [p for f in dataclasses.fields(self) if "param" in f.metadata
                 for p in problems_of(f.metadata["param"], getattr(self, f.name), f.metadata)]
        if found:
            raise ParameterError(found)

    @classmethod
    def from_params(cls, params: Mapping[str, Any]):
        """The section from UPPER_CASE parameters (a profile, ``globals()``); absent names keep their defaults."""
        return from_upper(cls, params)

    @classmethod
    def param_names(cls) -> dict[str, str]:
        """UPPER_CASE parameter -> field name."""
        return {f.metadata["param"]: f.name for f in dataclasses.fields(cls) if "param" in f.metadata}

    def values(self) -> dict[str, Any]:
        """Field name -> value (what a module's own config, e.g. ``TrainConfig(**...)``, is built from)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}


def upper_kwargs(cls: type, params: Mapping[str, Any], rename: Mapping[str, str] | None = None, prefix: str = "",
                 exclude: tuple[str, ...] = ()) -> dict[str, Any]:
    """The keyword arguments of dataclass ``cls`` found in UPPER_CASE parameters: the one adapter from a profile.

    Field ``f`` reads the parameter its :func:`param` declares, else ``rename[f]``, else ``prefix + F`` (the
    field's name upper-cased: ``feature_size`` <- ``FEATURE_SIZE``); absent parameters and ``exclude``d fields
    are left out (the class's defaults apply); lists become tuples. So a new field named like its parameter
    needs no adapter line at all.
    """
    rename = dict(rename or {})
    kw = {}
    for f in dataclasses.fields(cls):
        if f.name in exclude or not f.init:
            continue
        name = f.metadata.get("param") or rename.get(f.name) or prefix + f.name.upper()
        if name in params:
            kw[f.name] = _freeze(params[name])
    return kw


def from_upper(cls: type, params: Mapping[str, Any], **how: Any) -> Any:
    """``cls(**upper_kwargs(cls, params, ...))``: a typed config (a section, ``TrainConfig``, ...) from parameters."""
    return cls(**upper_kwargs(cls, params, **how))


# --------------------------------------------------------------------------- shape rules

def _fractions(value: Any) -> str | None:
    ok = isinstance(value, tuple) and len(value) == 3 and all(isinstance(v, (int, float)) for v in value)
    if not ok or abs(sum(value) - 1) > 1e-6 or min(value) < 0:
        return "three fractions (train, val, test) that sum to 1"
    return None


def _dims(value: Any) -> str | None:
    """Pixle's (min, max) patch side: pixels (whole numbers) or fractions of the image side in (0, 1]."""
    ok = isinstance(value, tuple) and len(value) == 2 and all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                                              and v > 0 for v in value)
    if not ok or value[0] > value[1]:
        return "two positive sizes (min, max), min <= max: pixels (whole numbers) or fractions of the side"
    return None


def _sigma(value: Any) -> str | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
        return None
    if isinstance(value, tuple) and len(value) == 2 and all(isinstance(v, (int, float)) and v > 0 for v in value) \
            and value[0] <= value[1]:
        return None
    return "a positive sigma, or a range [low, high] a sigma is drawn from"


def _odd(value: Any) -> str | None:
    return None if value % 2 == 1 else "an odd kernel size (the blur is centred)"


def _augment_names(value: Any) -> list[str]:
    return [] if value in (None, "", "none") else str(value).split("+")


def _augment(value: Any) -> str | None:
    names = _augment_names(value)
    bad = [n for n in names if n not in C.AUGMENTS]
    return f"'+'-joined names from {list(C.AUGMENTS)}, or 'none' (unknown: {bad})" if bad else None


def _pair_of_whole(value: Any) -> str | None:
    ok = isinstance(value, tuple) and len(value) == 2 and all(isinstance(v, int) and not isinstance(v, bool) and v >= 1
                                                              for v in value)
    return None if ok else "two whole numbers >= 1 (restarts, iterations)"


def _whole_each(value: Any) -> str | None:
    ok = isinstance(value, tuple) and all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in value)
    return None if ok else "a list of whole numbers >= 1 (may be empty)"


def _positive_each(value: Any) -> str | None:
    ok = isinstance(value, tuple) and value and all(isinstance(v, (int, float)) and v > 0 for v in value)
    return None if ok else "a non-empty list of positive numbers"


# --------------------------------------------------------------------------- the sections, one per notebook

@dataclass(frozen=True)
class DataSection(Section):
    """00_data: corpus, sample, splits and features (field names as :class:`helpers.experiments.pipeline.DataParams`)."""

    NOTEBOOK: ClassVar[str] = "00_data"
    dataset: str = param("DATASET", choices=C.DATASETS)
    seed: int = param("SEED", ge=0, integer=True)
    speech_dir: str = param("SPEECH_DIR")
    asvspoof_root: str = param("ASVSPOOF_ROOT")
    max_sources: int | None = param("MAX_SOURCES", ge=1, integer=True)
    speech_sources: tuple[str, ...] = param("SPEECH_SOURCES", choices=C.SPEECH_SOURCES, empty_ok=True)
    minutes_per_speaker: float | None = param("MINUTES_PER_SPEAKER", gt=0, optional=True)
    codecs: tuple[str, ...] = param("CODECS", choices=C.DF_CODECS)
    segment_s: float = param("SEGMENT_S", gt=0)
    n_trials: int | None = param("N_TRIALS", ge=1, integer=True)
    bonafide_share: float | None = param("BONAFIDE_SHARE", gt=0, lt=1, optional=True)
    split: tuple[float, float, float] = param("SPLIT", check=_fractions)
    split_by: str = param("SPLIT_BY", choices=C.SPLIT_BY)
    unseen_voice_speaker: str = param("UNSEEN_VOICE_SPEAKER", choices=C.UNSEEN_VOICE_SPEAKER)
    features: str = param("FEATURES", choices=C.FEATURES)
    feature_size: int = param("FEATURE_SIZE", ge=8, integer=True)
    on_error: str = param("ON_ERROR", choices=C.ON_ERROR)


@dataclass(frozen=True)
class TrainSection(Section):
    """01_baselines: which detectors, and the training recipe (field names as ``TrainConfig``)."""

    NOTEBOOK: ClassVar[str] = "01_baselines"
    models: tuple[str, ...] = param("MODELS", choices=C.ARCHS)
    epochs: int = param("EPOCHS", ge=1, integer=True)
    batch_size: int = param("BATCH_SIZE", ge=1, integer=True)
    lr: float = param("LR", gt=0)
    schedule: str = param("LR_SCHEDULE", choices=C.LR_SCHEDULES)
    warmup_epochs: float = param("WARMUP_EPOCHS", ge=0)
    momentum: float = param("MOMENTUM", ge=0, lt=1)
    max_batches: int | None = param("MAX_BATCHES", ge=1, integer=True)
    balance: str = param("BALANCE", choices=C.BALANCE)
    select: str = param("SELECT", choices=C.SELECT)
    early_stop_patience: int | None = param("EARLY_STOP_PATIENCE", ge=1, integer=True)
    early_stop_metric: str = param("EARLY_STOP_METRIC", choices=C.EARLY_STOP_METRICS)
    augment: str = param("AUGMENT", check=_augment)


@dataclass(frozen=True)
class PixleSection(Section):
    """02_pixle_attack: the attacked clips and Pixle's settings (field names as ``AttackConfig``)."""

    NOTEBOOK: ClassVar[str] = "02_pixle_attack"
    n_attack: int | None = param("N_ATTACK", ge=1, integer=True)
    restarts: int = param("PIXLE_RESTARTS", ge=1, integer=True)
    max_iterations: int = param("PIXLE_ITERATIONS", ge=1, integer=True)
    x_dimensions: tuple = param("PIXLE_X_DIM", check=_dims)
    y_dimensions: tuple = param("PIXLE_Y_DIM", check=_dims)
    pixel_mapping: str = param("PIXLE_MAPPING", choices=C.PIXLE_MAPPINGS)
    target_batch: int | None = param("PIXLE_TARGET_BATCH", ge=1, integer=True, optional=True)
    attack_batch: int = param("ATTACK_BATCH", ge=1, integer=True)
    amp: bool = param("PIXLE_AMP", choices=(True, False))


@dataclass(frozen=True)
class SmoothingSection(Section):
    """03_spatial_smoothing: the thesis's Gaussian blur and the sigma sweep (field names as ``BlurConfig``)."""

    NOTEBOOK: ClassVar[str] = "03_spatial_smoothing"
    kernel_size: int = param("BLUR_KERNEL", ge=1, integer=True, check=_odd)
    sigma: Any = param("BLUR_SIGMA", check=_sigma)
    per: str = param("BLUR_PER", choices=C.BLUR_PER)
    eval_batch: int = param("EVAL_BATCH", ge=1, integer=True)
    eot: int = param("EOT_SAMPLES", ge=1, integer=True)
    sigma_sweep: tuple[float, ...] = param("SIGMA_SWEEP", check=_positive_each)


@dataclass(frozen=True)
class AdversarialSection(Section):
    """04_adversarial_training: start, recipe and the Pixle budget inside training."""

    NOTEBOOK: ClassVar[str] = "04_adversarial_training"
    init: str = param("AT_INIT", choices=C.AT_INIT)
    lr: float = param("AT_LR", gt=0)
    epochs: int = param("AT_EPOCHS", ge=1, integer=True)
    restarts: int = param("AT_RESTARTS", ge=1, integer=True)
    iterations: int = param("AT_ITERATIONS", ge=1, integer=True)


@dataclass(frozen=True)
class ReportSection(Section):
    """05_report: bootstrap resamples for every confidence interval."""

    NOTEBOOK: ClassVar[str] = "05_report"
    n_boot: int = param("N_BOOT", ge=10, integer=True)


@dataclass(frozen=True)
class RealizableSection(Section):
    """06_realizable_attacks: clips and budgets of the attacks an adversary can mount."""

    NOTEBOOK: ClassVar[str] = "06_realizable_attacks"
    n: int = param("REALIZABLE_N", ge=1, integer=True)
    stft_restarts: int = param("STFT_RESTARTS", ge=1, integer=True)
    stft_iterations: int = param("STFT_ITERATIONS", ge=1, integer=True)
    stft_freq_dim: tuple = param("STFT_FREQ_DIM", check=_dims)
    stft_time_dim: tuple = param("STFT_TIME_DIM", check=_dims)
    square_snr_db: float = param("SQUARE_SNR_DB", gt=-100, lt=200)
    square_queries: int = param("SQUARE_QUERIES", ge=1, integer=True)
    sparse_rs_k: int | None = param("SPARSE_RS_K", ge=1, integer=True)
    sparse_rs_queries: int | None = param("SPARSE_RS_QUERIES", ge=1, integer=True)


@dataclass(frozen=True)
class CertifiedSection(Section):
    """07_certified: randomized ablation (k, n0, n, alpha), column smoothing, the base detectors and the adaptive check
    (field names as :class:`helpers.experiments.certified.CertConfig`)."""

    NOTEBOOK: ClassVar[str] = "07_certified"
    k: int = param("CERT_K", ge=1, integer=True)
    n0: int = param("CERT_N0", ge=1, integer=True)
    n: int = param("CERT_N", ge=1, integer=True)
    alpha: float = param("CERT_ALPHA", gt=0, lt=1)
    clips: int | None = param("CERT_CLIPS", ge=1, integer=True)
    epochs: int = param("CERT_EPOCHS", ge=1, integer=True)
    band: int = param("CERT_BAND", ge=0, integer=True)
    block: int = param("CERT_BLOCK", ge=0, integer=True)
    block_stride: int = param("CERT_BLOCK_STRIDE", ge=1, integer=True)
    attack_n: int = param("CERT_ATTACK_N", ge=1, integer=True)
    attack_clips: int | None = param("CERT_ATTACK_CLIPS", ge=1, integer=True)
    pixle: tuple = param("CERT_PIXLE", check=_pair_of_whole)
    sparse_queries: int = param("CERT_SPARSE_QUERIES", ge=1, integer=True)
    init: str = param("CERT_INIT", choices=C.CERT_INIT)
    k_sweep: tuple[int, ...] = param("CERT_K_SWEEP", check=_whole_each)
    sweep_model: str | None = param("CERT_SWEEP_MODEL", choices=C.ARCHS)


SECTIONS: tuple[type[Section], ...] = (DataSection, TrainSection, PixleSection, SmoothingSection, AdversarialSection,
                                       ReportSection, RealizableSection, CertifiedSection)


def check_sections(params: Mapping[str, Any]) -> dict[type[Section], Section]:
    """Build every section from ``params`` (absent names: defaults); every problem of every section in one error."""
    built, problems = {}, []
    for cls in SECTIONS:
        try:
            built[cls] = cls.from_params(params)
        except ParameterError as exc:
            problems += exc.problems
    problems += _cross_problems(params)
    if problems:
        raise ParameterError(problems)
    return built


def _cross_problems(params: Mapping[str, Any]) -> list[str]:
    """Problems of two parameters together, where ``params`` names both (a whole profile, as run_all.py checks it;
    a notebook's namespace names only its own): the ``eq`` augmentation needs ``FEATURES = "lfcc"``."""
    if "AUGMENT" not in params or "FEATURES" not in params:
        return []
    problem = augment_features_problem(params["AUGMENT"], params["FEATURES"])
    return [problem] if problem else []


def augment_features_problem(augment: Any, features: Any) -> str | None:
    """What is wrong with AUGMENT and FEATURES together (None: nothing); also what 01 checks against 00's data."""
    if "eq" in _augment_names(augment) and features != "lfcc":
        return (f"AUGMENT = {augment!r} with FEATURES = {features!r}: 'eq' needs FEATURES 'lfcc'; "
                "set it or leave 'eq' out" + (" ('lfcc_cmn' is already blind to a fixed per-band gain)"
                                               if features == "lfcc_cmn" else ""))
    return None


__all__ = ["ParameterError", "Section", "param", "from_upper", "upper_kwargs", "SECTIONS", "DataSection", "TrainSection", "PixleSection",
           "SmoothingSection", "AdversarialSection", "ReportSection", "RealizableSection", "check_sections",
           "problems_of", "augment_features_problem"]
