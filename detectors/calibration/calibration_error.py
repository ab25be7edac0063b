"""Calibration error of the confidence score on labelled events.

``confidence`` is the predicted probability that the served answer is correct;
``correct`` is the delayed ground truth (1 right, 0 wrong). Bins are ``n_bins``
equal-width intervals of [0, 1], right-closed as in Guo et al. (2017),
:math:`I_m = ((m-1)/M, m/M]`, with a confidence of exactly 0 put in the first bin.

- ECE, Guo et al. 2017, "On Calibration of Modern Neural Networks", Eq. 3:
  :math:`\\sum_m \\frac{|B_m|}{n} |\\mathrm{acc}(B_m) - \\mathrm{conf}(B_m)|`.
- MCE, same paper, Eq. 5: :math:`\\max_m |\\mathrm{acc}(B_m) - \\mathrm{conf}(B_m)|`
  over non-empty bins.
- Brier score (Brier 1950): :math:`\\frac{1}{n} \\sum_i (c_i - y_i)^2`.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from detectors.base import Detector, DetectorResult, Window
from detectors.bootstrap import bootstrap_calibration
from detectors.calibration.reliability import (
    ReliabilityDiagram,
    _diagram,
    _ece,
    _mce,
    _validate,
    adaptive_calibration_error,
    brier_score,
    expected_calibration_error,
    maximum_calibration_error,
    reliability_diagram,
)

__all__ = [
    "CalibrationError",
    "ReliabilityDiagram",
    "adaptive_calibration_error",
    "brier_score",
    "expected_calibration_error",
    "maximum_calibration_error",
    "reliability_diagram",
]


class CalibrationError(Detector):
    """Calibration drift: the ECE of a labelled window above a fixed threshold.

    The decision uses the absolute ECE of the current window, not its change:
    a probe that was miscalibrated from the start should alert too. ``fit``
    stores the reference ECE (``reference_ece_``) only for context, reported in
    ``details``; ``fit()`` with no arguments is allowed when no labelled
    reference exists. Only the current window is held to ``min_samples``.

    Parameters
    ----------
    threshold : float, default 0.10
        Drift is declared when ECE exceeds this value.
    n_bins : int, default 15
        Number of equal-width bins on [0, 1] (and of equal-mass bins for the adaptive ECE).
    min_samples : int, default 100
        Fewer labelled samples in the current window gives ``insufficient_data``.
    n_bootstrap : int, default 200
        Bootstrap resamples for the intervals in ``details`` (0: no intervals).
    confidence_level : float, default 0.95
        Coverage of the bootstrap percentile intervals.
    random_state : int, default 0
        Seed of the bootstrap.

    Attributes
    ----------
    reference_ece_ : float or None
        ECE of the reference window, None if fitted without one.
    n_reference_ : int
        Number of labelled reference samples (0 without a reference).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> conf = rng.uniform(0.5, 1.0, size=2000)
    >>> det = CalibrationError().fit(conf, rng.uniform(size=2000) < conf)
    >>> round(det.reference_ece_, 3)
    0.013
    >>> overconfident = det.score(conf, rng.uniform(size=2000) < conf - 0.2)
    >>> round(overconfident.statistic, 3), overconfident.is_drift
    (0.2, True)
    """

    name = "calibration_error"
    unit = ""

    def __init__(
        self,
        threshold: float = 0.10,
        n_bins: int = 15,
        min_samples: int = 100,
        n_bootstrap: int = 200,
        confidence_level: float = 0.95,
        random_state: int = 0,
    ) -> None:
        self.threshold = threshold
        self.n_bins = n_bins
        self.min_samples = min_samples
        self.n_bootstrap = n_bootstrap
        self.confidence_level = confidence_level
        self.random_state = random_state

    def fit(
        self, confidence: ArrayLike | None = None, correct: ArrayLike | None = None
    ) -> CalibrationError:
        """Validate parameters and store the reference ECE (optional).

        Parameters
        ----------
        confidence : array-like of shape (n_samples,), optional
            Reference confidences (probability).
        correct : array-like of shape (n_samples,), optional
            Reference 0/1 outcomes; given if and only if ``confidence`` is.

        Returns
        -------
        self

        Raises
        ------
        ValueError
            Bad parameters, only one of the two arrays given, or invalid arrays.
        """
        self._check_params()
        if isinstance(self.n_bins, bool) or not isinstance(self.n_bins, int) or self.n_bins < 1:
            raise ValueError(f"n_bins must be a positive int, got {self.n_bins!r}")
        nb = self.n_bootstrap
        if isinstance(nb, bool) or not isinstance(nb, int) or nb < 0:
            raise ValueError(f"n_bootstrap must be an int >= 0, got {nb!r}")
        if not 0.0 < self.confidence_level < 1.0:
            raise ValueError(f"confidence_level must be in (0, 1), got {self.confidence_level!r}")
        if (confidence is None) != (correct is None):
            raise ValueError("give both confidence and correct for the reference, or neither")
        if confidence is None:
            self.reference_ece_ = None
            self.n_reference_ = 0
            return self
        d = reliability_diagram(confidence, correct, self.n_bins)  # type: ignore[arg-type]
        self.reference_ece_ = _ece(d)
        self.n_reference_ = d.n_samples
        return self

    def score(
        self, confidence: ArrayLike, correct: ArrayLike, window: Window | None = None
    ) -> DetectorResult:
        """ECE of a labelled window, with MCE, Brier and the reliability bins in details.

        Parameters
        ----------
        confidence : array-like of shape (n_samples,)
            Confidences of the labelled events in the window (probability).
        correct : array-like of shape (n_samples,)
            Their 0/1 outcomes.
        window : tuple of (float, float), optional
            ``(start, end)`` of the window in epoch seconds.

        Returns
        -------
        DetectorResult
            ``statistic`` is the ECE; ``details`` holds ``ace`` (adaptive ECE),
            ``mce``, ``brier``, ``accuracy``, ``mean_confidence``,
            ``reference_ece``, ``n_bins``, ``reliability`` (per-bin ``counts``,
            ``mean_confidence``, ``accuracy``; None for empty bins) and, with
            ``n_bootstrap > 0``, ``intervals``: for each of ``ece``, ``ace``,
            ``mce``, ``brier`` a ``{"estimate", "low", "high", "level"}`` percentile
            bootstrap interval (:mod:`detectors.bootstrap`).

        Raises
        ------
        NotFittedError
            ``fit`` was not called.
        ValueError
            As :func:`reliability_diagram`, except that an empty window gives
            ``insufficient_data`` rather than an error.
        """
        self._check_is_fitted()
        context = {"n_bins": self.n_bins, "reference_ece": self.reference_ece_}
        c, y = _validate(confidence, correct, self.n_bins, allow_empty=True)
        if c.size < self.min_samples:
            reason = (
                f"current window has {c.size} labelled samples < min_samples={self.min_samples}"
            )
            return self._result(
                None, n_current=c.size, window=window, details=context, insufficient_reason=reason
            )
        d = _diagram(c, y, self.n_bins)
        return self._score_diagram(d, float(np.sum((c - y) ** 2)), (c, y), window)

    def score_bins(
        self,
        counts: ArrayLike,
        confidence_sum: ArrayLike,
        correct_sum: ArrayLike,
        squared_error_sum: float,
        sample: tuple[ArrayLike, ArrayLike] | None = None,
        window: Window | None = None,
    ) -> DetectorResult:
        """:meth:`score` from per-bin sums computed elsewhere (e.g. in SQL, for any window size).

        ECE, MCE, Brier score, accuracy and the reliability bins are exact; the adaptive
        ECE and the bootstrap intervals need the values themselves and come from
        ``sample`` (the whole window when it is small enough; absent without one).

        Parameters
        ----------
        counts : array-like of shape (n_bins,)
            Labelled events per right-closed equal-width bin.
        confidence_sum, correct_sum : array-like of shape (n_bins,)
            Their confidence sum (probability) and number correct.
        squared_error_sum : float
            :math:`\\sum_i (c_i - y_i)^2` over the window.
        sample : (confidence, correct), optional
            Arrays of shape (n_sample,) drawn from the window's labelled events.

        Returns
        -------
        DetectorResult
            As :meth:`score`, with ``n_sample`` in ``details``.

        Raises
        ------
        NotFittedError
            ``fit`` was not called.
        ValueError
            Shapes other than (n_bins,), negative counts, or sums no labelled events give.
        """
        self._check_is_fitted()
        n_ = np.asarray(counts, dtype=np.int64)
        conf, corr = (np.asarray(v, dtype=np.float64) for v in (confidence_sum, correct_sum))
        k = self.n_bins
        if n_.shape != (k,) or conf.shape != (k,) or corr.shape != (k,) or (n_ < 0).any():
            raise ValueError(f"need {k} non-negative counts and {k} sums per bin")
        tol = 1e-9 * np.maximum(n_, 1)
        if (conf < -tol).any() or (conf > n_ + tol).any() or (corr < 0).any() or (corr > n_).any():
            raise ValueError("bin sums outside [0, count]: not sums of probabilities and 0/1")
        n = int(n_.sum())
        context = {"n_bins": k, "reference_ece": self.reference_ece_}
        if n < self.min_samples:
            reason = f"current window has {n} labelled samples < min_samples={self.min_samples}"
            return self._result(
                None, n_current=n, window=window, details=context, insufficient_reason=reason
            )
        with np.errstate(invalid="ignore", divide="ignore"):
            mean_conf = np.where(n_ > 0, conf / n_, np.nan)
            acc = np.where(n_ > 0, corr / n_, np.nan)
        d = ReliabilityDiagram(np.linspace(0.0, 1.0, k + 1), n_, mean_conf, acc)
        valid = None if sample is None else _validate(*sample, k, allow_empty=True)
        return self._score_diagram(d, float(squared_error_sum), valid, window)

    def _score_diagram(
        self,
        d: ReliabilityDiagram,
        squared_error_sum: float,
        sample: tuple[NDArray[np.float64], NDArray[np.float64]] | None,
        window: Window | None,
    ) -> DetectorResult:
        n = d.n_samples
        has_sample = sample is not None and sample[0].size > 0
        details = {
            "n_bins": self.n_bins,
            "reference_ece": self.reference_ece_,
            "ace": adaptive_calibration_error(*sample, self.n_bins) if has_sample else None,
            "mce": _mce(d),
            "brier": squared_error_sum / n,
            "accuracy": float(np.nansum(d.accuracy * d.counts) / n),
            "mean_confidence": float(np.nansum(d.mean_confidence * d.counts) / n),
            "n_sample": int(sample[0].size) if has_sample else 0,
            "reliability": {
                "counts": tuple(int(v) for v in d.counts),
                "mean_confidence": _nullable(d.mean_confidence),
                "accuracy": _nullable(d.accuracy),
            },
        }
        if self.n_bootstrap > 0 and has_sample:
            intervals = bootstrap_calibration(
                *sample,
                self.n_bins,
                n_resamples=self.n_bootstrap,
                level=self.confidence_level,
                random_state=self.random_state,
            )
            details["intervals"] = {k: v.as_dict() for k, v in intervals.items()}
        return self._result(_ece(d), n_current=n, window=window, details=details)


def _nullable(a: NDArray[np.float64]) -> tuple[float | None, ...]:
    return tuple(None if np.isnan(v) else float(v) for v in a)
