"""The overhead benchmark runs end to end (tiny sizes; the figures themselves are not asserted)."""

import runpy
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench" / "collector_overhead.py"


def test_collector_overhead_bench_runs(capsys):
    main = runpy.run_path(str(BENCH))["main"]
    results = main(["--requests", "2", "--width", "64", "--layers", "2", "--max-new-tokens", "2"])
    assert set(results) == {"broker_up", "broker_down", "direct"}
    assert results["direct"]["own_ms"] > 0 and results["broker_up"]["bare_p50"] > 0
    out = capsys.readouterr().out
    assert "p50 ratio" in out and "spilled to disk" in out
