"""The weekly report's KL trend: KL divergence of the confidence over time, from bin counts.

Each day of the history is scored on the trailing ``detection_window`` (7 days by
default) against the reference window; a week whose traffic spans under two
days is drawn finer, every bucket of :func:`monitor.store.timeline.bucket_width`
on the trailing six buckets. Counts come from DuckDB per bucket
(:func:`monitor.store.bins.bucket_histograms`), so the trend of a week of 100M
events never loads its confidences.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from detectors.scores.kl import KLDivergence
from monitor.config.durations import parse_duration
from monitor.reports import plots
from monitor.store import bins, timeline
from monitor.store.queries import Subject

DAY = 86400.0


@dataclass(frozen=True)
class KLTrend:
    """KL divergence (nats) per point in time.

    Attributes
    ----------
    daily : dict of float -> float or None
        Day start (epoch seconds) to the KL of the trailing detection window.
    points : list of float
        Starts of the points drawn (the days, or the finer buckets).
    values : dict of float -> float or None
        KL per drawn point (None where the window was too small).
    title : str or None
        The figure's title when finer than days; None: the default.
    week_shade : (float, float) or None
        The report's week, shaded on a daily trend.
    threshold : float
        The KL detector's threshold, nats.
    """

    daily: dict[float, float | None]
    points: list[float]
    values: dict[float, float | None]
    title: str | None
    week_shade: tuple[float, float] | None
    threshold: float


def kl_trend(
    mon: Any,
    store: Any,
    subject: Subject,
    ref: tuple[float, float],
    week: tuple[float, float],
    history: tuple[float, float],
    days: list[float],
) -> KLTrend:
    """Score the trend of ``subject`` against its reference window.

    Parameters
    ----------
    mon : MonitoringConfig
        ``kl_*`` settings, ``min_window_events`` and ``detection_window``.
    ref, week, history : (float, float)
        Reference window, the report's week and the weeks of the trend, epoch seconds.
    days : list of float
        Starts of the days to score (those of the history with traffic).

    Raises
    ------
    ValueError
        The reference window holds no event.
    """
    kl = KLDivergence(
        threshold=mon.kl_divergence_threshold,
        n_bins=mon.kl_bins,
        epsilon=mon.kl_epsilon,
        value_range=(0.0, 1.0),
    )
    kl.min_samples = mon.min_window_events
    edges = np.linspace(0.0, 1.0, mon.kl_bins + 1)
    kl.fit_counts(bins.histogram(store, subject, *ref, "confidence", edges)[0], edges)
    span = max(1, round(parse_duration(mon.detection_window) / DAY))
    hist = _bucket_counts(store, subject, history[0] - (span - 1) * DAY, history[1], edges)
    daily = {d: _trailing_kl(kl, hist, d, span) for d in days}
    start, end = week
    traffic = timeline.subject_span(store, subject, start, end)
    if traffic is None or traffic[1] - traffic[0] >= 2 * DAY:
        return KLTrend(daily, list(days), daily, None, week, kl.threshold)
    step = timeline.bucket_width(*traffic)  # hours of traffic: a finer trend
    hist = _bucket_counts(store, subject, traffic[0] - 5 * step, end, edges, step)
    points = sorted(b for b in hist if start <= b < end)
    values = {b: _trailing_kl(kl, hist, b, 6, step) for b in points}
    title = (
        f"KL divergence of the confidence, trailing {plots.width_label(6 * step)}, "
        f"every {plots.width_label(step)}"
    )
    return KLTrend(daily, points, values, title, None, kl.threshold)


def _bucket_counts(
    store: Any, subject: Subject, start: float, end: float, edges: np.ndarray, width: float = DAY
) -> dict[float, np.ndarray]:
    """Confidence counts on ``edges`` per bucket of ``width`` seconds, binned in DuckDB."""
    per = bins.bucket_histograms(store, subject, start, end, "confidence", edges, width)
    return {float(d): counts for d, (counts, _) in per.items()}


def _trailing_kl(
    kl: KLDivergence, hist: dict[float, np.ndarray], day: float, span: int, step: float = DAY
) -> float | None:
    """KL of the ``span`` buckets of ``step`` seconds ending with the one starting at ``day``
    (by default days: the detection window, evaluated daily)."""
    counts = sum(
        (hist[d] for d in (day - i * step for i in range(span)) if d in hist),
        np.zeros(kl.n_bins, dtype=np.int64),
    )
    return kl.score_counts(counts, window=(day - (span - 1) * step, day + step)).statistic
