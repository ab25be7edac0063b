"""Thresholds from a false-alarm rate: the resampled null holds its rate at every window size,
and a real shift still alerts."""

import numpy as np
import pytest

from detectors.scores.js import JensenShannonDistance
from detectors.scores.kl import KLDivergence
from detectors.scores.null import critical_value, null_statistics, p_value
from detectors.scores.psi import PopulationStabilityIndex


def test_p_value_and_critical_value_agree():
    null = np.sort(np.random.default_rng(0).exponential(size=999))
    c = critical_value(null, 0.01)
    assert p_value(null, c + 1e-12) <= 0.01 < p_value(null, c)
    assert p_value(null, 1e9) == pytest.approx(1 / 1000)  # never 0
    assert critical_value(null[:50], 0.01) == float("inf")  # too few resamples to reach 1 %
    with pytest.raises(ValueError, match="alpha"):
        critical_value(null, 1.5)
    with pytest.raises(ValueError, match="n_resamples"):
        null_statistics(np.array([3, 4]), 10, lambda p, q: 0.0, 1e-4, 0, 0)


@pytest.mark.parametrize("cls", [KLDivergence, PopulationStabilityIndex, JensenShannonDistance])
@pytest.mark.parametrize("n", [100, 400])
def test_false_alarm_rate_holds_on_unshifted_windows(cls, n):
    """Floors set to 0 leave the null alone in charge: about alpha of unshifted windows alarm."""
    rng = np.random.default_rng(1)
    det = cls(threshold=1e-9, alpha=0.05, null_resamples=400).fit(rng.beta(5, 2, 3000))
    alarms = np.mean([det.score(rng.beta(5, 2, n)).is_drift for _ in range(300)])
    assert alarms < 0.1  # 0.05 expected; binomial sd at 300 windows is 0.013
    fixed = cls(threshold=1e-9).fit(rng.beta(5, 2, 3000))
    assert fixed.score(rng.beta(5, 2, n)).is_drift  # a fixed tiny threshold alarms always


def test_a_shift_alerts_with_its_p_value_and_the_floor_still_applies():
    rng = np.random.default_rng(2)
    det = KLDivergence(alpha=0.01, null_resamples=500).fit(rng.beta(5, 2, 2000))
    shifted = det.score(rng.beta(2, 2, 300))
    assert shifted.is_drift and shifted.p_value < 0.01
    assert shifted.threshold == max(0.15, shifted.details["null_critical_value"])
    assert shifted.details["floor"] == 0.15 and shifted.details["alpha"] == 0.01
    # significant but tiny: below the floor, no alert
    big = KLDivergence(alpha=0.01, null_resamples=500).fit(rng.beta(5, 2, 200_000))
    slight = big.score(rng.beta(5.3, 2, 100_000))
    assert slight.p_value < 0.01 and slight.statistic < 0.15 and not slight.is_drift
    again = KLDivergence(alpha=0.01, null_resamples=500).fit(rng.beta(5, 2, 2000))
    assert again.random_state == 0 and again.get_params()["alpha"] == 0.01
