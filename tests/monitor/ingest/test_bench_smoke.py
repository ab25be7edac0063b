"""The ingest benchmarks run end to end at tiny sizes: their own checks hold (every message
stored, every id once across shares, labels beside their events, the same drift statistics);
the figures are not asserted."""

import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[3] / "bench"


def _run(*args: str) -> str:
    out = subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, timeout=300
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout


def test_ingest_bench_runs():
    out = _run(str(BENCH / "ingest.py"), "--events", "4000", "--repeat", "1")
    assert out.count("(goal ") == 2 and out.count("end to end via embedded Tansu") == 2


def test_scale_out_bench_runs():
    out = _run(str(BENCH / "scale_out.py"), "--events", "2000")
    assert "stored 2,000 of 2,000, every id once, every label beside its event" in out
    assert "the same statistics" in out
