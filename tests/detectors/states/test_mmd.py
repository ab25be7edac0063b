"""MMD on pooled states: the estimator, the permutation test's size and power, PCA split."""

from __future__ import annotations

import doctest
import itertools

import numpy as np
import pytest

import detectors.states.mmd
from detectors.base import NotFittedError
from detectors.states.mmd import MaximumMeanDiscrepancy, _gaussian_kernel, mmd2_unbiased


def _naive_mmd2(x: np.ndarray, y: np.ndarray, sigma: float) -> float:
    """Gretton et al. (2012) Eq. 3 written as loops over pairs."""

    def k(a, b):
        return np.exp(-np.sum((a - b) ** 2) / (2 * sigma**2))

    n, m = len(x), len(y)
    xx = sum(k(x[i], x[j]) for i, j in itertools.permutations(range(n), 2)) / (n * (n - 1))
    yy = sum(k(y[i], y[j]) for i, j in itertools.permutations(range(m), 2)) / (m * (m - 1))
    xy = sum(k(a, b) for a in x for b in y) / (n * m)
    return xx + yy - 2 * xy


def test_estimator_and_median_heuristic_match_the_definitions():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(12, 3)), rng.normal(0.5, 1.0, size=(9, 3))
    pooled = np.vstack([x, y])
    kernel, sigma = _gaussian_kernel(pooled)
    dists = [np.linalg.norm(a - b) for a, b in itertools.combinations(pooled, 2)]
    assert sigma == pytest.approx(np.median(dists), rel=1e-9)
    assert mmd2_unbiased(kernel, 12) == pytest.approx(_naive_mmd2(x, y, sigma), rel=1e-9)


@pytest.fixture(scope="module")
def fitted() -> MaximumMeanDiscrepancy:
    rng = np.random.default_rng(2024)
    return MaximumMeanDiscrepancy(n_components=8, n_permutations=100).fit(
        rng.normal(size=(400, 32))
    )


def test_false_alarm_rate_over_50_seeded_no_drift_windows(fitted):
    # Production keeps one reference for weeks: 50 fresh windows against it.
    results = [
        fitted.score(np.random.default_rng(seed).normal(size=(120, 32))) for seed in range(50)
    ]
    alarms = sum(r.is_drift for r in results)
    assert alarms <= 5, [round(r.p_value, 3) for r in results]  # at most 10 % at alpha = 0.05
    assert all(r.is_drift == (r.p_value < 0.05) for r in results)


def test_p_values_are_uniform_over_fresh_reference_and_window_pairs():
    # Given one fixed reference the p-values are not uniform (they depend on that
    # sample); over independent (reference, window) pairs they are.
    p = []
    for seed in range(50):
        rng = np.random.default_rng(1000 + seed)
        det = MaximumMeanDiscrepancy(n_components=8, n_permutations=100)
        p.append(det.fit(rng.normal(size=(240, 32))).score(rng.normal(size=(120, 32))).p_value)
    p = np.array(p)
    assert np.count_nonzero(p < 0.05) <= 5
    assert 0.35 < p.mean() < 0.65


def test_planted_shift_is_detected(fitted):
    rng = np.random.default_rng(99)
    shifted = rng.normal(size=(120, 32))
    shifted[:, :4] += 0.5  # a shift in 4 of 32 directions
    r = fitted.score(shifted, window=(0.0, 60.0))
    assert r.p_value < 0.05 and r.is_drift and r.statistic > r.threshold
    assert r.details["n_used_current"] == 120 and r.details["bandwidth"] > 0


def test_permuted_statistics_match_recomputing_each_permutation():
    rng = np.random.default_rng(5)
    kernel, _ = _gaussian_kernel(rng.normal(size=(30, 3)))
    perm = detectors.states.mmd._permuted_mmd2(kernel, 12, 6, np.random.default_rng(1))
    order = np.argsort(np.random.default_rng(1).random((6, 30)), axis=1)
    for b in range(6):
        idx = np.r_[order[b, :12], np.setdiff1d(np.arange(30), order[b, :12])]
        assert perm[b] == pytest.approx(mmd2_unbiased(kernel[np.ix_(idx, idx)], 12), rel=1e-9)


def test_pca_is_fitted_on_reference_rows_the_test_does_not_use():
    rng = np.random.default_rng(6)
    det = MaximumMeanDiscrepancy(n_components=4, max_samples=100).fit(rng.normal(size=(500, 16)))
    assert det.reference_z_.shape == (100, 4)
    assert det.pca_.n_samples_ == 400


def test_large_windows_are_subsampled():
    rng = np.random.default_rng(8)
    det = MaximumMeanDiscrepancy(n_components=4, max_samples=150).fit(rng.normal(size=(600, 16)))
    r = det.score(rng.normal(size=(900, 16)))
    assert r.n_current == 900 and r.details["n_used_current"] == 150
    assert r.details["n_used_reference"] == 150


def test_errors(fitted):
    with pytest.raises(NotFittedError):
        MaximumMeanDiscrepancy().score(np.zeros((200, 4)))
    with pytest.raises(ValueError, match="features but the reference has 32"):
        fitted.score(np.zeros((200, 16)))
    with pytest.raises(ValueError, match="two-dimensional"):
        fitted.score(np.zeros(200))
    with pytest.raises(ValueError, match="non-finite"):
        fitted.score(np.full((200, 32), np.nan))
    with pytest.raises(ValueError, match="n_permutations"):
        MaximumMeanDiscrepancy(n_permutations=10).fit(np.zeros((20, 4)))
    with pytest.raises(ValueError, match="at least 4"):
        MaximumMeanDiscrepancy().fit(np.zeros((3, 4)))


def test_doctests():
    failures, tried = doctest.testmod(detectors.states.mmd)
    assert tried > 0 and failures == 0
