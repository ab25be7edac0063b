"""The bin counts' plain GROUP BY is exact, and hands over to the per-row correction
whenever a value lies within rounding of an edge; both equal numpy's bins."""

from __future__ import annotations

import duckdb
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from detectors.calibration.reliability import reliability_diagram
from detectors.scores.binning import uniform_bin_index
from monitor.store import bins
from monitor.store.queries import Subject, _layout

SUBJECT = Subject("m", "p1")


class Events:
    """A DuckDB connection holding an events table and its labelled view; counts queries."""

    def __init__(self) -> None:
        self.con = duckdb.connect()
        self.queries = 0

    def load(self, values: np.ndarray, correct: np.ndarray | None = None) -> Events:
        n = values.size
        y = np.zeros(n, bool) if correct is None else correct
        self.con.execute("DROP VIEW IF EXISTS labelled_events")
        self.con.execute(
            "CREATE OR REPLACE TABLE events AS SELECT 'ev-' || i AS event_id, i * 1.0 AS ts, "
            "'m' AS model_id, 'p1' AS probe_version, 't' AS tag, v AS confidence, "
            "v AS raw_logit, y AS correct FROM (SELECT unnest(?) AS v, unnest(?) AS y, "
            "generate_subscripts(?, 1) AS i)",
            [values.tolist(), y.tolist(), values.tolist()],
        )
        self.con.execute("CREATE VIEW labelled_events AS SELECT * FROM events")
        _layout(self)  # the store's layout is looked up (one query) once
        self.queries = 0
        return self

    def execute(self, sql: str, params: list | None = None) -> list[tuple]:
        self.queries += 1
        return self.con.execute(sql, params or []).fetchall()


def _expected(values: np.ndarray, edges: np.ndarray) -> tuple[np.ndarray, int]:
    idx = uniform_bin_index(values, edges)
    clipped = int(np.sum((values < edges[0]) | (values > edges[-1])))
    return np.bincount(idx, minlength=edges.size - 1), clipped


def _near_edges(edges: np.ndarray) -> np.ndarray:
    return np.concatenate([edges, np.nextafter(edges, np.inf), np.nextafter(edges, -np.inf)])


def test_values_away_from_the_edges_take_one_query():
    rng = np.random.default_rng(0)
    values = rng.beta(5, 2, 20_000)
    store = Events().load(values)
    edges = np.linspace(0.0, 1.0, 11)
    counts, clipped = bins.histogram(store, SUBJECT, None, None, "confidence", edges)
    assert store.queries == 1
    np.testing.assert_array_equal(counts, np.histogram(values, bins=10, range=(0, 1))[0])
    assert clipped == 0
    store.queries = 0
    got = bins.reliability_bins(store, SUBJECT, None, None, 15)
    assert store.queries == 1
    np.testing.assert_array_equal(got.counts, reliability_diagram(values, values > 0.5, 15).counts)


def test_values_on_the_edges_are_counted_again_exactly():
    edges = np.linspace(0.0, 1.0, 11)
    values = np.clip(np.concatenate([_near_edges(edges), _near_edges(np.linspace(0, 1, 16))]), 0, 1)
    store = Events().load(values)
    counts, clipped = bins.histogram(store, SUBJECT, None, None, "confidence", edges)
    assert store.queries == 2  # the plain GROUP BY was unsure
    np.testing.assert_array_equal(counts, np.histogram(values, bins=10, range=(0, 1))[0])
    store.queries = 0
    got = bins.reliability_bins(store, SUBJECT, None, None, 15)
    assert store.queries == 2
    np.testing.assert_array_equal(got.counts, reliability_diagram(values, values > 0.5, 15).counts)


def test_values_far_outside_the_range_are_clipped_without_overflow():
    edges = np.linspace(0.0, 1.0, 5)
    values = np.array([-1e300, -5.0, 0.25, 0.75, 5.0, 1e300, 0.0])
    store = Events().load(values)
    counts, clipped = bins.histogram(store, SUBJECT, None, None, "raw_logit", edges)
    assert (counts.tolist(), clipped, store.queries) == ([3, 1, 0, 3], 4, 1)
    # hi itself beside clipped values in the last group: the per-row path, no overflow either
    store.load(np.append(values, 1.0))
    counts, clipped = bins.histogram(store, SUBJECT, None, None, "raw_logit", edges)
    assert (counts.tolist(), clipped, store.queries) == ([3, 1, 0, 4], 4, 2)


@pytest.mark.parametrize(
    ("groups", "expected"),
    [
        ([(0, 2, 0.0, 0.4), (1, 3, 0.5, 1.0)], ([2, 3], 0)),
        ([(-1, 4, -3.0, -0.1), (2, 1, 1.5, 2.0)], ([4, 1], 5)),  # wholly clipped groups
        ([(2, 2, 1.0, 1.0)], ([0, 2], 0)),  # hi itself lands one past the last bin
        ([(0, 2, 0.1, 0.5)], None),  # reaches the next bin's edge
        ([(1, 2, 0.4, 0.9)], None),  # starts below its bin's edge
        ([(2, 2, 1.0, 1.5)], None),  # hi and beyond it in one group
    ],
)
def test_counts_from_groups_trusts_only_groups_inside_their_bins(groups, expected):
    got = bins.counts_from_groups(groups, np.linspace(0.0, 1.0, 3))
    if expected is None:
        assert got is None
    else:
        assert (got[0].tolist(), got[1]) == expected


_STORE = Events()


@settings(max_examples=60, deadline=None)
@given(
    lo=st.floats(-1e3, 1e3),
    width=st.floats(1e-6, 1e4),
    k=st.integers(1, 40),
    noise=st.lists(st.floats(-2.0, 3.0), min_size=1, max_size=60),
    on_edges=st.lists(st.integers(0, 40), max_size=20),
)
def test_histogram_equals_numpy_for_any_range_and_values(lo, width, k, noise, on_edges):
    edges = np.linspace(lo, lo + width, k + 1)
    near = _near_edges(edges)[[i % (3 * (k + 1)) for i in on_edges]]
    values = np.concatenate([lo + width * np.asarray(noise), near])
    store = _STORE.load(values)
    counts, clipped = bins.histogram(store, SUBJECT, None, None, "raw_logit", edges)
    expected, expected_clipped = _expected(values, edges)
    np.testing.assert_array_equal(counts, expected)
    assert clipped == expected_clipped


@settings(max_examples=60, deadline=None)
@given(
    n_bins=st.integers(1, 30),
    noise=st.lists(st.floats(0.0, 1.0), min_size=1, max_size=60),
    on_edges=st.lists(st.integers(0, 90), max_size=20),
    seed=st.integers(0, 2**16),
)
def test_reliability_bins_equal_numpy_for_any_bins_and_values(n_bins, noise, on_edges, seed):
    edges = np.clip(_near_edges(np.linspace(0.0, 1.0, n_bins + 1)), 0.0, 1.0)
    c = np.concatenate([np.asarray(noise), edges[[i % edges.size for i in on_edges]]])
    y = np.random.default_rng(seed).uniform(size=c.size) < c
    store = _STORE.load(c, y)
    got = bins.reliability_bins(store, SUBJECT, None, None, n_bins)
    d = reliability_diagram(c, y, n_bins)
    np.testing.assert_array_equal(got.counts, d.counts)
    idx = uniform_bin_index(c, np.linspace(0.0, 1.0, n_bins + 1), right_closed=True)
    np.testing.assert_allclose(got.correct_sum, np.bincount(idx, y, minlength=n_bins))
    np.testing.assert_allclose(got.confidence_sum, np.bincount(idx, c, minlength=n_bins))
    assert got.squared_error_sum == pytest.approx(float(np.sum((c - y) ** 2)))
