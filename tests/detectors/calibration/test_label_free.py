"""Label-free accuracy estimate: the mean calibrated confidence, its interval, its error."""

from __future__ import annotations

import doctest

import numpy as np
import pytest

import detectors.calibration.label_free
from detectors.calibration.label_free import (
    EstimatedAccuracyDrop,
    estimated_accuracy,
    wilson_interval,
)


def test_estimate_is_the_mean_confidence_with_poisson_binomial_se():
    conf = np.tile([0.9, 0.8, 0.6, 0.7], 25)
    est, low, high = estimated_accuracy(conf, level=0.95)
    assert est == pytest.approx(0.75)
    se = np.sqrt(25 * (0.09 + 0.16 + 0.24 + 0.21)) / 100
    assert (low, high) == pytest.approx((0.75 - 1.959964 * se, 0.75 + 1.959964 * se), rel=1e-6)


def test_interval_covers_the_true_accuracy_of_calibrated_traffic():
    rng = np.random.default_rng(3)
    covered = 0
    for _ in range(200):
        conf = rng.beta(6, 2, 400)
        correct = rng.uniform(size=400) < conf
        _, low, high = estimated_accuracy(conf)
        covered += low <= correct.mean() <= high
    assert 0.90 <= covered / 200 <= 0.99  # nominal 95 %


def test_wilson_interval_hand_values():
    # 8 of 10 at 95 %: (0.4902, 0.9433), the textbook example (Newcombe 1998, Table I style)
    assert wilson_interval(8, 10) == pytest.approx((0.4902, 0.9433), abs=1e-4)
    assert wilson_interval(0, 10)[0] == 0.0
    with pytest.raises(ValueError):
        wilson_interval(11, 10)


def test_detector_reports_labelled_accuracy_and_estimation_error():
    rng = np.random.default_rng(4)
    det = EstimatedAccuracyDrop(threshold=0.05).fit(rng.beta(8, 2, 3000))
    conf = rng.beta(8, 2, 2000)
    over = np.clip(conf + 0.15, 0, 1)  # overconfident: labels drawn from conf, scores from over
    labels = rng.uniform(size=2000) < conf
    r = det.score(over, labelled_confidence=over[:800], correct=labels[:800], window=(0.0, 1.0))
    d = r.details
    assert d["estimated_accuracy"] == pytest.approx(over.mean())
    assert d["labelled_accuracy"] == pytest.approx(labels[:800].mean())
    assert d["estimation_error"] == pytest.approx(over[:800].mean() - labels[:800].mean())
    assert d["estimation_error"] > 0.1  # overconfidence shows as estimation error
    assert d["n_labelled"] == 800 and d["labelled_interval"][0] < d["labelled_accuracy"]
    assert r.statistic < 0 and r.is_drift is False  # estimated accuracy rose: no drop


def test_drop_is_drift_and_small_windows_are_insufficient():
    rng = np.random.default_rng(5)
    det = EstimatedAccuracyDrop().fit(rng.beta(8, 2, 1000))
    assert det.score(rng.beta(4, 3, 500)).is_drift
    small = det.score(rng.beta(8, 2, 20), labelled_confidence=[0.9], correct=[1])
    assert small.insufficient_data and small.details["labelled_accuracy"] == 1.0


def test_errors():
    det = EstimatedAccuracyDrop().fit([0.5] * 200)
    with pytest.raises(ValueError, match="both"):
        det.score([0.5] * 200, labelled_confidence=[0.5])
    with pytest.raises(ValueError, match="same shape"):
        det.score([0.5] * 200, labelled_confidence=[0.5, 0.6], correct=[1])
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        det.score([1.5] * 200)


def test_doctests():
    failures, tried = doctest.testmod(detectors.calibration.label_free)
    assert tried > 0 and failures == 0
