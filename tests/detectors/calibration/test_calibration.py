"""Calibration metrics (ECE, MCE, Brier, reliability diagram) and the CalibrationError detector."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.calibration import calibration_curve
from sklearn.metrics import brier_score_loss

from detectors.base import NotFittedError
from detectors.calibration.calibration_error import (
    CalibrationError,
    brier_score,
    expected_calibration_error,
    maximum_calibration_error,
    reliability_diagram,
)

# Hand example, 5 bins (0,.2] (.2,.4] (.4,.6] (.6,.8] (.8,1]:
#   bin 1: conf 0.1            correct 0      -> conf 0.1,   acc 0,   gap 0.1,   weight 1/6
#   bin 2: conf 0.3, 0.35      correct 1, 0   -> conf 0.325, acc 0.5, gap 0.175, weight 2/6
#   bin 5: conf 0.9, 0.95, 0.85 correct 1,1,0 -> conf 0.9,  acc 2/3, gap 7/30,  weight 3/6
#   ECE = (0.1 + 2 * 0.175 + 3 * 7/30) / 6 = 1.15 / 6;  MCE = 7/30
#   Brier = (0.01 + 0.49 + 0.1225 + 0.01 + 0.0025 + 0.7225) / 6 = 1.3575 / 6
CONF = [0.1, 0.3, 0.35, 0.9, 0.95, 0.85]
CORRECT = [0, 1, 0, 1, 1, 0]


def test_ece_hand_case():
    assert expected_calibration_error(CONF, CORRECT, n_bins=5) == pytest.approx(1.15 / 6)


def test_mce_hand_case():
    assert maximum_calibration_error(CONF, CORRECT, n_bins=5) == pytest.approx(7 / 30)


def test_brier_hand_case():
    assert brier_score(CONF, CORRECT) == pytest.approx(1.3575 / 6)


def test_reliability_diagram_hand_case():
    d = reliability_diagram(CONF, np.array(CORRECT, dtype=bool), n_bins=5)
    np.testing.assert_array_equal(d.counts, [1, 2, 0, 0, 3])
    np.testing.assert_allclose(d.mean_confidence, [0.1, 0.325, np.nan, np.nan, 0.9])
    np.testing.assert_allclose(d.accuracy, [0.0, 0.5, np.nan, np.nan, 2 / 3])
    np.testing.assert_allclose(d.bin_edges, np.linspace(0, 1, 6))
    assert d.n_samples == 6


def test_bins_are_right_closed_and_zero_goes_to_the_first_bin():
    d = reliability_diagram([0.0, 0.2, 0.2000001, 0.6, 1.0], [1, 1, 1, 1, 1], n_bins=5)
    np.testing.assert_array_equal(d.counts, [2, 1, 1, 0, 1])


def test_agrees_with_sklearn():
    rng = np.random.default_rng(7)
    conf = rng.uniform(size=3000)
    correct = rng.uniform(size=3000) < conf**1.5
    d = reliability_diagram(conf, correct, n_bins=10)
    prob_true, prob_pred = calibration_curve(correct, conf, n_bins=10, strategy="uniform")
    filled = d.counts > 0
    np.testing.assert_allclose(d.accuracy[filled], prob_true)
    np.testing.assert_allclose(d.mean_confidence[filled], prob_pred)
    assert brier_score(conf, correct) == pytest.approx(brier_score_loss(correct, conf))


def test_calibrated_scores_have_small_ece_and_shifted_large():
    rng = np.random.default_rng(11)
    conf = rng.uniform(0.3, 1.0, size=20000)
    calibrated = rng.uniform(size=conf.size) < conf
    overconfident = rng.uniform(size=conf.size) < conf - 0.15
    assert expected_calibration_error(conf, calibrated) < 0.02
    assert expected_calibration_error(conf, overconfident) == pytest.approx(0.15, abs=0.02)


@pytest.mark.parametrize(
    ("conf", "correct", "match"),
    [
        ([0.1, 0.2], [1], "same shape"),
        ([0.1, 1.2], [1, 0], r"\[0, 1\].*1\.2"),
        ([0.1, -0.01], [1, 0], r"\[0, 1\]"),
        ([0.1, float("nan")], [1, 0], "non-finite"),
        ([0.1, 0.2], [1, 2], "binary"),
        ([0.1, 0.2], [1, 0.5], "binary"),
        ([], [], "empty"),
        ([[0.1, 0.2]], [[1, 0]], "one-dimensional"),
    ],
)
def test_input_validation(conf, correct, match):
    for fn in (expected_calibration_error, maximum_calibration_error, brier_score):
        with pytest.raises(ValueError, match=match):
            fn(conf, correct)


def test_n_bins_validation():
    with pytest.raises(ValueError, match="n_bins"):
        expected_calibration_error(CONF, CORRECT, n_bins=0)


def test_detector_scores_ece_with_mce_and_brier_in_details():
    rng = np.random.default_rng(3)
    conf = rng.uniform(0.5, 1.0, size=400)
    correct = rng.uniform(size=400) < conf - 0.2
    det = CalibrationError(threshold=0.1, n_bins=15).fit(conf, rng.uniform(size=400) < conf)
    result = det.score(conf, correct, window=(0.0, 3600.0))
    assert result.statistic == pytest.approx(expected_calibration_error(conf, correct, 15))
    assert result.details["mce"] == pytest.approx(maximum_calibration_error(conf, correct, 15))
    assert result.details["brier"] == pytest.approx(brier_score(conf, correct))
    assert result.details["accuracy"] == pytest.approx(correct.mean())
    assert result.details["reference_ece"] == pytest.approx(det.reference_ece_)
    assert sum(result.details["reliability"]["counts"]) == 400
    assert result.is_drift is (result.statistic > 0.1)
    assert result.is_drift  # 0.2 below the diagonal
    assert det.n_reference_ == 400 and result.n_current == 400


def test_detector_without_reference():
    det = CalibrationError().fit()
    assert det.reference_ece_ is None and det.n_reference_ == 0
    conf = np.linspace(0.01, 0.99, 200)
    result = det.score(conf, conf > 0.5)
    assert result.statistic == pytest.approx(expected_calibration_error(conf, conf > 0.5))


def test_detector_insufficient_data_still_validates():
    det = CalibrationError(min_samples=100).fit()
    result = det.score([0.9] * 99, [1] * 99)
    assert result.insufficient_data and result.statistic is None and not result.is_drift
    assert "99" in result.details["reason"]
    assert det.score([], []).insufficient_data
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        det.score([1.5] * 10, [1] * 10)
    with pytest.raises(ValueError, match="same shape"):
        det.score([0.5] * 10, [1] * 9)


def test_detector_errors():
    with pytest.raises(NotFittedError):
        CalibrationError().score([0.5] * 200, [1] * 200)
    with pytest.raises(ValueError, match="both"):
        CalibrationError().fit([0.5, 0.6])
    with pytest.raises(ValueError, match="n_bins"):
        CalibrationError(n_bins=0).fit()
