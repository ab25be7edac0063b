"""Two-sample KS: equal to scipy's asymptotic ks_2samp, threshold = critical value at alpha."""

from __future__ import annotations

import doctest

import numpy as np
import pytest
from scipy.stats import ks_2samp

import detectors.scores.ks
from detectors.scores.ks import KolmogorovSmirnov


@pytest.mark.parametrize(("n", "m"), [(2000, 1000), (150, 333), (5000, 5000)])
def test_equals_scipy_asymptotic(n, m):
    rng = np.random.default_rng(n + m)
    ref, cur = rng.normal(size=n), rng.normal(0.05, 1.0, size=m)
    r = KolmogorovSmirnov(min_samples=1).fit(ref).score(cur)
    expected = ks_2samp(cur, ref, method="asymp")
    assert r.statistic == pytest.approx(expected.statistic, abs=1e-15)
    assert r.p_value == pytest.approx(expected.pvalue, rel=1e-12)


def test_critical_value_matches_the_p_value_decision():
    rng = np.random.default_rng(2)
    det = KolmogorovSmirnov(alpha=0.05).fit(rng.normal(size=800))
    results = [det.score(rng.normal(shift, 1.0, 400)) for shift in np.linspace(0, 0.3, 40)]
    assert {r.is_drift for r in results} == {True, False}
    for r in results:
        assert r.is_drift == (r.p_value < 0.05) == (r.statistic > r.threshold)
    # The 95 % critical value of n_e = 267: about 1.358 / sqrt(267) (Smirnov's c(0.05))
    assert results[0].threshold == pytest.approx(1.358 / np.sqrt(267), rel=0.02)


def test_false_alarm_rate_on_identical_distributions():
    rng = np.random.default_rng(11)
    det = KolmogorovSmirnov().fit(rng.uniform(size=1000))
    alarms = sum(det.score(rng.uniform(size=300)).is_drift for _ in range(100))
    assert alarms <= 10


def test_bad_parameters():
    with pytest.raises(ValueError, match="alpha"):
        KolmogorovSmirnov(alpha=1.5).fit([0.1, 0.2])
    with pytest.raises(ValueError, match="min_samples"):
        KolmogorovSmirnov(min_samples=0).fit([0.1, 0.2])
    with pytest.raises(ValueError, match="non-finite"):
        KolmogorovSmirnov().fit([0.1, float("inf")])


def test_doctests():
    failures, tried = doctest.testmod(detectors.scores.ks)
    assert tried > 0 and failures == 0
