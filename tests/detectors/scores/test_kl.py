"""KLDivergence: exact values, scipy agreement, bins, clipping, insufficient data, errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import entropy

from detectors.base import NotFittedError
from detectors.scores.kl import KLDivergence, smoothed_distribution


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(20240601)


def test_identical_windows_give_exactly_zero(rng):
    x = rng.beta(5, 2, size=500)
    result = KLDivergence().fit(x).score(x.copy())
    assert result.statistic == 0.0
    assert result.is_drift is False


def test_hand_computed_two_bin_example():
    # Two bins [0, 0.5) and [0.5, 1], epsilon = 0.1, so p_i = (c_i / 4 + 0.1) / 1.2.
    # Reference counts (3, 1) -> q = (0.85, 0.35) / 1.2 = (17/24, 7/24).
    # Current counts   (2, 2) -> p = (0.60, 0.60) / 1.2 = (1/2, 1/2).
    # KL(p || q) = 1/2 ln(12/17) + 1/2 ln(12/7) = 1/2 ln(144/119) = 0.095345 nats
    # (the other direction, KL(q || p), would be 17/24 ln(17/12) + 7/24 ln(7/12) = 0.089510).
    det = KLDivergence(n_bins=2, epsilon=0.1, min_samples=1)
    result = det.fit([0.1, 0.2, 0.3, 0.9]).score([0.6, 0.7, 0.2, 0.4])
    assert result.statistic == pytest.approx(0.5 * math.log(144 / 119), rel=1e-12)
    assert result.statistic == pytest.approx(0.095345, abs=1e-6)
    assert result.details["reference_probs"] == pytest.approx((17 / 24, 7 / 24))
    assert result.details["current_probs"] == pytest.approx((0.5, 0.5))
    assert result.details["current_counts"] == (2, 2)
    assert result.is_drift is False  # 0.095 < 0.15
    assert (
        KLDivergence(threshold=0.09, n_bins=2, epsilon=0.1, min_samples=1)
        .fit([0.1, 0.2, 0.3, 0.9])
        .score([0.6, 0.7, 0.2, 0.4])
        .is_drift
        is True
    )


def test_equals_scipy_entropy_on_the_same_smoothed_counts(rng):
    ref, cur = rng.beta(5, 2, size=3000), rng.beta(3, 2, size=1200)
    det = KLDivergence(n_bins=12, epsilon=1e-3).fit(ref)
    edges = np.linspace(0.0, 1.0, 13)
    c_ref, _ = np.histogram(ref, bins=edges)
    c_cur, _ = np.histogram(cur, bins=edges)
    q = (c_ref / c_ref.sum() + 1e-3) / (1 + 12 * 1e-3)
    p = (c_cur / c_cur.sum() + 1e-3) / (1 + 12 * 1e-3)
    assert det.score(cur).statistic == pytest.approx(entropy(p, q), rel=1e-12)


def test_direction_is_current_against_reference(rng):
    ref, cur = rng.beta(5, 2, size=1000), rng.uniform(size=1000)
    forward = KLDivergence().fit(ref).score(cur).statistic
    backward = KLDivergence().fit(cur).score(ref).statistic
    p = np.asarray(KLDivergence().fit(ref).score(cur).details["current_probs"])
    q = np.asarray(KLDivergence().fit(ref).reference_probs_)
    assert forward == pytest.approx(entropy(p, q))
    assert forward != pytest.approx(backward)


def test_detects_a_shift_and_not_a_resample(rng):
    det = KLDivergence().fit(rng.beta(5, 2, size=5000))
    assert det.score(rng.beta(5, 2, size=2000)).is_drift is False
    shifted = det.score(rng.beta(2, 3, size=2000))
    assert shifted.is_drift is True
    assert shifted.statistic > det.threshold


def test_bins_fixed_at_fit_and_values_clipped_into_edge_bins():
    det = KLDivergence(n_bins=4, min_samples=1).fit([0.1, 0.3, 0.6, 0.9])
    np.testing.assert_array_equal(det.bin_edges_, [0.0, 0.25, 0.5, 0.75, 1.0])
    result = det.score([-3.0, 0.05, 1.0, 7.5])
    assert result.details["current_counts"] == (2, 0, 0, 2)
    assert result.details["n_clipped"] == 2
    assert result.details["bin_edges"] == (0.0, 0.25, 0.5, 0.75, 1.0)


def test_value_range_none_takes_reference_min_max():
    det = KLDivergence(n_bins=4, value_range=None, min_samples=1).fit([-2.0, 0.0, 1.0, 6.0])
    np.testing.assert_allclose(det.bin_edges_, [-2.0, 0.0, 2.0, 4.0, 6.0])
    with pytest.raises(ValueError, match="constant"):
        KLDivergence(value_range=None).fit([0.5, 0.5, 0.5])


def test_insufficient_current_window(rng):
    det = KLDivergence(min_samples=100).fit(rng.uniform(size=500))
    result = det.score(rng.uniform(size=99), window=(10.0, 20.0))
    assert result.insufficient_data is True
    assert result.statistic is None and result.is_drift is False
    assert "99" in result.details["reason"]
    assert (result.window_start, result.window_end) == (10.0, 20.0)
    assert det.score(rng.uniform(size=100)).insufficient_data is False


def test_insufficient_reference(rng):
    det = KLDivergence(min_samples=100).fit(rng.uniform(size=50))
    result = det.score(rng.uniform(size=1000))
    assert result.insufficient_data and result.statistic is None
    assert "reference has 50" in result.details["reason"]


def test_not_fitted():
    with pytest.raises(NotFittedError, match="fit"):
        KLDivergence().score(np.linspace(0, 1, 200))


@pytest.mark.parametrize(
    ("data", "match"),
    [
        ([0.1, float("nan"), 0.3], "non-finite"),
        ([[0.1, 0.2], [0.3, 0.4]], "one-dimensional"),
        (["a", "b"], "numeric"),
    ],
)
def test_bad_current_input(data, match):
    det = KLDivergence(min_samples=1).fit(np.linspace(0, 1, 50))
    with pytest.raises(ValueError, match=match):
        det.score(data)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n_bins": 0}, "n_bins"),
        ({"n_bins": 2.5}, "n_bins"),
        ({"epsilon": 0.0}, "epsilon"),
        ({"value_range": (1.0, 0.0)}, "value_range"),
        ({"value_range": (0.0, float("inf"))}, "value_range"),
        ({"threshold": float("nan")}, "threshold"),
        ({"min_samples": 0}, "min_samples"),
    ],
)
def test_bad_parameters_fail_at_fit(kwargs, match):
    det = KLDivergence(**kwargs)  # __init__ only stores
    with pytest.raises(ValueError, match=match):
        det.fit(np.linspace(0, 1, 50))


def test_empty_reference():
    with pytest.raises(ValueError, match="empty"):
        KLDivergence().fit([])


def test_smoothed_distribution_formula_and_errors():
    p = smoothed_distribution([0, 2, 6], epsilon=0.05)
    np.testing.assert_allclose(p, (np.array([0, 0.25, 0.75]) + 0.05) / 1.15)
    assert p.sum() == pytest.approx(1.0)
    with pytest.raises(ValueError, match="all zero"):
        smoothed_distribution([0, 0], 0.1)
    with pytest.raises(ValueError, match="non-negative"):
        smoothed_distribution([1, -1], 0.1)
