"""The notebooks a researcher opens: defaults = the default profile, jupytext pairs in sync, thin cells."""

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import jupytext
import papermill
import pytest

from helpers.paths import ROOT
from helpers.config.profiles import DEFAULT_PROFILE, PROFILES

NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
sys.path.insert(0, str(ROOT / "tools"))
import check_notebooks  # noqa: E402


def test_there_are_paired_notebooks():
    assert len(NOTEBOOKS) >= 6
    assert all(nb.with_suffix(".py").exists() for nb in NOTEBOOKS)


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.stem)
def test_parameter_cell_equals_the_default_profile(nb):
    """Run All in JupyterLab reproduces `make run` and reuses its caches."""
    declared = papermill.inspect_notebook(str(nb))
    assert declared, f"{nb.name} has no parameters cell"
    demo = PROFILES[DEFAULT_PROFILE]
    for name, spec in declared.items():
        value = ast.literal_eval(spec["default"])
        if name == "PROFILE":
            assert value == DEFAULT_PROFILE
        else:
            assert name in demo, f"{nb.name}: {name} is not a profile parameter"
            assert value == demo[name], f"{nb.name}: {name} = {value!r}, the {DEFAULT_PROFILE} profile has {demo[name]!r}"


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.stem)
def test_cells_are_thin(nb):
    for cell in jupytext.read(nb).cells:   # the parameter cell is a literal list of settings, not code
        if cell.cell_type == "code" and "parameters" not in cell.metadata.get("tags", []):
            n = len([ln for ln in cell.source.splitlines() if ln.strip()])
            assert n <= 15, f"{nb.name}: a code cell of {n} lines (protocol belongs in helpers/):\n{cell.source[:200]}"


def test_committed_pairs_are_in_sync_and_without_outputs():
    assert check_notebooks.problems(ROOT / "notebooks") == []


def test_a_desynchronised_pair_is_caught_and_sync_repairs_it(tmp_path):
    for f in ("01_baselines.ipynb", "01_baselines.py"):
        shutil.copy(ROOT / "notebooks" / f, tmp_path / f)
    py = tmp_path / "01_baselines.py"
    py.write_text(py.read_text().replace("# ## Train (or reuse) the baselines", "# ## Train (or reuse) the baselines, edited"))
    found = check_notebooks.problems(tmp_path)
    assert len(found) == 1 and "differ" in found[0] and "jupytext --sync" in found[0]
    r = subprocess.run([sys.executable, str(ROOT / "tools" / "check_notebooks.py"), str(tmp_path)],
                       capture_output=True, text=True)
    assert r.returncode == 1 and "01_baselines" in r.stderr
    subprocess.run([sys.executable, "-m", "jupytext", "--sync", str(py)], check=True, capture_output=True)
    assert "the baselines, edited" in (tmp_path / "01_baselines.ipynb").read_text()
    assert check_notebooks.problems(tmp_path) == []


def test_outputs_in_a_notebook_are_caught(tmp_path):
    import nbformat

    for f in ("05_evaluation.ipynb", "05_evaluation.py"):
        shutil.copy(ROOT / "notebooks" / f, tmp_path / f)
    nb = nbformat.read(tmp_path / "05_evaluation.ipynb", as_version=4)
    code = next(c for c in nb.cells if c.cell_type == "code")
    code.outputs = [nbformat.v4.new_output("stream", text="hello")]
    nbformat.write(nb, tmp_path / "05_evaluation.ipynb")
    assert any("carries outputs" in p for p in check_notebooks.problems(tmp_path))
