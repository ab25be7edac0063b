"""The weekly KL trend from DuckDB bin counts equals the numpy detector on the same events."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from detectors.scores.kl import KLDivergence
from monitor.config.monitoring import MonitoringConfig
from monitor.reports.kl_trend import kl_trend
from monitor.store.queries import Subject

DAY = 86400.0
WEEK = (1_763_337_600.0, 1_763_337_600.0 + 7 * DAY)  # Monday 2025-11-17 00:00 UTC
SUBJECT = Subject("m", "p1")


def _fill(store, make_event, times, conf):
    events = [
        dataclasses.replace(make_event(i, confidence=float(c)), ts=float(t))
        for i, (t, c) in enumerate(zip(times, conf))
    ]
    store.write_batch(events, [])


def test_hours_of_traffic_are_drawn_in_five_minute_buckets(tmp_store, make_event):
    rng = np.random.default_rng(3)
    ref_t = WEEK[0] - 3 * DAY + np.arange(600) * 10.0
    week_t = WEEK[0] + DAY + np.arange(1080) * 10.0  # three hours on the Tuesday
    ref_c, week_c = rng.beta(5, 2, ref_t.size), rng.beta(3, 2, week_t.size)
    _fill(tmp_store, make_event, np.concatenate([ref_t, week_t]), np.concatenate([ref_c, week_c]))
    mon = MonitoringConfig(min_window_events=50)
    ref = (float(ref_t[0]), float(ref_t[-1]) + 1.0)
    trend = kl_trend(mon, tmp_store, SUBJECT, ref, WEEK, (WEEK[0] - 21 * DAY, WEEK[1]), [])
    assert trend.week_shade is None and "every 5 min" in trend.title
    assert trend.points == [float(week_t[0]) + 300.0 * i for i in range(36)]
    detector = KLDivergence(value_range=(0.0, 1.0), n_bins=mon.kl_bins).fit(ref_c)
    detector.min_samples = 50
    for point in (trend.points[5], trend.points[-1]):  # the trailing six buckets, 30 minutes
        window = week_c[(week_t >= point - 5 * 300.0) & (week_t < point + 300.0)]
        expected = detector.score(window).statistic
        assert trend.values[point] == pytest.approx(expected, rel=1e-12)
    assert trend.values[trend.points[0]] is None  # 30 events, under min_window_events: no KL


def test_an_empty_reference_is_refused(tmp_store, make_event):
    _fill(tmp_store, make_event, [WEEK[0] + 10.0], [0.5])
    with pytest.raises(ValueError, match="reference counts are all zero"):
        kl_trend(MonitoringConfig(), tmp_store, SUBJECT, (0.0, 1.0), WEEK, WEEK, [])
