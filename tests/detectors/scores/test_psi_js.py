"""PSI and Jensen-Shannon distance: exact agreement with scipy on the same smoothed counts."""

from __future__ import annotations

import doctest

import numpy as np
import pytest
from scipy.spatial.distance import jensenshannon
from scipy.stats import entropy

import detectors.scores.js
import detectors.scores.psi
from detectors.scores.histogram import smoothed_distribution
from detectors.scores.js import JensenShannonDistance
from detectors.scores.psi import PopulationStabilityIndex


@pytest.fixture
def windows():
    rng = np.random.default_rng(31)
    return rng.beta(5, 2, size=3000), rng.beta(3, 2, size=1500)


def _smoothed(x, edges, eps):
    counts, _ = np.histogram(x, bins=edges)
    return smoothed_distribution(counts, eps)


def test_psi_is_the_symmetrised_kl_of_scipy(windows):
    ref, cur = windows
    det = PopulationStabilityIndex(n_bins=12, epsilon=1e-3).fit(ref)
    edges = np.linspace(0.0, 1.0, 13)
    p, q = _smoothed(cur, edges, 1e-3), _smoothed(ref, edges, 1e-3)
    result = det.score(cur)
    assert result.statistic == pytest.approx(entropy(p, q) + entropy(q, p), rel=1e-12)
    assert result.statistic == pytest.approx(np.sum((p - q) * np.log(p / q)), rel=1e-12)
    assert result.details["unit"] == "nats" and result.is_drift


def test_psi_hand_case():
    # Two bins, epsilon 0.1: reference counts (3, 1) -> q = (17/24, 7/24), current (2, 2) -> 1/2.
    # PSI = (1/2 - 17/24) ln(12/17) + (1/2 - 7/24) ln(12/7) = -5/24 ln(12/17) + 5/24 ln(12/7)
    det = PopulationStabilityIndex(n_bins=2, epsilon=0.1, min_samples=1)
    r = det.fit([0.1, 0.2, 0.3, 0.9]).score([0.6, 0.7, 0.2, 0.4])
    assert r.statistic == pytest.approx(5 / 24 * np.log(17 / 7), rel=1e-12)


def test_js_distance_equals_scipy_base_2(windows):
    ref, cur = windows
    det = JensenShannonDistance(n_bins=20, epsilon=1e-4).fit(ref)
    edges = np.linspace(0.0, 1.0, 21)
    p, q = _smoothed(cur, edges, 1e-4), _smoothed(ref, edges, 1e-4)
    assert det.score(cur).statistic == pytest.approx(jensenshannon(p, q, base=2), rel=1e-10)


def test_js_is_symmetric_and_bounded():
    a, b = np.full(200, 0.05), np.full(200, 0.95)
    forward = JensenShannonDistance().fit(a).score(b).statistic
    backward = JensenShannonDistance().fit(b).score(a).statistic
    assert forward == pytest.approx(backward)
    assert 0.99 < forward <= 1.0  # disjoint support, only the epsilon mass overlaps


@pytest.mark.parametrize("cls", [PopulationStabilityIndex, JensenShannonDistance])
def test_identical_windows_zero_and_resample_below_threshold(cls):
    rng = np.random.default_rng(3)
    ref = rng.beta(5, 2, 4000)
    det = cls().fit(ref)
    assert det.score(ref.copy()).statistic == 0.0
    assert det.score(rng.beta(5, 2, 4000)).is_drift is False
    assert det.score(rng.beta(2, 3, 4000)).is_drift is True


@pytest.mark.parametrize("cls", [PopulationStabilityIndex, JensenShannonDistance])
def test_raw_logits_with_reference_range(cls):
    rng = np.random.default_rng(4)
    det = cls(value_range=None).fit(rng.normal(1.0, 1.0, 2000))
    assert det.bin_edges_[0] < -1.0 and det.bin_edges_[-1] > 3.0
    r = det.score(rng.normal(2.5, 1.0, 1000))
    assert r.is_drift and r.details["n_clipped"] > 0


@pytest.mark.parametrize("module", [detectors.scores.psi, detectors.scores.js])
def test_doctests(module):
    failures, tried = doctest.testmod(module)
    assert tried > 0 and failures == 0


def test_counts_path_equals_the_array_path():
    from detectors.scores.kl import KLDivergence

    rng = np.random.default_rng(9)
    ref, cur = rng.beta(5, 2, 3000), np.r_[rng.beta(3, 2, 1000), [-0.5, 1.5]]
    kl = KLDivergence().fit(ref)
    counts, clipped = kl.bin_counts(cur)
    assert clipped == 2
    for cls in (KLDivergence, PopulationStabilityIndex, JensenShannonDistance):
        direct = cls().fit(ref).score(cur, window=(0.0, 1.0))
        shared = cls().fit_counts(kl.reference_counts_, kl.bin_edges_)
        via_counts = shared.score_counts(counts, window=(0.0, 1.0), n_clipped=clipped)
        assert via_counts == direct
    with pytest.raises(ValueError, match="non-negative counts"):
        KLDivergence().fit_counts([1, 2], kl.bin_edges_)
