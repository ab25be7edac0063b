"""Bin counts of a window in SQL, equal to numpy's, in one plain ``GROUP BY`` where it can.

Two aggregates reduce a window to ``O(n_bins)`` numbers: the counts of a score on
a drift detector's equal-width bins (KL, PSI, Jensen-Shannon) and the count,
confidence sum and correct count per reliability bin (ECE, MCE, Brier). Both must
equal the numpy detectors' bins bit for bit (:func:`detectors.scores.binning.uniform_bin_index`):
left-closed ``[e_i, e_{i+1})`` score bins as ``np.histogram`` draws them, values
outside the range counted in the edge bins; right-closed ``(e_i, e_{i+1}]``
reliability bins with 0 in the first (Guo et al. 2017).

The arithmetic index ``floor((x - lo) * k / (hi - lo))`` can land one bin off
for a value within rounding of an edge. Rather than correcting every row against
its edges (twice the cost of the scan), each query groups by the arithmetic index
and also returns each group's smallest and largest value: when every group lies
inside its bin's edges, which it does unless a value sits within rounding of an
edge, the counts are exact as they stand. Otherwise the window is counted again
with the per-row correction (numpy's own rule, written in SQL).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from monitor.store.queries import SCORE_COLUMNS, Subject, _layout, window_clause


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


def score_column(column: str) -> str:
    """``column`` as a DOUBLE expression.

    Raises
    ------
    ValueError
        ``column`` is not one of :data:`~monitor.store.queries.SCORE_COLUMNS`.
    """
    if column not in SCORE_COLUMNS:
        raise ValueError(f"column must be one of {SCORE_COLUMNS}, got {column!r}")
    return f"CAST({column} AS DOUBLE)"


def _check_edges(edges: np.ndarray) -> np.ndarray:
    e = np.asarray(edges, dtype=np.float64)
    if e.ndim != 1 or e.size < 2 or not np.all(np.diff(e) > 0):
        raise ValueError(f"edges must be at least two increasing values, got {edges!r}")
    if not np.array_equal(e, np.linspace(e[0], e[-1], e.size)):
        raise ValueError("edges must be np.linspace(lo, hi, n_bins + 1)")
    return e


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
    counts = bucket_histograms(store, subject, start, end, column, edges, width=None)
    return counts.get(None) or (np.zeros(len(edges) - 1, dtype=np.int64), 0)


def bucket_histograms(
    store: Any,
    subject: Subject,
    start: float | None,
    end: float | None,
    column: str,
    edges: np.ndarray,
    width: float | None = 86400.0,
) -> dict[float | None, tuple[np.ndarray, int]]:
    """:func:`histogram` per bucket of ``width`` seconds of event time (a UTC day by default).

    Parameters
    ----------
    width : float or None
        Bucket width, seconds; buckets start at multiples of it. None: one bucket.

    Returns
    -------
    dict of float or None -> (ndarray of shape (n_bins,), int)
        Bucket start (epoch seconds; None when ``width`` is None) to its counts and
        clipped count, sorted, for the buckets holding events.

    Raises
    ------
    ValueError
        As :func:`histogram`, or ``width <= 0``.
    """
    x = score_column(column)
    e = _check_edges(edges)
    if width is not None and not width > 0:
        raise ValueError(f"width must be > 0 seconds, got {width!r}")
    # one bucket: no bucket column at all (grouping by a constant costs 3/4 of the scan)
    d = "" if width is None else "d, "
    bucket = "" if width is None else f", floor(ts / {float(width)!r}) * {float(width)!r} AS d"
    k, lo, hi = e.size - 1, float(e[0]), float(e[-1])
    events, _ = _layout(store)
    where, params = subject.where()
    win, wparams = window_clause(start, end)
    relation = f"(SELECT {x} AS x{bucket} FROM {events} WHERE {where} AND {win})"
    # clamped before the cast, so a value far outside the range cannot overflow (a CASE:
    # DuckDB's least / greatest cost as much again as the rest of the scan)
    groups = store.execute(
        f"SELECT {d}CAST(floor(CASE WHEN y < -1 THEN -1.0 WHEN y > {k} THEN {float(k)!r} "
        f"ELSE y END) AS BIGINT) AS i, count(*), min(x), max(x) FROM (SELECT {d}x, "
        f"(x - ?) * ? AS y FROM {relation}) GROUP BY {d}i",
        [lo, k / (hi - lo)] + params + wparams,
    )
    by_bucket: dict[float | None, list[tuple]] = {}
    for row in groups:
        key = None if width is None else float(row[0])
        by_bucket.setdefault(key, []).append(row[-4:])
    out = {d: counts_from_groups(g, e) for d, g in by_bucket.items()}
    if any(v is None for v in out.values()):
        out = _exact_histograms(store, relation, d, e, params + wparams)
    return dict(sorted(out.items(), key=lambda item: -np.inf if item[0] is None else item[0]))


def counts_from_groups(
    groups: list[tuple[int, int, float, float]], edges: np.ndarray
) -> tuple[np.ndarray, int] | None:
    """Score-bin counts from ``(index, count, min, max)`` groups, or None where unsure.

    Group ``i`` goes to bin ``clip(i, 0, k - 1)``; that is exact when its values all
    lie inside the bin's edges (left-closed, the edge bins open outwards) and are
    all inside ``[lo, hi]`` or all outside it. None when any group fails either test.
    """
    k, lo, hi = edges.size - 1, float(edges[0]), float(edges[-1])
    counts = np.zeros(k, dtype=np.int64)
    n_clipped = 0
    for i, n, low, high in groups:
        j = min(max(int(i), 0), k - 1)
        if (j > 0 and low < edges[j]) or (j < k - 1 and high >= edges[j + 1]):
            return None
        if high < lo or low > hi:
            n_clipped += int(n)
        elif low < lo or high > hi:
            return None
        counts[j] += int(n)
    return counts, n_clipped


def _exact_histograms(
    store: Any, relation: str, d: str, e: np.ndarray, params: list[Any]
) -> dict[float | None, tuple[np.ndarray, int]]:
    """Counts with numpy's per-value correction: one step down or up where the edges say."""
    k, lo, hi = e.size - 1, float(e[0]), float(e[-1])
    # edge i is computed as np.linspace does, i * step + lo (the last one: hi)
    step = (hi - lo) / k
    edge = "(CAST(? AS DOUBLE) * {i} + CAST(? AS DOUBLE))"
    lower = edge.format(i="i0")
    upper = f"(CASE WHEN i0 + 1 = {k} THEN CAST(? AS DOUBLE) ELSE {edge.format(i='(i0 + 1)')} END)"
    rows = store.execute(
        f"WITH v AS (SELECT {d}x, x < ? OR x > ? AS clipped FROM {relation}), "
        f"g AS (SELECT {d}x, clipped, CAST(least(greatest(floor((x - ?) * ?), 0), {k - 1}) "
        "AS BIGINT) AS i0 FROM v) "
        f"SELECT {d}CASE WHEN clipped THEN i0 WHEN x < {lower} THEN i0 - 1 "
        f"WHEN i0 < {k - 1} AND x >= {upper} THEN i0 + 1 ELSE i0 END AS i, count(*), "
        "clipped FROM g GROUP BY ALL",
        [lo, hi] + params + [lo, k / (hi - lo), step, lo, hi, step, lo],
    )
    out: dict[float | None, tuple[np.ndarray, int]] = {}
    for row in rows:
        key, (i, c, clipped) = (float(row[0]) if d else None), row[-3:]
        counts, n_clipped = out.get(key) or (np.zeros(k, dtype=np.int64), 0)
        counts[int(i)] += int(c)
        out[key] = (counts, n_clipped + (int(c) if clipped else 0))
    return out


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
    relation = (
        "(SELECT CAST(confidence AS DOUBLE) AS c, CAST(correct AS DOUBLE) AS y "
        f"FROM labelled_events WHERE {where} AND {win})"
    )
    sums = "count(*), sum(c), sum(y), sum((c - y) * (c - y))"
    m = float(n_bins)
    groups = store.execute(
        f"SELECT CAST(ceil(CASE WHEN cm < 1 THEN 1.0 WHEN cm > {m!r} THEN {m!r} ELSE cm END) "
        f"AS BIGINT) - 1 AS i, {sums}, min(c), max(c) "
        f"FROM (SELECT c, y, c * {m!r} AS cm FROM {relation}) GROUP BY i",
        params + wparams,
    )
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    inside = all(
        (i == 0 or low > edges[i]) and (i == n_bins - 1 or high <= edges[i + 1])
        for i, *_, low, high in groups
    )
    if not inside:  # numpy's per-value correction; edge i is i * step + 0.0, as linspace's
        step = 1.0 / n_bins
        groups = store.execute(
            f"WITH g AS (SELECT c, y, CAST(greatest(least(ceil(c * {n_bins}) - 1, "
            f"{n_bins - 1}), 0) AS BIGINT) AS i0 FROM {relation}), "
            "b AS (SELECT c, y, CASE WHEN i0 > 0 AND c <= CAST(? AS DOUBLE) * i0 + 0.0 "
            f"THEN i0 - 1 WHEN i0 < {n_bins - 1} AND c > CAST(? AS DOUBLE) * (i0 + 1) + 0.0 "
            f"THEN i0 + 1 ELSE i0 END AS i FROM g) SELECT i, {sums} FROM b GROUP BY i",
            params + wparams + [step, step],
        )
    counts = np.zeros(n_bins, dtype=np.int64)
    conf, correct = np.zeros(n_bins), np.zeros(n_bins)
    squared = 0.0
    for i, n, c_sum, y_sum, sq, *_ in groups:
        counts[int(i)] += n
        conf[int(i)] += c_sum
        correct[int(i)] += y_sum
        squared += float(sq)
    return ReliabilityBins(counts, conf, correct, squared)
