"""benchmarks/gpu_suite.sh in its CPU smoke mode (tiny model and sizes; about 45 s on 2 busy cores)."""

from __future__ import annotations

import os
import subprocess
import sys

from helpers.paths import ROOT


def test_gpu_suite_tiny_cpu(tmp_path):
    """``benchmarks/gpu_suite.sh --device cpu --tiny``: every step runs and writes its figures."""
    out = tmp_path / "suite.txt"
    proc = subprocess.run(["bash", str(ROOT / "benchmarks" / "gpu_suite.sh"), "--device", "cpu", "--tiny", "--out",
                           str(out)], cwd=ROOT, capture_output=True, text=True, timeout=240,
                          env={**os.environ, "PYTHON": sys.executable})
    text = out.read_text()
    assert proc.returncode == 0, text[-3000:] + proc.stderr[-2000:]
    for line in ("speedup: ", "forward pass, ms per image", "features thesis_rgb32:", "per-image success agreement:"):
        assert line in text, line
    summary = text.split("=== summary")[1]
    assert summary.count(" ok ") == 3 and "exit" not in summary and "timeout" not in summary
