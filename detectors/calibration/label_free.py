"""Label-free accuracy estimate from the calibrated confidence (CBPE-style).

If the probe is calibrated, :math:`P(\\text{correct} \\mid c) = c` (Guo et al. 2017,
Sec. 2), so the expected accuracy of a window is the mean calibrated confidence,
:math:`\\widehat{\\mathrm{acc}} = \\frac1n \\sum_i c_i`: the idea of NannyML's
confidence-based performance estimation (CBPE), here with the probe's
confidence that the *answer* is right. The number of correct answers is then a
Poisson-binomial variable with variance :math:`\\sum_i c_i (1 - c_i)`, which gives
the estimate's standard error :math:`\\sqrt{\\sum_i c_i(1-c_i)} / n` and a normal
interval.

Once labels arrive, the labelled accuracy is shown beside it, with a Wilson
score interval (Wilson 1927), and the estimate's error on the same labelled
events, ``estimated - labelled``. A large error means the calibration itself has
drifted: the estimate is only as good as the calibration (see
:class:`detectors.calibration.calibration_error.CalibrationError`).

Decision: the statistic is the *drop* of the estimated accuracy from the
reference window's, in probability units (negative when accuracy rose); drift
when it exceeds ``threshold``.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from detectors.base import (
    Detector,
    DetectorResult,
    Window,
    as_binary,
    as_probability,
    insufficient_reason,
)
from detectors.calibration.intervals import (
    estimated_accuracy,
    estimated_accuracy_from_sums,
    wilson_interval,
)

__all__ = [
    "EstimatedAccuracyDrop",
    "estimated_accuracy",
    "estimated_accuracy_from_sums",
    "wilson_interval",
]


class EstimatedAccuracyDrop(Detector):
    """Drop of the label-free accuracy estimate from the reference window's.

    Parameters
    ----------
    threshold : float, default 0.05
        Drift is declared when the estimated accuracy fell by more than this
        (probability units: 0.05 is five percentage points).
    confidence_level : float, default 0.95
        Coverage of the intervals in ``details``.
    min_samples : int, default 100
        Fewer events in either window gives an ``insufficient_data`` result.

    Attributes
    ----------
    reference_estimate_ : float
        Estimated accuracy (mean confidence) of the reference window.
    n_reference_ : int
        Number of reference events.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> det = EstimatedAccuracyDrop().fit(rng.beta(8, 2, size=2000))
    >>> round(det.reference_estimate_, 3)
    0.798
    >>> conf = rng.beta(5, 3, size=1000)
    >>> labels = rng.uniform(size=300) < conf[:300]  # calibrated: P(correct) = confidence
    >>> r = det.score(conf, labelled_confidence=conf[:300], correct=labels)
    >>> round(r.statistic, 3), r.is_drift, round(r.details["estimated_accuracy"], 3)
    (0.167, True, 0.631)
    >>> round(r.details["labelled_accuracy"], 3), round(r.details["estimation_error"], 3)
    (0.573, 0.053)
    """

    name = "estimated_accuracy_drop"
    unit = "probability"

    def __init__(
        self, threshold: float = 0.05, confidence_level: float = 0.95, min_samples: int = 100
    ) -> None:
        self.threshold = threshold
        self.confidence_level = confidence_level
        self.min_samples = min_samples

    def fit(self, reference: ArrayLike) -> EstimatedAccuracyDrop:
        """Estimate the reference window's accuracy from its confidences.

        Parameters
        ----------
        reference : array-like of shape (n_samples,)
            Calibrated confidences of the reference window (probability).

        Returns
        -------
        self

        Raises
        ------
        ValueError
            Bad parameters, or confidences outside [0, 1] or not finite.
        """
        c = as_probability(reference, "reference")
        return self.fit_summary(int(c.size), float(c.sum()))

    def score(
        self,
        current: ArrayLike,
        window: Window | None = None,
        labelled_confidence: ArrayLike | None = None,
        correct: ArrayLike | None = None,
    ) -> DetectorResult:
        """Estimated accuracy of the window, its drop, and the labelled accuracy if known.

        Parameters
        ----------
        current : array-like of shape (n_samples,)
            Calibrated confidences of every event in the window.
        window : tuple of (float, float), optional
            ``(start, end)`` in epoch seconds.
        labelled_confidence : array-like of shape (n_labelled,), optional
            Confidences of the window's labelled events.
        correct : array-like of shape (n_labelled,), optional
            Their 0/1 outcomes; given if and only if ``labelled_confidence`` is.

        Returns
        -------
        DetectorResult
            ``statistic`` is ``reference_estimate_ - estimate``; ``details`` holds
            ``estimated_accuracy``, ``estimated_interval``,
            ``reference_estimated_accuracy``, ``n_labelled`` and, with labels,
            ``labelled_accuracy``, ``labelled_interval`` (Wilson),
            ``estimated_accuracy_on_labelled`` and ``estimation_error``.

        Raises
        ------
        NotFittedError
            ``fit`` was not called.
        ValueError
            Confidences outside [0, 1], only one of the labelled arrays, or their
            shapes differ.
        """
        self._check_is_fitted()
        c = as_probability(current, "current")
        labelled = self._labelled(labelled_confidence, correct, self.confidence_level)
        sums = (int(c.size), float(c.sum()), float(np.sum(c * (1.0 - c))))
        return self._finish(sums, labelled, window)

    def fit_summary(self, n: int, total: float) -> EstimatedAccuracyDrop:
        """:meth:`fit` from the reference window's event count and confidence sum.

        Raises
        ------
        ValueError
            Bad parameters, or a sum outside ``[0, n]``.
        """
        self._check_params()
        if not 0.0 < self.confidence_level < 1.0:
            raise ValueError(f"confidence_level must be in (0, 1), got {self.confidence_level!r}")
        if n < 0 or not -1e-9 * n <= total <= n * (1 + 1e-9):
            raise ValueError(f"need n >= 0 and 0 <= total <= n, got n={n}, total={total}")
        self.reference_estimate_ = float(total / n) if n else float("nan")
        self.n_reference_ = int(n)
        return self

    def score_summary(
        self,
        n: int,
        total: float,
        total_variance: float,
        window: Window | None = None,
        labelled: tuple[int, int, float] | None = None,
    ) -> DetectorResult:
        """:meth:`score` from the window's sums (computed elsewhere, e.g. in SQL).

        Parameters
        ----------
        n, total, total_variance
            Events, :math:`\\sum c_i` and :math:`\\sum c_i (1 - c_i)` of the window.
        labelled : (n_labelled, n_correct, confidence_sum), optional
            The window's labelled events: how many, how many correct, their confidence sum.

        Returns
        -------
        DetectorResult
            As :meth:`score`.

        Raises
        ------
        NotFittedError
            ``fit`` or ``fit_summary`` was not called.
        ValueError
            Sums no confidences in [0, 1] could give.
        """
        self._check_is_fitted()
        n_lab, n_correct, conf_sum = labelled or (0, 0, 0.0)
        details = _labelled_details(
            int(n_lab), int(n_correct), float(conf_sum), self.confidence_level
        )
        return self._finish((int(n), float(total), float(total_variance)), details, window)

    def _finish(
        self, sums: tuple[int, float, float], labelled: dict, window: Window | None
    ) -> DetectorResult:
        n = sums[0]
        details: dict = {"reference_estimated_accuracy": self.reference_estimate_, **labelled}
        if n > 0:  # validates the sums, even of a window too small to judge
            est, low, high = estimated_accuracy_from_sums(*sums, level=self.confidence_level)
        reason = insufficient_reason(self.n_reference_, n, self.min_samples)
        if reason is not None:
            return self._result(
                None, n_current=n, window=window, details=details, insufficient_reason=reason
            )
        details.update(estimated_accuracy=est, estimated_interval=(low, high))
        return self._result(
            self.reference_estimate_ - est, n_current=n, window=window, details=details
        )

    @staticmethod
    def _labelled(
        labelled_confidence: ArrayLike | None, correct: ArrayLike | None, level: float
    ) -> dict:
        if (labelled_confidence is None) != (correct is None):
            raise ValueError("give both labelled_confidence and correct, or neither")
        if labelled_confidence is None:
            return {"n_labelled": 0}
        lc = as_probability(labelled_confidence, "labelled_confidence")
        y = as_binary(correct, "correct")
        if lc.shape != y.shape:
            raise ValueError(
                f"labelled_confidence and correct must have the same shape, got {lc.shape} "
                f"and {y.shape}"
            )
        return _labelled_details(int(y.size), int(y.sum()), float(lc.sum()), level)


def _labelled_details(n: int, n_correct: int, confidence_sum: float, level: float) -> dict:
    """The labelled accuracy (Wilson interval) and the estimate's error on the same events."""
    if n == 0:
        return {"n_labelled": 0}
    acc, on_labelled = n_correct / n, confidence_sum / n
    return {
        "n_labelled": n,
        "labelled_accuracy": acc,
        "labelled_interval": wilson_interval(n_correct, n, level),
        "estimated_accuracy_on_labelled": on_labelled,
        "estimation_error": on_labelled - acc,
    }
