"""Every parameter of a run checked before any work starts.

A misspelt choice (``FEATURES = "thesis_rgb"``) must not cost a 20-minute run before a
``KeyError`` deep inside a helper: :func:`check` builds every typed section of
:mod:`helpers.config.sections` from the parameters, and each section refuses a bad value at once,
naming the parameter, the value and the allowed values or range. ``run_all.py`` checks every
parameter of a run before starting the first notebook; each notebook checks its own in its set-up
cell (JupyterLab runs skip the runner). The allowed values live in the leaf
:mod:`helpers.config.choices`, so this module imports none of the modules whose choices it checks.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping

from helpers.config.sections import SECTIONS, ParameterError, check_sections

# name -> allowed values of every choice parameter (a list-valued parameter must hold only allowed values)
CHOICES: dict[str, tuple] = {f.metadata["param"]: tuple(f.metadata["choices"]) for cls in SECTIONS
                             for f in dataclasses.fields(cls) if f.metadata.get("choices") is not None}


def check(params: Mapping[str, Any]) -> None:
    """Refuse every parameter in ``params`` that a section declares and whose value is not allowed; other names pass."""
    check_sections(params)


__all__ = ["CHOICES", "ParameterError", "check"]
