#!/usr/bin/env python
"""What a notebook pays before its first line of work: the imports of its first cell, in fresh processes.

    python benchmarks/startup.py            # 3 fresh processes per variant, medians
    python benchmarks/startup.py --repeats 5

Every notebook (and every nbval kernel, and ``python -m helpers.score``) starts a new Python process and imports
``helpers.reporting.figures`` and ``helpers.experiments.stages``. Variants, each in its own fresh process:

- ``notebook``: those imports as they are now (the ResNet is :mod:`helpers.models.resnet`);
- ``+ torchvision``: the same after ``import torchvision``, what importing ``torchvision.models.resnet`` cost
  (torchvision's ``ops`` import ``torch._dynamo``);
- ``+ optimizer``: the same, then one ``torch.optim.SGD``, whose first construction in a process imports
  ``torch._dynamo`` (``helpers.models.training.train`` builds none for a finished checkpoint).

Prints seconds per variant and the ratio to ``notebook``. Where ``PYTHONDONTWRITEBYTECODE`` is set, what it
measures depends on whether the venv's byte code was written (``make venv`` does, with ``compileall``): run it
before and after ``python -m compileall -qq .venv/lib`` to see that step's worth. The issue it serves: ``make
test`` within 15 minutes (README, *Measured*).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

FIRST_CELL = "from helpers.reporting import figures; from helpers.experiments import stages"
VARIANTS = {
    "notebook": FIRST_CELL,
    "+ torchvision": "import torchvision; " + FIRST_CELL,
    "+ optimizer": FIRST_CELL + "; import torch; torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)",
}


def seconds(code: str) -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    for code in VARIANTS.values():      # warm the file cache (byte code is written only where Python may write it)
        seconds(code)
    times = {name: statistics.median(seconds(code) for _ in range(args.repeats)) for name, code in VARIANTS.items()}
    base = times["notebook"]
    for name, t in times.items():
        print(f"{name:15s} {t:6.2f} s   {t / base:4.2f}x of notebook")


if __name__ == "__main__":
    main()
