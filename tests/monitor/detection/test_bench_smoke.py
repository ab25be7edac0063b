"""The detector benchmark runs at tiny sizes (figures not asserted): the daemon's SQL path gives
the numpy detectors' numbers, and a generated window is scored in bounded memory."""

import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[3] / "bench" / "detectors.py"


def test_detector_bench_runs():
    out = subprocess.run(
        [sys.executable, str(BENCH), "--quick", "--repeat", "1", "--only", "scores"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    assert "ours in DuckDB (the daemon's path)" in out.stdout and "(goal >= 20x:" in out.stdout
    out = subprocess.run(
        [sys.executable, str(BENCH), "--only", "windows", "--windows", "200000"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    assert "200,000" in out.stdout and "memory_limit" in out.stdout
