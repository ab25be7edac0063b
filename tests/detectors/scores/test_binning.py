"""Arithmetic bin indices equal binary search on the edges, including values on the edges."""

from __future__ import annotations

import numpy as np
import pytest

from detectors.scores.binning import uniform_bin_index


@pytest.mark.parametrize("k", [1, 2, 3, 7, 10, 15, 100])
@pytest.mark.parametrize(("lo", "hi"), [(0.0, 1.0), (-3.7, 5.1)])
def test_equals_searchsorted_on_and_around_every_edge(k, lo, hi):
    rng = np.random.default_rng(k)
    e = np.linspace(lo, hi, k + 1)
    x = np.concatenate(
        [rng.uniform(lo - 1, hi + 1, 200_000), e, np.nextafter(e, np.inf), np.nextafter(e, -np.inf)]
    )
    np.testing.assert_array_equal(
        uniform_bin_index(x, e), np.searchsorted(e[1:-1], x, side="right")
    )
    np.testing.assert_array_equal(
        uniform_bin_index(x, e, right_closed=True), np.searchsorted(e[1:-1], x, side="left")
    )
