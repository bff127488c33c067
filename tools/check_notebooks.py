"""Fail if any committed notebook carries outputs or execution counts (CI runs this)."""
import json
import sys
from pathlib import Path

bad = []
for nb in sorted(Path(sys.argv[1] if len(sys.argv) > 1 else "notebooks").glob("*.ipynb")):
    cells = json.loads(nb.read_text())["cells"]
    if any(c.get("outputs") or c.get("execution_count") for c in cells if c["cell_type"] == "code"):
        bad.append(str(nb))
if bad:
    sys.exit("notebooks with outputs (strip them: nbstripout FILE): " + ", ".join(bad))
print("notebooks carry no outputs")
