"""Benchmark: our detectors against evidently on the same data, ratios from one run.

1. Score drift: KL + PSI (fit on the reference, score the current window) and ECE
   on N labelled events, in numpy and as the daemon computes them (bins in DuckDB),
   against evidently's ``ValueDrift(method="kl_div")`` on the same N vs N rows (goal:
   at least 20x faster on the daemon's path). evidently's import is timed apart.
   Then the daemon's whole drift run on one window of 10M and of 100M events generated
   in DuckDB: time and peak memory (``bench/sql_window.py``).
2. Pooled-state drift on 5,000 x 4,096 float32 states: MMD (PCA fit on the
   reference, then score) and the domain classifier (goal: MMD score under 1 s),
   beside evidently's ``EmbeddingsDrift`` (default method, a classifier) on
   5,000 x 768.

Usage::

    python bench/detectors.py            # 1M events, 10M and 100M windows, 5,000 x 4,096 states
    python bench/detectors.py --quick    # 100k events, a 1M window, 1,000 x 4,096 (a smoke run)

Each timing is the best of ``--repeat`` runs (default 3; 1 for evidently's
embeddings). The machine is shared, so read the ratios, not the absolute times.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from detectors.calibration.calibration_error import (  # noqa: E402
    CalibrationError,
    expected_calibration_error,
)
from detectors.scores.kl import KLDivergence  # noqa: E402
from detectors.scores.psi import PopulationStabilityIndex  # noqa: E402
from detectors.states.domain_classifier import DomainClassifierAUROC  # noqa: E402
from detectors.states.mmd import MaximumMeanDiscrepancy  # noqa: E402


def best_of(fn: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    """Smallest wall time of ``repeat`` calls (seconds) and the last result."""
    best, out = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def bench_scores(n: int, repeat: int) -> dict[str, float]:
    rng = np.random.default_rng(0)
    ref, cur = rng.beta(5, 2, n), rng.beta(4, 2, n)
    correct = rng.uniform(size=n) < cur

    def ours() -> tuple[float, float, float]:
        kl = KLDivergence().fit(ref).score(cur).statistic
        psi = PopulationStabilityIndex().fit(ref).score(cur).statistic
        return kl, psi, expected_calibration_error(cur, correct)

    t_ours, (kl, psi, ece) = best_of(ours, repeat)

    def shared() -> tuple[float, float, float]:
        # As the daemon does (monitor/detection/scoring.py): each window binned once for KL and PSI.
        det = KLDivergence().fit(ref)
        counts, clipped = det.bin_counts(cur)
        kl = det.score_counts(counts, n_clipped=clipped).statistic
        psi_det = PopulationStabilityIndex().fit_counts(det.reference_counts_, det.bin_edges_)
        psi = psi_det.score_counts(counts, n_clipped=clipped).statistic
        return kl, psi, expected_calibration_error(cur, correct)

    t_shared, shared_out = best_of(shared, repeat)
    assert shared_out == (kl, psi, ece)
    t_sql, sql_out = best_of(_in_duckdb(ref, cur, correct), repeat)
    assert np.allclose(sql_out, (kl, psi, ece), rtol=1e-9), (sql_out, (kl, psi, ece))

    os.environ.setdefault("DO_NOT_TRACK", "1")
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pandas as pd
        from evidently import DataDefinition, Dataset, Report
        from evidently.metrics import ValueDrift
    t_import = time.perf_counter() - t0
    ref_df, cur_df = pd.DataFrame({"confidence": ref}), pd.DataFrame({"confidence": cur})

    def theirs() -> float:
        definition = DataDefinition(numerical_columns=["confidence"])
        snap = Report([ValueDrift(column="confidence", method="kl_div")]).run(
            Dataset.from_pandas(cur_df, data_definition=definition),
            Dataset.from_pandas(ref_df, data_definition=definition),
        )
        return float(snap.dict()["metrics"][0]["value"])

    t_evidently, ev_kl = best_of(theirs, repeat)
    print(f"\n== score drift: {n:,} reference vs {n:,} current events ==")
    print(
        f"ours  KL + PSI (fit + score) + ECE   {t_ours:8.3f} s   KL {kl:.4f} nats, "
        f"PSI {psi:.4f}, ECE {ece:.4f}"
    )
    print(
        f"evidently ValueDrift(kl_div)         {t_evidently:8.3f} s   KL {ev_kl:.4f} "
        "(its own bins and direction)"
    )
    print(f"ours, windows binned once            {t_shared:8.3f} s   same numbers")
    print(f"ours in DuckDB (the daemon's path)   {t_sql:8.3f} s   same numbers (SQL bins)")
    print(f"evidently import (once per process)  {t_import:8.3f} s")
    print(f"ratio evidently / ours               {t_evidently / t_ours:8.1f}x")
    print(f"ratio evidently / ours, binned once  {t_evidently / t_shared:8.1f}x")
    ratio = t_evidently / t_sql
    print(f"ratio evidently / ours in DuckDB     {ratio:8.1f}x  (goal >= 20x: {ratio / 20:.2f})")
    return {"ours": t_ours, "shared": t_shared, "evidently": t_evidently, "import": t_import}


def _in_duckdb(ref: np.ndarray, cur: np.ndarray, correct: np.ndarray) -> Callable[[], Any]:
    """KL + PSI + ECE as the daemon computes them: bins and sums in SQL, numpy on counts."""
    import duckdb
    import pandas as pd

    from monitor.store import aggregates
    from monitor.store.queries import Subject

    con = duckdb.connect()
    n = ref.size
    frame = pd.DataFrame({"event_id": np.arange(2 * n), "ts": np.arange(2 * n, dtype=float)})
    frame = frame.assign(model_id="m", probe_version="v1", tag="t", raw_logit=0.0,
                         confidence=np.concatenate([ref, cur]),
                         correct=np.concatenate([np.zeros(n, bool), correct]))  # fmt: skip
    con.register("frame", frame)
    con.execute("CREATE TABLE events AS SELECT * EXCLUDE (correct) FROM frame")
    con.execute("CREATE TABLE labelled_events AS SELECT * FROM frame WHERE ts >= ?", [float(n)])

    class Store:
        def execute(self, sql: str, params: list | None = None) -> list[tuple]:
            return con.execute(sql, params or []).fetchall()

    store, subject, refw, curw = Store(), Subject("m", "v1"), (0.0, float(n)), (float(n), 2.0 * n)

    def run() -> tuple[float, float, float]:
        edges = np.linspace(0.0, 1.0, 11)
        ref_counts, _ = aggregates.histogram(store, subject, *refw, "confidence", edges)
        counts, clipped = aggregates.histogram(store, subject, *curw, "confidence", edges)
        kl = KLDivergence().fit_counts(ref_counts, edges).score_counts(counts).statistic
        psi = PopulationStabilityIndex().fit_counts(ref_counts, edges).score_counts(counts)
        bins = aggregates.reliability_bins(store, subject, *curw, 15)
        ece = (
            CalibrationError(n_bootstrap=0)
            .fit()
            .score_bins(bins.counts, bins.confidence_sum, bins.correct_sum, bins.squared_error_sum)
        )
        return kl, psi.statistic, ece.statistic

    return run


def bench_windows(sizes: list[int]) -> None:
    """The daemon's drift run on one window of each size, generated in DuckDB."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import sql_window

    print("\n== a drift run on one huge window, in DuckDB (half reference, half current) ==")
    print("events        generate   drift run   peak RSS (imports alone)   file     KL      ECE")
    for n in sizes:
        r = sql_window.run(n)
        print(
            f"{n:>12,}  {r['generate_seconds']:7.1f} s  {r['seconds']:8.2f} s   "
            f"{r['peak_rss_mib']:5d} MiB ({r['baseline_rss_mib']} MiB)       "
            f"{r['file_mib']:5d} MiB  {r['kl']:.4f}  {r['ece']:.4f}"
        )
        if r["failed"]:
            print(f"  failed: {r['failed']}")
    limit = r["memory_limit"]
    print(f"DuckDB memory_limit {limit}; numpy sees only bin counts and a bounded sample")


def _states(rng: np.random.Generator, n: int, dim: int) -> tuple[np.ndarray, np.ndarray]:
    """Hidden-state-like windows: 64 latent factors mixed into ``dim`` features plus noise;
    the current window's factors are shifted by 0.25 sd in 8 of them."""
    mixing = rng.normal(size=(64, dim)).astype(np.float32) / 8.0
    z_ref, z_cur = rng.normal(size=(n, 64)), rng.normal(size=(n, 64))
    z_cur[:, :8] += 0.25
    noise = 0.5
    ref = (z_ref @ mixing + noise * rng.normal(size=(n, dim))).astype(np.float32)
    cur = (z_cur @ mixing + noise * rng.normal(size=(n, dim))).astype(np.float32)
    return ref, cur


def bench_states(n: int, dim: int, repeat: int) -> dict[str, float]:
    rng = np.random.default_rng(1)
    ref, cur = _states(rng, n, dim)

    mmd = MaximumMeanDiscrepancy()
    t_fit, _ = best_of(lambda: mmd.fit(ref), repeat)
    t_score, r = best_of(lambda: mmd.score(cur), repeat)
    dc = DomainClassifierAUROC().fit(ref)
    t_dc, r_dc = best_of(lambda: dc.score(cur), repeat)
    print(f"\n== pooled-state drift: {n:,} x {dim:,} float32 per window ==")
    print(f"ours MMD fit (PCA on the reference)  {t_fit:8.3f} s   (once per reference)")
    print(
        f"ours MMD score                       {t_score:8.3f} s   MMD^2 {r.statistic:.4g}, "
        f"p {r.p_value:.3g}, drift {r.is_drift}   (goal < 1 s)"
    )
    print(f"ours domain classifier score         {t_dc:8.3f} s   AUROC {r_dc.statistic:.3f}")
    return {"mmd_fit": t_fit, "mmd_score": t_score, "domain": t_dc}


def bench_evidently_embeddings(n: int, dim: int) -> float:
    import pandas as pd
    from evidently import DataDefinition, Dataset, Report
    from evidently.metrics import EmbeddingsDrift

    rng = np.random.default_rng(2)
    cols = [f"e{i}" for i in range(dim)]
    ref_arr, cur_arr = _states(rng, n, dim)
    ref = pd.DataFrame(ref_arr, columns=cols)
    cur = pd.DataFrame(cur_arr, columns=cols)
    definition = DataDefinition(embeddings={"state": cols})

    def theirs() -> float:
        snap = Report([EmbeddingsDrift(embeddings_name="state")]).run(
            Dataset.from_pandas(cur, data_definition=definition),
            Dataset.from_pandas(ref, data_definition=definition),
        )
        return float(snap.dict()["metrics"][0]["value"])

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t, score = best_of(theirs, 1)
    print(
        f"evidently EmbeddingsDrift {n:,} x {dim}    {t:8.3f} s   score {score:.3f} "
        "(default method: a classifier's ROC AUC)"
    )
    return t


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100k events, 1,000-row states")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="BLAS/OpenMP threads (threadpoolctl); on a shared, loaded machine 1 avoids "
        "oversubscription. Default: the library default.",
    )
    parser.add_argument(
        "--evidently-rows",
        type=int,
        default=None,
        help="Rows for EmbeddingsDrift (default: as ours)",
    )
    parser.add_argument("--only", choices=("scores", "windows", "states"), default=None)
    parser.add_argument(
        "--windows",
        default=None,
        help="Comma-separated window sizes for the drift run in DuckDB "
        "(default 10000000,100000000; --quick: 1000000)",
    )
    args = parser.parse_args(argv)
    if args.threads is not None:
        from threadpoolctl import threadpool_limits

        threadpool_limits(args.threads)
    n_events = 100_000 if args.quick else 1_000_000
    n_states = 1_000 if args.quick else 5_000
    print(
        f"BLAS threads: {args.threads or 'library default'}, cpus: {os.cpu_count()}, "
        f"load average: {os.getloadavg()[0]:.1f}"
    )
    if args.only in (None, "scores"):
        bench_scores(n_events, args.repeat)
    if args.only in (None, "windows"):
        sizes = args.windows or ("1000000" if args.quick else "10000000,100000000")
        bench_windows([int(v) for v in sizes.split(",")])
    if args.only in ("scores", "windows"):
        return
    states = bench_states(n_states, 4096, args.repeat)
    t_ev = bench_evidently_embeddings(args.evidently_rows or n_states, 768)
    print(f"ratio evidently 768-d / ours 4096-d  {t_ev / states['mmd_score']:8.1f}x (MMD score)")


if __name__ == "__main__":
    main()
