"""benchmarks/gpu_throughput.py runs end to end (on the CPU, tiny shapes) and prints its table."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_the_gpu_benchmark_script_runs_and_prints_both_models() -> None:
    result = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "gpu_throughput.py"), "--smoke", "--seconds", "0.5"],
        capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    rows = [line for line in result.stdout.splitlines() if line.startswith("| 3D SegResNet") or line.startswith("| 2D DenseNet121")]
    assert len(rows) == 2
    for row in rows:
        rates = [float(cell) for cell in row.strip("|").split("|")[3:6]]
        assert all(rate > 0 for rate in rates)
