"""A drift run on one huge window: the daemon's scoring in DuckDB, time and peak memory.

``python bench/sql_window.py N [--memory-limit 2GB]`` generates, in DuckDB, a store-shaped
file of N events (half reference, half current, the current's confidence shifted) with
one in ten labelled, then runs :func:`monitor.detection.scoring.score_window` on it in a
fresh process (score detectors on both signals, calibration, the label-free estimate;
no pooled states) and prints one JSON line: seconds, the process's peak resident memory
(MiB, ``VmHWM``; ``baseline_rss_mib``: the same after the imports, before any data),
and the KL divergence and ECE it found. ``bench/detectors.py`` runs it for 10M and 100M.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DT = 1e-3  # seconds between generated events


class _Store:
    """The slice of :class:`monitor.store.database.Store` the window queries use."""

    def __init__(self, path: Path, memory_limit: str) -> None:
        self._con = duckdb.connect(str(path), read_only=True)
        self._con.execute(f"SET memory_limit = '{memory_limit}'")

    def execute(self, sql: str, params: list | None = None) -> list[tuple]:
        return self._con.execute(sql, params or []).fetchall()


def peak_rss_mib() -> float:
    """Peak resident memory of this process, MiB: ``VmHWM`` (reset by exec, unlike
    ``ru_maxrss``, which a child inherits from a parent that generated the data)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _uniform(column: str, stream: int) -> str:
    """SQL for a uniform draw in [0, 1) fixed by ``column`` and ``stream``: the same window on
    every run and every thread count (DuckDB's ``random()`` is seeded per thread). Streams 0
    and 1 hash disjoint integers (``hash(x, s)`` of two arguments is correlated across ``s``)."""
    return f"(hash({column} * 2 + {stream}) / 18446744073709551616.0)"


def generate(path: Path, n: int) -> float:
    """Write N events and N / 10 labels to ``path``; return the seconds it took."""
    t0 = time.perf_counter()
    con = duckdb.connect(str(path))
    half = n // 2
    con.execute(
        "CREATE TABLE events AS SELECT i AS event_id, i * ? AS ts, 'm' AS model_id, "
        "'v1' AS probe_version, 't' AS tag, c AS confidence, "
        "ln(greatest(c, 1e-6) / greatest(1 - c, 1e-6)) AS raw_logit FROM ("
        f"SELECT i, pow({_uniform('i', 0)}, CASE WHEN i < ? THEN 0.25 ELSE 0.4 END) AS c "
        "FROM range(?) t(i))",
        [DT, half, n],
    )
    con.execute(
        f"CREATE TABLE labels AS SELECT event_id, {_uniform('event_id', 1)} < confidence - "
        "CASE WHEN event_id < ? THEN 0 ELSE 0.15 END AS correct FROM events "
        "WHERE event_id % 10 = 0",
        [half],
    )
    con.execute(
        "CREATE VIEW labelled_events AS SELECT e.*, l.correct FROM labels AS l "
        "JOIN events AS e USING (event_id)"
    )
    con.close()
    return time.perf_counter() - t0


def score(path: Path, n: int, memory_limit: str) -> dict:
    """One drift run over the file's two halves, in this process."""
    from monitor.config.load import load_config
    from monitor.detection.scoring import Scored, score_window
    from monitor.store.queries import Subject

    cfg = load_config(ROOT / "config.yaml")
    store = _Store(path, memory_limit)
    baseline = peak_rss_mib()  # the imports, no data yet
    half = n // 2
    t0 = time.perf_counter()
    out = score_window(
        cfg, store, Subject("m", "v1"), (0.0, half * DT), (half * DT, n * DT + 1), states=False
    )
    seconds = time.perf_counter() - t0
    found = {
        f"{r.signal}/{r.result.detector}": r.result.statistic for r in out if isinstance(r, Scored)
    }
    failed = [f"{r.signal}/{r.detector}: {r.error}" for r in out if not isinstance(r, Scored)]
    return {
        "n_events": n,
        "seconds": round(seconds, 2),
        "peak_rss_mib": round(peak_rss_mib()),
        "baseline_rss_mib": round(baseline),
        "memory_limit": memory_limit,
        "kl": found.get("confidence/kl_divergence"),
        "ece": found.get("confidence/calibration_error"),
        "failed": failed,
    }


def run(n: int, memory_limit: str = "2GB") -> dict:
    """Generate a window of ``n`` events in a temporary file and score it in a fresh process."""
    with tempfile.TemporaryDirectory(dir=ROOT / "bench") as tmp:
        path = Path(tmp) / "window.duckdb"
        gen = generate(path, n)
        proc = subprocess.run(
            [sys.executable, __file__, str(n), "--score", str(path)]
            + ["--memory-limit", memory_limit],
            check=True,
            capture_output=True,
            text=True,
        )
        result = json.loads(proc.stdout.strip().splitlines()[-1])
        result["generate_seconds"] = round(gen, 1)
        result["file_mib"] = round(path.stat().st_size / 2**20)
        return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("n", type=int)
    parser.add_argument("--memory-limit", default="2GB")
    parser.add_argument("--score", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.score is not None:
        print(json.dumps(score(args.score, args.n, args.memory_limit)))
    else:
        print(json.dumps(run(args.n, args.memory_limit)))


if __name__ == "__main__":
    main()
