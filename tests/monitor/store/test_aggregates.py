"""Window aggregates in SQL agree with the numpy detectors on the same values, edges included."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from detectors.calibration.calibration_error import CalibrationError
from detectors.calibration.label_free import EstimatedAccuracyDrop
from detectors.calibration.reliability import reliability_diagram
from detectors.scores.kl import KLDivergence
from monitor.store import aggregates
from monitor.store.queries import Subject

ALL = Subject("m", "p1")
EDGES = np.linspace(0.0, 1.0, 11)


def _values(n: int, seed: int) -> np.ndarray:
    """Confidences with every hard case: the edges, one ulp either side of them, 0 and 1."""
    rng = np.random.default_rng(seed)
    edges = np.linspace(0.0, 1.0, 16)  # the reliability bins' edges too
    hard = np.concatenate([EDGES, edges, np.nextafter(EDGES, 2), np.nextafter(EDGES, -1)])
    hard = np.clip(np.concatenate([hard, np.nextafter(edges, 2), np.nextafter(edges, -1)]), 0, 1)
    return np.concatenate([hard, rng.beta(5, 2, n - hard.size)])


@pytest.fixture
def filled(tmp_store, make_event, make_label):
    conf = _values(600, seed=0)
    logit = np.random.default_rng(1).normal(size=conf.size) * 3
    events = [
        dataclasses.replace(make_event(i, confidence=float(c)), raw_logit=float(z))
        for i, (c, z) in enumerate(zip(conf, logit))
    ]
    correct = np.random.default_rng(2).uniform(size=conf.size) < conf
    labels = [make_label(i, correct=bool(correct[i])) for i in range(0, conf.size, 2)]
    tmp_store.write_batch(events, labels)
    return tmp_store, conf, logit, correct


def test_histogram_matches_numpy_bit_for_bit(filled):
    store, conf, logit, _ = filled
    counts, clipped = aggregates.histogram(store, ALL, None, None, "confidence", EDGES)
    np.testing.assert_array_equal(counts, np.histogram(conf, bins=10, range=(0, 1))[0])
    assert clipped == 0
    # bins fixed on part of the range: the rest is clipped into the edge bins, as the detector does
    det = KLDivergence(value_range=(-1.0, 1.0)).fit(logit)
    counts, clipped = aggregates.histogram(store, ALL, None, None, "raw_logit", det.bin_edges_)
    expected, expected_clipped = det.bin_counts(logit)
    np.testing.assert_array_equal(counts, expected)
    assert clipped == expected_clipped > 0
    with pytest.raises(ValueError, match="increasing"):
        aggregates.histogram(store, ALL, None, None, "confidence", np.array([1.0, 0.0]))
    with pytest.raises(ValueError, match="column"):
        aggregates.histogram(store, ALL, None, None, "answer", EDGES)


def test_reliability_bins_and_sums_match_the_array_detectors(filled):
    store, conf, _, correct = filled
    c, y = conf[::2], correct[::2]
    bins = aggregates.reliability_bins(store, ALL, None, None, n_bins=15)
    d = reliability_diagram(c, y, 15)
    np.testing.assert_array_equal(bins.counts, d.counts)
    filled_bins = d.counts > 0
    np.testing.assert_allclose(
        bins.confidence_sum[filled_bins] / d.counts[filled_bins], d.mean_confidence[filled_bins]
    )
    det = CalibrationError(n_bootstrap=50).fit()
    by_arrays = det.score(c, y)
    by_sql = det.score_bins(
        bins.counts, bins.confidence_sum, bins.correct_sum, bins.squared_error_sum, sample=(c, y)
    )
    assert by_sql.statistic == pytest.approx(by_arrays.statistic, abs=1e-12)
    for key in ("mce", "brier", "accuracy", "mean_confidence", "ace"):
        assert by_sql.details[key] == pytest.approx(by_arrays.details[key], abs=1e-12), key
    assert by_sql.details["intervals"] == by_arrays.details["intervals"]
    without = det.score_bins(bins.counts, bins.confidence_sum, bins.correct_sum, 1.0)
    assert without.statistic == by_sql.statistic and without.details["ace"] is None
    with pytest.raises(ValueError, match="outside"):
        det.score_bins(bins.counts, bins.confidence_sum, bins.counts + 1, 1.0)

    summary = aggregates.score_summary(store, ALL, None, None, "confidence")
    assert (summary.n, summary.low, summary.high) == (conf.size, conf.min(), conf.max())
    acc = EstimatedAccuracyDrop().fit(conf)
    expected = acc.score(conf, labelled_confidence=c, correct=y)
    labelled = (bins.n, int(bins.correct_sum.sum()), float(bins.confidence_sum.sum()))
    det = EstimatedAccuracyDrop().fit_summary(summary.n, summary.total)
    got = det.score_summary(summary.n, summary.total, summary.total_variance, labelled=labelled)
    assert got.statistic == pytest.approx(expected.statistic, abs=1e-12)
    for key in ("estimated_accuracy", "labelled_accuracy", "estimation_error"):
        assert got.details[key] == pytest.approx(expected.details[key], abs=1e-12)
    with pytest.raises(ValueError, match="sums outside"):
        det.score_summary(10, 11.0, 1.0)


def test_samples_are_fixed_and_bounded(filled):
    store, conf, _, correct = filled
    everything = aggregates.sample(store, ALL, None, None, "confidence", limit=10_000)
    np.testing.assert_array_equal(np.sort(everything), np.sort(conf))
    some = aggregates.sample(store, ALL, None, None, "confidence", limit=50)
    assert some.size == 50 and set(some) <= set(conf)
    np.testing.assert_array_equal(some, aggregates.sample(store, ALL, None, None, "confidence", 50))
    c, y = aggregates.labelled_sample(store, ALL, None, None, limit=40)
    assert c.size == y.size == 40 and y.dtype == bool
    with pytest.raises(ValueError, match="limit"):
        aggregates.sample(store, ALL, None, None, "confidence", limit=0)


def test_windows_and_subjects_are_respected(filled):
    store, conf, _, _ = filled
    t0 = 1_700_000_000.0
    part = aggregates.score_summary(store, ALL, t0 + 100, t0 + 200, "confidence")
    assert part.n == 100 and part.total == pytest.approx(conf[100:200].sum())
    assert aggregates.score_summary(store, Subject("other", None), None, None, "confidence").n == 0
    empty = aggregates.histogram(store, Subject("other", None), None, None, "confidence", EDGES)
    assert empty[0].sum() == 0 and empty[1] == 0


def test_the_archive_is_read_as_the_live_table(tmp_path, make_event, make_label):
    from monitor.store.database import Store

    day = 86_400.0
    now = 1_700_000_000.0 + 10 * day
    with Store(tmp_path / "m.duckdb") as store:
        events = [make_event(i, ts=now - 8 * day + i * 3600.0) for i in range(150)]
        store.write_batch(events, [make_label(i) for i in range(150)])
        before = aggregates.histogram(store, ALL, None, None, "confidence", EDGES)
        bins_before = aggregates.reliability_bins(store, ALL, None, None, 15)
        assert store.archive(days=3, now=now).n_events > 0
        after = aggregates.histogram(store, ALL, None, None, "confidence", EDGES)
        np.testing.assert_array_equal(before[0], after[0])
        bins_after = aggregates.reliability_bins(store, ALL, None, None, 15)
        np.testing.assert_array_equal(bins_before.counts, bins_after.counts)


def test_histogram_edges_on_odd_ranges_match_numpy(tmp_store, make_event):
    rng = np.random.default_rng(7)
    ranges = [(-3.7, 11.3, 7), (0.1, 0.7, 13), (-1e-3, 2e-3, 9)]
    values = []
    for lo, hi, k in ranges:
        e = np.linspace(lo, hi, k + 1)
        values += [*e, *np.nextafter(e, np.inf), *np.nextafter(e, -np.inf)]
    values = np.asarray(values + list(rng.normal(size=300) * 5))
    events = [dataclasses.replace(make_event(i), raw_logit=float(v)) for i, v in enumerate(values)]
    tmp_store.write_batch(events, [])
    for lo, hi, k in ranges:
        edges = np.linspace(lo, hi, k + 1)
        det = KLDivergence(n_bins=k, value_range=(lo, hi)).fit(values)
        counts, clipped = aggregates.histogram(tmp_store, ALL, None, None, "raw_logit", edges)
        expected, expected_clipped = det.bin_counts(values)
        np.testing.assert_array_equal(counts, expected)
        assert clipped == expected_clipped
    with pytest.raises(ValueError, match="linspace"):
        aggregates.histogram(tmp_store, ALL, None, None, "raw_logit", np.array([0.0, 0.1, 1.0]))
