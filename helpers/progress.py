"""Progress a person can see, in JupyterLab and on the terminal of a headless run.

In a notebook opened by a person, long loops show ``tqdm.auto`` bars. Under ``run_all.py`` the
notebooks run in a papermill kernel whose widgets nobody sees, so the runner sets
``PIXLE_PROGRESS=lines``: loops then print short ``[progress]`` lines (at most one every few
seconds, plus the last), which the runner forwards to the terminal while it hides other cell output.
"""

from __future__ import annotations

import os
import time
from typing import Iterable, Iterator, TypeVar

T = TypeVar("T")
PREFIX = "[progress]"
MODE_ENV = "PIXLE_PROGRESS"


def line_mode() -> bool:
    """True under ``run_all.py`` (progress as printed lines instead of widgets)."""
    return os.environ.get(MODE_ENV) == "lines"


def report(message: str) -> None:
    """One progress line: forwarded to the terminal by ``run_all.py``, printed as is in a notebook."""
    print(f"{PREFIX} {message}" if line_mode() else message, flush=True)


def progress_iter(items: Iterable[T], desc: str, unit: str = "items", enabled: bool = True,
                  total: int | None = None, every_s: float = 10.0) -> Iterator[T]:
    """Iterate ``items`` with a tqdm bar (interactive) or throttled ``[progress]`` lines (headless).

    ``unit`` is plural ("clips", "batches"): the headless line reads "features train: 30/30 clips, 2 s".
    """
    if not enabled:
        yield from items
        return
    total = total if total is not None else (len(items) if hasattr(items, "__len__") else None)  # type: ignore[arg-type]
    if not line_mode():
        from tqdm.auto import tqdm

        yield from tqdm(items, desc=desc, unit=unit, total=total, leave=False)
        return
    t0 = last = time.perf_counter()
    i = 0
    for i, item in enumerate(items, start=1):
        yield item
        now = time.perf_counter()
        if now - last >= every_s or (total is not None and i == total):
            of = f"/{total}" if total is not None else ""
            report(f"{desc}: {i}{of} {unit}, {now - t0:.0f} s")
            last = now
