"""Window aggregates over time for one model, across its probe versions (the weekly report's
timeline), computed in DuckDB.

The bucket width adapts to the traffic: :func:`bucket_width` picks the finest of
5 minutes, 15 minutes, 1 hour, 6 hours and 1 day that keeps the span of the
week's traffic within ``max_buckets`` buckets, so a week holding three hours of
traffic is drawn in 5-minute buckets, not one dot per day.
"""

from __future__ import annotations

from typing import Any

from monitor.store.queries import Subject, _layout, window_clause

WIDTHS = (300.0, 900.0, 3600.0, 6 * 3600.0, 86400.0)
"""Bucket widths, seconds, finest first."""


def models(store: Any, start: float, end: float) -> list[str]:
    """Models with events in ``[start, end)``, sorted."""
    events, _ = _layout(store)
    win, params = window_clause(start, end)
    rows = store.execute(f"SELECT DISTINCT model_id FROM {events} WHERE {win}", params)
    return sorted(str(r[0]) for r in rows)


def traffic_span(store: Any, model_id: str, start: float, end: float) -> tuple[float, float] | None:
    """``(first, last)`` event time of ``model_id`` in ``[start, end)``, or None."""
    events, _ = _layout(store)
    win, params = window_clause(start, end)
    row = store.execute(
        f"SELECT min(ts), max(ts) FROM {events} WHERE model_id = ? AND {win}", [model_id, *params]
    )[0]
    return None if row[0] is None else (float(row[0]), float(row[1]))


def subject_span(store: Any, subject: Any, start: float, end: float) -> tuple[float, float] | None:
    """``(first, last)`` event time of a :class:`monitor.store.queries.Subject` in
    ``[start, end)``, or None."""
    events, _ = _layout(store)
    where, params = subject.where()
    win, wparams = window_clause(start, end)
    row = store.execute(
        f"SELECT min(ts), max(ts) FROM {events} WHERE {where} AND {win}", params + wparams
    )[0]
    return None if row[0] is None else (float(row[0]), float(row[1]))


def bucket_width(first: float, last: float, max_buckets: int = 240) -> float:
    """The finest width of :data:`WIDTHS` with at most ``max_buckets`` buckets over
    ``[first, last]`` (the coarsest when none fits), seconds."""
    for width in WIDTHS:
        if (last - first) / width < max_buckets:
            return width
    return WIDTHS[-1]


def buckets(
    store: Any, model_id: str, start: float, end: float, width: float, n_bins: int = 15
) -> list[dict[str, Any]]:
    """Per bucket and probe version: traffic, estimated and labelled accuracy, ECE.

    Parameters
    ----------
    store : Store
    model_id : str
    start, end : float
        ``start <= ts < end``, seconds since the Unix epoch.
    width : float
        Bucket width, seconds (buckets start at multiples of it).
    n_bins : int
        Equal-width confidence bins of the ECE, right-closed as in Guo et al. 2017,
        Eq. 3 (the project's :mod:`detectors.calibration.reliability`).

    Returns
    -------
    list of dict
        Ordered by bucket, then probe version: ``bucket_start`` (seconds),
        ``probe_version``, ``n_events``, ``estimated_accuracy`` (mean calibrated
        confidence, probability), ``n_labelled``, ``labelled_accuracy`` and ``ece``
        (None without labels).
    """
    w = float(width)
    return _aggregate(store, model_id, start, end, f"floor(ts / {w!r}) * {w!r}", True, n_bins)


def interval(
    store: Any, model_id: str, start: float, end: float, n_bins: int = 15
) -> dict[str, Any]:
    """Traffic, accuracy and ECE of ``model_id`` over ``[start, end)``, all probe versions
    pooled: ``n_events``, ``n_labelled``, ``labelled_accuracy``, ``ece`` (None without labels)."""
    rows = _aggregate(store, model_id, start, end, "0.0", False, n_bins)
    if not rows:
        return {"n_events": 0, "n_labelled": 0, "labelled_accuracy": None, "ece": None}
    return {k: rows[0][k] for k in ("n_events", "n_labelled", "labelled_accuracy", "ece")}


def _aggregate(
    store: Any, model_id: str, start: float, end: float, bucket: str, by_version: bool,
    n_bins: int,
) -> list[dict[str, Any]]:  # fmt: skip
    """Rows of :func:`buckets` for the SQL bucket expression ``bucket``; with ``by_version``
    False, the probe versions pooled (``probe_version`` ``"*"``)."""
    events, _ = _layout(store)
    win, params = window_clause(start, end)
    version = "probe_version" if by_version else "'*'"
    traffic = store.execute(
        f"SELECT {bucket} AS b, {version} AS v, count(*), avg(confidence) FROM {events} "
        f"WHERE model_id = ? AND {win} GROUP BY b, v",
        [model_id, *params],
    )
    m = int(n_bins)
    labelled = store.execute(  # ECE = sum over bins |sum(y) - sum(p)| / n
        "WITH binned AS ("
        f"  SELECT {bucket} AS b, {version} AS v, CAST(correct AS DOUBLE) AS y, confidence AS p,"
        f"         greatest(ceil(confidence * {m}) - 1, 0) AS k"
        f"  FROM labelled_events WHERE model_id = ? AND {win}),"
        " per_bin AS (SELECT b, v, count(*) AS n, sum(y) AS sy, sum(p) AS sp"
        "             FROM binned GROUP BY b, v, k)"
        " SELECT b, v, sum(n), sum(sy) / sum(n), sum(abs(sy - sp)) / sum(n)"
        " FROM per_bin GROUP BY b, v",
        [model_id, *params],
    )
    lab = {(float(b), v): (int(n), float(acc), float(ece)) for b, v, n, acc, ece in labelled}
    out = []
    for b, v, n, mean_conf in traffic:
        n_lab, acc, ece = lab.get((float(b), v), (0, None, None))
        out.append({
            "bucket_start": float(b), "probe_version": v, "n_events": int(n),
            "estimated_accuracy": float(mean_conf), "n_labelled": n_lab,
            "labelled_accuracy": acc, "ece": ece,
        })  # fmt: skip
    return sorted(out, key=lambda r: (r["bucket_start"], r["probe_version"]))


def first_seen(store: Any, model_id: str, start: float, end: float) -> dict[str, float]:
    """Probe version -> time of its first event in ``[start, end)`` (when collectors
    switched to it)."""
    events, _ = _layout(store)
    win, params = window_clause(start, end)
    rows = store.execute(
        f"SELECT probe_version, min(ts) FROM {events} WHERE model_id = ? AND {win} "
        "GROUP BY probe_version",
        [model_id, *params],
    )
    return {str(v): float(t) for v, t in rows}


def route_counts(store: Any, model_id: str, start: float, end: float) -> dict[str, Any]:
    """How requests were routed in ``[start, end)``.

    Returns
    -------
    dict
        ``final``: final route (``serve``, ``fallback``; ``self_consistency`` where
        the gray zone was not resolved) -> events; ``gray_zone``: ``n`` events the
        gate sent to self-consistency, ``resolved`` (final route -> events),
        ``mean_consistency`` (majority share, None without any) and ``k`` (the
        largest K seen).
    """
    events, _ = _layout(store)
    win, params = window_clause(start, end)
    rows = store.execute(
        f"SELECT decision, coalesce(route, decision) AS final, count(*), "
        f"sum(consistency), count(consistency), max(consistency_k) FROM {events} "
        f"WHERE model_id = ? AND {win} GROUP BY decision, final",
        [model_id, *params],
    )
    final: dict[str, int] = {}
    gray = {"n": 0, "resolved": {}, "mean_consistency": None, "k": None}
    total_c, n_c = 0.0, 0
    for decision, route, n, sum_c, count_c, k in rows:
        final[str(route)] = final.get(str(route), 0) + int(n)
        if decision == "self_consistency":
            gray["n"] += int(n)
            gray["resolved"][str(route)] = int(n)
            total_c, n_c = total_c + float(sum_c or 0.0), n_c + int(count_c)
            if k is not None:
                gray["k"] = max(int(k), gray["k"] or 0)
    if n_c:
        gray["mean_consistency"] = total_c / n_c
    return {"final": dict(sorted(final.items(), key=lambda kv: -kv[1])), "gray_zone": gray}


def daily_stats(
    store: Any, subject: Subject, start: float, end: float
) -> list[dict[str, float | int | None]]:
    """Per-day counts and accuracies, one dict per UTC day in ``[start, end)`` with events.

    Returns
    -------
    list of dict
        ``day_start`` (epoch seconds), ``n_events``, ``mean_confidence`` (the
        label-free accuracy estimate), ``n_labelled``, ``labelled_accuracy`` and
        ``confidence_on_labelled`` (None without labels).
    """
    events, _ = _layout(store)
    where, params = subject.where()
    win, wparams = window_clause(start, end)
    day = "floor(ts / 86400) * 86400"
    ev = store.execute(
        f"SELECT {day} AS d, count(*), avg(confidence) FROM {events} "
        f"WHERE {where} AND {win} GROUP BY d ORDER BY d",
        params + wparams,
    )
    lab = store.execute(
        f"SELECT {day} AS d, count(*), avg(CAST(correct AS DOUBLE)), avg(confidence) "
        f"FROM labelled_events WHERE {where} AND {win} GROUP BY d",
        params + wparams,
    )
    by_day = {float(d): (int(n), acc, conf) for d, n, acc, conf in lab}
    out = []
    for d, n, mean_conf in ev:
        n_lab, acc, conf_lab = by_day.get(float(d), (0, None, None))
        out.append(
            {
                "day_start": float(d),
                "n_events": int(n),
                "mean_confidence": float(mean_conf),
                "n_labelled": n_lab,
                "labelled_accuracy": None if acc is None else float(acc),
                "confidence_on_labelled": None if conf_lab is None else float(conf_lab),
            }
        )
    return out
