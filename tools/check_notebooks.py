"""CI check of the committed notebooks: no outputs, and every .ipynb in sync with its jupytext .py pair.

    python tools/check_notebooks.py [notebooks/]

Exits 1 naming each problem and its fix. A pair is in sync when both files hold the same cells (type,
source, tags); after editing either, ``jupytext --sync notebooks/NN_name.ipynb`` updates the other.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import jupytext


def cells_of(nb) -> list[tuple[str, str, tuple[str, ...]]]:
    return [(c.cell_type, c.source.strip(), tuple(c.metadata.get("tags", []))) for c in nb.cells]


def problems(folder: Path) -> list[str]:
    out = []
    ipynbs = sorted(folder.glob("[0-9][0-9]_*.ipynb"))
    for nb_path in ipynbs:
        raw = json.loads(nb_path.read_text())
        if any(c.get("outputs") or c.get("execution_count") for c in raw["cells"] if c["cell_type"] == "code"):
            out.append(f"{nb_path} carries outputs: strip them (nbstripout {nb_path})")
        py = nb_path.with_suffix(".py")
        if not py.exists():
            out.append(f"{nb_path} has no paired {py.name}: run jupytext --set-formats ipynb,py:percent {nb_path}")
            continue
        a, b = cells_of(jupytext.read(nb_path)), cells_of(jupytext.read(py))
        if a != b:
            where = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
            out.append(f"{nb_path.name} and {py.name} differ (first at cell {where + 1}; {len(a)} vs {len(b)} cells): "
                       f"run jupytext --sync {nb_path} after editing either")
    for py in sorted(folder.glob("[0-9][0-9]_*.py")):
        if not py.with_suffix(".ipynb").exists():
            out.append(f"{py} has no paired notebook: run jupytext --sync {py}")
    return out


def main(argv: list[str]) -> int:
    folder = Path(argv[1] if len(argv) > 1 else "notebooks")
    found = problems(folder)
    for p in found:
        print(p, file=sys.stderr)
    if found:
        return 1
    print(f"{len(list(folder.glob('[0-9][0-9]_*.ipynb')))} notebooks: no outputs, every pair in sync")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
