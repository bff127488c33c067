"""helpers/__init__.py's module map lists every module of the package (a newcomer's index)."""

import helpers
from helpers.paths import ROOT


def test_module_map_lists_every_module():
    modules = {p.stem for p in (ROOT / "helpers").glob("*.py") if p.stem != "__init__"}
    listed = {m for m in modules if f":mod:`helpers.{m}`" in helpers.__doc__}
    assert modules - listed == set(), f"missing from helpers/__init__.py: {sorted(modules - listed)}"
