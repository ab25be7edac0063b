"""Window aggregates computed where the data is: bin counts, reliability bins, sums, samples.

The detectors need a window only through a few aggregates: the counts of a score
on fixed bins (KL, PSI, Jensen-Shannon), the count, confidence sum and correct
count per reliability bin (ECE, MCE), sums for the Brier score and the label-free
estimate, and a bounded sample for the tests that need the values themselves
(KS, the adaptive ECE, the bootstrap intervals). Each function here is one SQL
query (a second for bin counts within rounding of an edge) over the store's
events relation (``all_events``, which spans the Parquet archive, where the
store keeps one), so a window of 100M events is reduced inside
DuckDB, which spills to disk beyond its memory limit, and only ``O(n_bins)``
numbers, or the bounded sample, reach numpy.

The bin counts (:mod:`monitor.store.bins`) match numpy's bit for bit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from monitor.store.bins import ReliabilityBins, histogram, reliability_bins, score_column
from monitor.store.queries import Subject, _layout, window_clause

__all__ = [
    "ReliabilityBins",
    "ScoreSummary",
    "histogram",
    "labelled_sample",
    "reliability_bins",
    "sample",
    "score_summary",
]


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


def score_summary(
    store: Any, subject: Subject, start: float | None, end: float | None, column: str
) -> ScoreSummary:
    """Count, min, max and sums of ``column`` over the subject's window.

    Raises
    ------
    ValueError
        ``column`` is not one of :data:`~monitor.store.queries.SCORE_COLUMNS`, or ``start > end``.
    """
    x = score_column(column)
    events, _ = _layout(store)
    where, params = subject.where()
    win, wparams = window_clause(start, end)
    n, low, high, total, var = store.execute(
        f"SELECT count(*), min({x}), max({x}), coalesce(sum({x}), 0), "
        f"coalesce(sum({x} * (1 - {x})), 0) FROM {events} WHERE {where} AND {win}",
        params + wparams,
    )[0]
    return ScoreSummary(int(n), low, high, float(total), float(var))


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
    x = score_column(column)
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
