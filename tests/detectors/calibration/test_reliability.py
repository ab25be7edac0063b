"""Adaptive ECE, ECE against torchmetrics, and the bootstrap intervals."""

from __future__ import annotations

import numpy as np
import pytest

from detectors.bootstrap import bootstrap_calibration, calibration_metrics
from detectors.calibration.calibration_error import CalibrationError
from detectors.calibration.reliability import (
    adaptive_calibration_error,
    brier_score,
    expected_calibration_error,
    maximum_calibration_error,
)


def test_ece_equals_torchmetrics():
    torch = pytest.importorskip("torch")
    tm = pytest.importorskip("torchmetrics.functional.classification")
    rng = np.random.default_rng(11)
    conf = rng.uniform(size=5000)
    correct = rng.uniform(size=5000) < conf**1.3
    for n_bins in (15, 10):
        ours = expected_calibration_error(conf, correct, n_bins=n_bins)
        theirs = tm.binary_calibration_error(
            torch.tensor(conf, dtype=torch.float64),
            torch.tensor(correct.astype(np.int64)),
            n_bins=n_bins,
            norm="l1",
        )
        assert ours == pytest.approx(float(theirs), abs=1e-9)
    mce = tm.binary_calibration_error(
        torch.tensor(conf, dtype=torch.float64),
        torch.tensor(correct.astype(np.int64)),
        n_bins=15,
        norm="max",
    )
    assert maximum_calibration_error(conf, correct, 15) == pytest.approx(float(mce), abs=1e-9)


def test_adaptive_ece_hand_case():
    # 6 samples, 3 equal-mass bins of 2 after sorting by confidence:
    #   (0.1, 0.3) correct (0, 1): |0.5 - 0.2| = 0.3
    #   (0.35, 0.85) correct (0, 0): |0 - 0.6| = 0.6
    #   (0.9, 0.95) correct (1, 1): |1 - 0.925| = 0.075
    #   ACE = (2 * 0.3 + 2 * 0.6 + 2 * 0.075) / 6 = 0.325
    conf = [0.1, 0.3, 0.35, 0.9, 0.95, 0.85]
    correct = [0, 1, 0, 1, 1, 0]
    assert adaptive_calibration_error(conf, correct, n_bins=3) == pytest.approx(0.325)


def test_adaptive_ece_is_small_for_calibrated_scores():
    rng = np.random.default_rng(12)
    conf = rng.beta(6, 2, 20000)
    assert adaptive_calibration_error(conf, rng.uniform(size=20000) < conf) < 0.02
    assert adaptive_calibration_error(conf, rng.uniform(size=20000) < conf - 0.2) > 0.15


def test_weighted_metrics_equal_metrics_of_the_repeated_sample():
    rng = np.random.default_rng(13)
    conf = rng.uniform(size=300)
    correct = rng.uniform(size=300) < conf
    w = rng.integers(0, 3, size=300)
    rep_conf, rep_y = np.repeat(conf, w), np.repeat(correct, w)
    got = calibration_metrics(conf, correct, 15, weights=w)
    assert got["ece"] == pytest.approx(expected_calibration_error(rep_conf, rep_y))
    assert got["mce"] == pytest.approx(maximum_calibration_error(rep_conf, rep_y))
    assert got["brier"] == pytest.approx(brier_score(rep_conf, rep_y))
    assert got["ace"] == pytest.approx(adaptive_calibration_error(rep_conf, rep_y), abs=1e-12)


def test_bootstrap_intervals_bracket_the_estimate_and_cover_the_truth():
    rng = np.random.default_rng(14)
    conf = rng.uniform(0.3, 1.0, 2000)
    correct = rng.uniform(size=2000) < conf - 0.1  # true ECE about 0.1
    ci = bootstrap_calibration(conf, correct, n_resamples=300, random_state=1)
    for name, interval in ci.items():
        assert interval.low <= interval.estimate <= interval.high, name
        assert interval.level == 0.95
    assert ci["ece"].low < 0.1 < ci["ece"].high
    assert ci["ece"].high - ci["ece"].low < 0.06
    again = bootstrap_calibration(conf, correct, n_resamples=300, random_state=1)
    assert again == ci  # seeded


def test_detector_carries_ace_and_intervals():
    rng = np.random.default_rng(15)
    conf = rng.uniform(0.5, 1.0, 1000)
    det = CalibrationError(n_bootstrap=50).fit()
    r = det.score(conf, rng.uniform(size=1000) < conf)
    assert set(r.details["intervals"]) == {"ece", "ace", "mce", "brier"}
    assert r.details["intervals"]["ece"]["estimate"] == pytest.approx(r.statistic, rel=1e-12)
    assert r.details["ace"] == pytest.approx(r.details["intervals"]["ace"]["estimate"])
    no_ci = CalibrationError(n_bootstrap=0).fit().score(conf, conf > 0.7)
    assert "intervals" not in no_ci.details


def test_bootstrap_errors():
    with pytest.raises(ValueError, match="n_resamples"):
        bootstrap_calibration([0.5], [1], n_resamples=0)
    with pytest.raises(ValueError, match="level"):
        bootstrap_calibration([0.5], [1], level=1.0)
    with pytest.raises(ValueError, match="n_bootstrap"):
        CalibrationError(n_bootstrap=-1).fit()
