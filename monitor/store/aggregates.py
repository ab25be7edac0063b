"""Window aggregates computed where the data is: bin counts, reliability bins, sums, samples.

The detectors need a window only through a few aggregates: the counts of a score
on fixed bins (KL, PSI, Jensen-Shannon), the count, confidence sum and correct
count per reliability bin (ECE, MCE), sums for the Brier score and the label-free
estimate, and a bounded sample for the tests that need the values themselves
(KS, the adaptive ECE, the bootstrap intervals). Each function here is one SQL
query over the store's events relation (``all_events``, which spans the Parquet
archive, where the store keeps one), so a window of 100M events is reduced inside
DuckDB, which spills to disk beyond its memory limit, and only ``O(n_bins)``
numbers, or the bounded sample, reach numpy.

Bins match numpy bit for bit: the score histogram uses ``np.histogram``'s
equal-width rule (index ``floor((x - lo) * k / (hi - lo))``, corrected against the
edges ``np.linspace(lo, hi, k + 1)``, each computed as linspace computes it, values
outside the range counted in the edge bins), the reliability bins
:func:`detectors.scores.binning.uniform_bin_index`'s right-closed rule
``((m-1)/M, m/M]`` (Guo et al. 2017) with 0 in the first bin.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from monitor.store.queries import SCORE_COLUMNS, Subject, _layout, window_clause


@dataclass(frozen=True)
class ScoreSummary:
    """Count, range and sums of a score column over a window.

    Attributes
    ----------
    n : int
        Events in the window.
    low, high : float or None
        Smallest and largest value (None when ``n == 0``).
    total : float
        Sum of the values.
    total_variance : float
        :math:`\\sum_i x_i (1 - x_i)`, the Bernoulli variance sum of a confidence
        (the label-free estimate's interval, :mod:`detectors.calibration.label_free`).
    """

    n: int
    low: float | None
    high: float | None
    total: float
    total_variance: float


@dataclass(frozen=True)
class ReliabilityBins:
    """Sums per equal-width reliability bin over a window's labelled events.

    Attributes
    ----------
    counts : ndarray of shape (n_bins,), int64
        Labelled events per bin.
    confidence_sum : ndarray of shape (n_bins,), float64
        Sum of their confidences (probability).
    correct_sum : ndarray of shape (n_bins,), float64
        How many of them were answered correctly.
    squared_error_sum : float
        :math:`\\sum_i (c_i - y_i)^2` over the window (Brier 1950).
    """

    counts: np.ndarray
    confidence_sum: np.ndarray
    correct_sum: np.ndarray
    squared_error_sum: float

    @property
    def n(self) -> int:
        """Labelled events in the window."""
        return int(self.counts.sum())


def _column(column: str) -> str:
    if column not in SCORE_COLUMNS:
        raise ValueError(f"column must be one of {SCORE_COLUMNS}, got {column!r}")
    return f"CAST({column} AS DOUBLE)"


def score_summary(
    store: Any, subject: Subject, start: float | None, end: float | None, column: str
) -> ScoreSummary:
    """Count, min, max and sums of ``column`` over the subject's window.

    Raises
    ------
    ValueError
        ``column`` is not one of :data:`~monitor.store.queries.SCORE_COLUMNS`, or ``start > end``.
    """
    x = _column(column)
    events, _ = _layout(store)
    where, params = subject.where()
    win, wparams = window_clause(start, end)
    n, low, high, total, var = store.execute(
        f"SELECT count(*), min({x}), max({x}), coalesce(sum({x}), 0), "
        f"coalesce(sum({x} * (1 - {x})), 0) FROM {events} WHERE {where} AND {win}",
        params + wparams,
    )[0]
    return ScoreSummary(int(n), low, high, float(total), float(var))


def histogram(
    store: Any,
    subject: Subject,
    start: float | None,
    end: float | None,
    column: str,
    edges: np.ndarray,
) -> tuple[np.ndarray, int]:
    """Counts of ``column`` on equal-width ``edges``, as ``np.histogram`` would give them.

    Parameters
    ----------
    edges : ndarray of shape (n_bins + 1,)
        ``np.linspace(lo, hi, n_bins + 1)``, e.g. a fitted detector's ``bin_edges_``.

    Returns
    -------
    counts : ndarray of shape (n_bins,), int64
        Values below ``lo`` counted in the first bin and above ``hi`` in the last.
    n_clipped : int
        How many values lay outside ``[lo, hi]``.

    Raises
    ------
    ValueError
        Bad ``column``, ``start > end``, or fewer than two increasing edges.
    """
    x = _column(column)
    e = np.asarray(edges, dtype=np.float64)
    if e.ndim != 1 or e.size < 2 or not np.all(np.diff(e) > 0):
        raise ValueError(f"edges must be at least two increasing values, got {edges!r}")
    k, lo, hi = e.size - 1, float(e[0]), float(e[-1])
    if not np.array_equal(e, np.linspace(lo, hi, k + 1)):
        raise ValueError("edges must be np.linspace(lo, hi, n_bins + 1)")
    events, _ = _layout(store)
    where, params = subject.where()
    win, wparams = window_clause(start, end)
    # One scan. i0 is numpy's first guess, then one step down or up where the edges say
    # so; edge i is computed as np.linspace does, i * step + lo (the last one: hi), so the
    # comparison is numpy's, bit for bit. Values outside [lo, hi] go to the edge bins.
    step = (hi - lo) / k
    edge = "(CAST(? AS DOUBLE) * {i} + CAST(? AS DOUBLE))"
    lower = edge.format(i="i0")
    upper = f"(CASE WHEN i0 + 1 = {k} THEN CAST(? AS DOUBLE) ELSE {edge.format(i='(i0 + 1)')} END)"
    rows = store.execute(
        f"WITH v AS (SELECT {x} AS x, x < ? OR x > ? AS clipped FROM {events} "
        f"WHERE {where} AND {win}), "
        f"g AS (SELECT x, clipped, least(greatest(CAST(floor((x - ?) * ?) AS BIGINT), 0), "
        f"{k - 1}) AS i0 FROM v) "
        f"SELECT CASE WHEN clipped THEN i0 WHEN x < {lower} THEN i0 - 1 "
        f"WHEN i0 < {k - 1} AND x >= {upper} THEN i0 + 1 ELSE i0 END AS i, count(*), "
        "clipped FROM g GROUP BY ALL",
        [lo, hi] + params + wparams + [lo, k / (hi - lo), step, lo, hi, step, lo],
    )
    counts = np.zeros(k, dtype=np.int64)
    n_clipped = 0
    for i, c, clipped in rows:
        counts[int(i)] += int(c)
        n_clipped += int(c) if clipped else 0
    return counts, n_clipped


def reliability_bins(
    store: Any, subject: Subject, start: float | None, end: float | None, n_bins: int
) -> ReliabilityBins:
    """Count, confidence sum and correct count per right-closed bin of the labelled events.

    The window applies to the *event* time, as in :func:`monitor.store.queries.labelled`.

    Raises
    ------
    ValueError
        ``n_bins < 1`` or ``start > end``.
    """
    if isinstance(n_bins, bool) or not isinstance(n_bins, int) or n_bins < 1:
        raise ValueError(f"n_bins must be a positive int, got {n_bins!r}")
    where, params = subject.where()
    win, wparams = window_clause(start, end)
    step = 1.0 / n_bins  # edge i of np.linspace(0, 1, n_bins + 1) is i * step + 0.0
    rows = store.execute(
        "WITH v AS (SELECT CAST(confidence AS DOUBLE) AS c, CAST(correct AS DOUBLE) AS y "
        f"FROM labelled_events WHERE {where} AND {win}), "
        f"g AS (SELECT c, y, greatest(least(CAST(ceil(c * {n_bins}) AS BIGINT) - 1, "
        f"{n_bins - 1}), 0) AS i0 FROM v), "
        "b AS (SELECT c, y, CASE WHEN i0 > 0 AND c <= CAST(? AS DOUBLE) * i0 + 0.0 THEN i0 - 1 "
        f"WHEN i0 < {n_bins - 1} AND c > CAST(? AS DOUBLE) * (i0 + 1) + 0.0 THEN i0 + 1 "
        "ELSE i0 END AS i FROM g) "
        "SELECT i, count(*), sum(c), sum(y), sum((c - y) * (c - y)) FROM b GROUP BY i",
        params + wparams + [step, step],
    )
    counts = np.zeros(n_bins, dtype=np.int64)
    conf, correct = np.zeros(n_bins), np.zeros(n_bins)
    squared = 0.0
    for i, n, c_sum, y_sum, sq in rows:
        counts[int(i)], conf[int(i)], correct[int(i)] = n, c_sum, y_sum
        squared += float(sq)
    return ReliabilityBins(counts, conf, correct, squared)


def sample(
    store: Any,
    subject: Subject,
    start: float | None,
    end: float | None,
    column: str,
    limit: int,
) -> np.ndarray:
    """At most ``limit`` values of ``column``, chosen by a hash of ``event_id``, shape (n,).

    The same rows on every run (as :func:`monitor.store.queries.states` chooses
    states); every value when the window holds at most ``limit`` events.

    Raises
    ------
    ValueError
        Bad ``column``, ``start > end`` or ``limit < 1``.
    """
    x = _column(column)
    if limit < 1:
        raise ValueError(f"limit must be >= 1, got {limit}")
    events, _ = _layout(store)
    where, params = subject.where()
    win, wparams = window_clause(start, end)
    rows = store.execute(
        f"SELECT list(x) FROM (SELECT {x} AS x FROM {events} WHERE {where} AND {win} "
        "ORDER BY hash(event_id) LIMIT ?)",
        params + wparams + [int(limit)],
    )
    return np.asarray(rows[0][0] or [], dtype=np.float64)


def labelled_sample(
    store: Any, subject: Subject, start: float | None, end: float | None, limit: int
) -> tuple[np.ndarray, np.ndarray]:
    """At most ``limit`` labelled events' confidence (float64) and correctness (bool),
    chosen by a hash of ``event_id``; all of them when the window holds at most ``limit``.

    Raises
    ------
    ValueError
        ``start > end`` or ``limit < 1``.
    """
    if limit < 1:
        raise ValueError(f"limit must be >= 1, got {limit}")
    where, params = subject.where()
    win, wparams = window_clause(start, end)
    rows = store.execute(
        "SELECT list(c), list(y) FROM (SELECT confidence AS c, correct AS y "
        f"FROM labelled_events WHERE {where} AND {win} ORDER BY hash(event_id) LIMIT ?)",
        params + wparams + [int(limit)],
    )
    conf, correct = rows[0]
    return np.asarray(conf or [], dtype=np.float64), np.asarray(correct or [], dtype=bool)
