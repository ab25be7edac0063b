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

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from detectors.base import Detector, DetectorResult, Window, as_binary, as_probability


@dataclass(frozen=True)
class ReliabilityDiagram:
    """Per-bin statistics of a reliability diagram (Guo et al. 2017, Fig. 1).

    Attributes
    ----------
    bin_edges : ndarray of shape (n_bins + 1,)
        Equal-width edges on [0, 1].
    counts : ndarray of shape (n_bins,)
        Number of samples per bin, :math:`|B_m|`.
    mean_confidence : ndarray of shape (n_bins,)
        :math:`\\mathrm{conf}(B_m)`, probability; NaN for an empty bin.
    accuracy : ndarray of shape (n_bins,)
        :math:`\\mathrm{acc}(B_m)`, fraction correct; NaN for an empty bin.
    """

    bin_edges: NDArray[np.float64]
    counts: NDArray[np.int64]
    mean_confidence: NDArray[np.float64]
    accuracy: NDArray[np.float64]

    @property
    def n_samples(self) -> int:
        """Total number of samples."""
        return int(self.counts.sum())

    @property
    def gap(self) -> NDArray[np.float64]:
        """``|accuracy - mean_confidence|`` per bin, shape (n_bins,); NaN when empty."""
        return np.abs(self.accuracy - self.mean_confidence)


def _validate(
    confidence: ArrayLike, correct: ArrayLike, n_bins: int, allow_empty: bool = False
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    if isinstance(n_bins, bool) or not isinstance(n_bins, (int, np.integer)) or n_bins < 1:
        raise ValueError(f"n_bins must be a positive int, got {n_bins!r}")
    conf = as_probability(confidence, "confidence")
    y = as_binary(correct, "correct")
    if conf.shape != y.shape:
        raise ValueError(
            f"confidence and correct must have the same shape, got {conf.shape} and {y.shape}"
        )
    if conf.size == 0 and not allow_empty:
        raise ValueError("confidence and correct are empty: need at least one labelled sample")
    return conf, y


def reliability_diagram(
    confidence: ArrayLike, correct: ArrayLike, n_bins: int = 15
) -> ReliabilityDiagram:
    """Bin confidences into equal-width bins and compute count, confidence, accuracy.

    Parameters
    ----------
    confidence : array-like of shape (n_samples,)
        Predicted probability that each answer is correct, in [0, 1].
    correct : array-like of shape (n_samples,)
        1 (or True) when the answer was right, 0 (or False) otherwise.
    n_bins : int, default 15
        Number of equal-width bins on [0, 1].

    Returns
    -------
    ReliabilityDiagram

    Raises
    ------
    ValueError
        Shapes differ, inputs empty or not 1-D, a confidence outside [0, 1] or
        NaN, a non-binary ``correct``, or ``n_bins < 1``.
    """
    conf, y = _validate(confidence, correct, n_bins)
    return _diagram(conf, y, n_bins)


def _diagram(conf: NDArray[np.float64], y: NDArray[np.float64], n_bins: int) -> ReliabilityDiagram:
    """:func:`reliability_diagram` on validated arrays."""
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    # Right-closed bins ((m-1)/M, m/M]; searchsorted on the inner edges puts 0.0 in bin 0.
    idx = np.searchsorted(edges[1:-1], conf, side="left")
    counts = np.bincount(idx, minlength=n_bins)
    conf_sum = np.bincount(idx, weights=conf, minlength=n_bins)
    correct_sum = np.bincount(idx, weights=y, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_conf = np.where(counts > 0, conf_sum / counts, np.nan)
        acc = np.where(counts > 0, correct_sum / counts, np.nan)
    return ReliabilityDiagram(edges, counts.astype(np.int64), mean_conf, acc)


def expected_calibration_error(
    confidence: ArrayLike, correct: ArrayLike, n_bins: int = 15
) -> float:
    """Expected calibration error, Guo et al. (2017) Eq. 3.

    Parameters and errors as :func:`reliability_diagram`.

    Returns
    -------
    float
        ECE in [0, 1]: the count-weighted mean of ``|acc(B_m) - conf(B_m)|``
        (a difference of probabilities).
    """
    return _ece(reliability_diagram(confidence, correct, n_bins))


def maximum_calibration_error(confidence: ArrayLike, correct: ArrayLike, n_bins: int = 15) -> float:
    """Maximum calibration error over non-empty bins, Guo et al. (2017) Eq. 5.

    Parameters and errors as :func:`reliability_diagram`; returns a float in [0, 1].
    """
    return _mce(reliability_diagram(confidence, correct, n_bins))


def brier_score(confidence: ArrayLike, correct: ArrayLike) -> float:
    """Brier score, mean squared difference of confidence and outcome (Brier 1950).

    Parameters and errors as :func:`reliability_diagram` (without ``n_bins``).

    Returns
    -------
    float
        In [0, 1]; 0 is perfect, 0.25 is a constant 0.5 forecast.
    """
    conf, y = _validate(confidence, correct, 1)
    return float(np.mean((conf - y) ** 2))


def _ece(d: ReliabilityDiagram) -> float:
    filled = d.counts > 0
    return float(np.sum(d.counts[filled] / d.n_samples * d.gap[filled]))


def _mce(d: ReliabilityDiagram) -> float:
    return float(np.max(d.gap[d.counts > 0]))


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
        Number of equal-width bins on [0, 1].
    min_samples : int, default 100
        Fewer labelled samples in the current window gives ``insufficient_data``.

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

    def __init__(self, threshold: float = 0.10, n_bins: int = 15, min_samples: int = 100) -> None:
        self.threshold = threshold
        self.n_bins = n_bins
        self.min_samples = min_samples

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
            ``statistic`` is the ECE; ``details`` holds ``mce``, ``brier``,
            ``accuracy``, ``mean_confidence``, ``reference_ece``, ``n_bins`` and
            ``reliability`` (per-bin ``counts``, ``mean_confidence``,
            ``accuracy``; None for empty bins).

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
        details = {
            **context,
            "mce": _mce(d),
            "brier": float(np.mean((c - y) ** 2)),
            "accuracy": float(y.mean()),
            "mean_confidence": float(c.mean()),
            "reliability": {
                "counts": tuple(int(v) for v in d.counts),
                "mean_confidence": _nullable(d.mean_confidence),
                "accuracy": _nullable(d.accuracy),
            },
        }
        return self._result(_ece(d), n_current=d.n_samples, window=window, details=details)


def _nullable(a: NDArray[np.float64]) -> tuple[float | None, ...]:
    return tuple(None if np.isnan(v) else float(v) for v in a)
