"""How a rate, its confidence interval, a difference of rates or a measured number is written: one place.

Rates are fractions 0..1 and are written in percent; a missing value (None, NaN) is an em dash, never a zero.
A leaf module (numpy only), so the claim statistics, notebook 06's tables and the report all format alike.
"""

from __future__ import annotations

import math

MISSING = "—"


def _finite(v) -> bool:
    try:
        return v is not None and math.isfinite(v)
    except TypeError:
        return False


def _rate(v, lo, hi, spec: str, unit: str, interval: str, missing: str = MISSING) -> str:
    """``v`` in percent with format ``spec`` and ``unit``, then ``interval`` ({lo}, {hi}) when both ends are known."""
    if not _finite(v):
        return missing
    s = f"{100 * v:{spec}}{unit}"
    if _finite(lo) and _finite(hi):
        s += interval.format(lo=format(100 * lo, spec), hi=format(100 * hi, spec))
    return s


def pct(v, lo=None, hi=None, digits: int = 1, unit: str = "", signed: bool = False, missing: str = MISSING) -> str:
    """A rate in percent, its 95% CI in brackets when both ends are known: ``'91.9 [88.0, 94.1]'``.

    ``unit`` follows the value (``'91.9% [88.0, 94.1]'``, ``'+2.1 points [+1.0, +3.3]'``); ``signed`` writes the
    sign of every number (differences of rates); ``missing`` is what an unknown rate reads as.
    """
    return _rate(v, lo, hi, f"{'+' if signed else ''}.{digits}f", unit, " [{lo}, {hi}]", missing)


def pct_prose(v, lo=None, hi=None) -> str:
    """A rate for a sentence: ``'96.0% (95% CI 93.7–97.2)'``."""
    return _rate(v, lo, hi, ".1f", "%", " (95% CI {lo}–{hi})")


def points(v, lo=None, hi=None) -> str:
    """A difference of rates for a sentence, in percentage points: ``'+2.1 points (95% CI +1.0 to +3.3)'``."""
    return _rate(v, lo, hi, "+.1f", " points", " (95% CI {lo} to {hi})")


def number(v, digits: int = 1, unit: str = "") -> str:
    """A measured number (queries, pixels, dB) with an optional unit: ``'412.5'``, ``'31.2 dB'``."""
    if not _finite(v):
        return MISSING
    return f"{v:.{digits}f}" + (f" {unit}" if unit else "")


__all__ = ["MISSING", "pct", "pct_prose", "points", "number"]
