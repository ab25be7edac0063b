"""Reliability metrics of a confidence score on labelled events.

``confidence`` is the predicted probability that the served answer is correct;
``correct`` is the delayed ground truth (1 right, 0 wrong). Equal-width bins are
``n_bins`` intervals of [0, 1], right-closed as in Guo et al. (2017),
:math:`I_m = ((m-1)/M, m/M]`, with a confidence of exactly 0 put in the first bin.

- ECE, Guo et al. 2017, "On Calibration of Modern Neural Networks", Eq. 3:
  :math:`\\sum_m \\frac{|B_m|}{n} |\\mathrm{acc}(B_m) - \\mathrm{conf}(B_m)|`.
- Adaptive ECE: the same sum over *equal-mass* bins (each holding about n/M
  samples, sorted by confidence), which spends the bins where the data are
  (Nixon et al. 2019, "Measuring Calibration in Deep Learning", Sec. 4, ACE;
  Roelofs et al. 2022, "Mitigating Bias in Calibration Error Estimation", ECE_EM).
  The sample at sorted position i (0-based) goes to bin ``floor(i * M / n)``.
- MCE, Guo et al. 2017, Eq. 5: :math:`\\max_m |\\mathrm{acc}(B_m) - \\mathrm{conf}(B_m)|`
  over non-empty bins.
- Brier score (Brier 1950): :math:`\\frac{1}{n} \\sum_i (c_i - y_i)^2`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from detectors.base import as_binary, as_probability
from detectors.scores.binning import uniform_bin_index


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
    # Right-closed bins ((m-1)/M, m/M], 0.0 in bin 0 (= searchsorted(edges[1:-1], side="left")).
    idx = uniform_bin_index(conf, edges, right_closed=True)
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


def adaptive_calibration_error(
    confidence: ArrayLike, correct: ArrayLike, n_bins: int = 15
) -> float:
    """Adaptive (equal-mass) ECE: the ECE sum over bins of about n / n_bins samples each.

    Parameters and errors as :func:`reliability_diagram`.

    Returns
    -------
    float
        In [0, 1], a difference of probabilities (Nixon et al. 2019, Sec. 4).
    """
    conf, y = _validate(confidence, correct, n_bins)
    order = np.argsort(conf, kind="stable")
    return _weighted_ace(conf[order], y[order], np.ones(conf.size), n_bins)


def _weighted_ace(
    conf_sorted: NDArray[np.float64],
    y_sorted: NDArray[np.float64],
    weights: NDArray[np.float64],
    n_bins: int,
) -> float:
    """Equal-mass ECE of samples sorted by confidence, sample i repeated ``weights[i]`` times.

    The repeated sample has ``T = sum(weights)`` positions; position j belongs to bin
    ``floor(j * n_bins / T)``, i.e. bin b spans positions ``[ceil(bT/M), ceil((b+1)T/M))``.
    Sums over a bin come from the cumulative sums evaluated at those boundaries, so a
    repeated sample whose copies straddle a boundary is split exactly as its copies
    would be: the result equals the adaptive ECE of the repeated arrays.
    """
    total = int(round(float(weights.sum())))
    if total == 0:
        return 0.0
    b = np.arange(n_bins + 1, dtype=np.int64)
    starts = -((-b * total) // n_bins)  # integer ceil(b * T / M)
    cw = np.cumsum(weights)
    diff = weights * (y_sorted - conf_sorted)
    cd = np.cumsum(diff)
    k = np.searchsorted(cw, starts, side="right")  # samples wholly before each boundary
    inside = np.minimum(k, len(weights) - 1)
    prev_w = np.where(k > 0, cw[np.maximum(k - 1, 0)], 0.0)
    prev_d = np.where(k > 0, cd[np.maximum(k - 1, 0)], 0.0)
    per_copy = np.where(k < len(weights), y_sorted[inside] - conf_sorted[inside], 0.0)
    upto = prev_d + (starts - prev_w) * per_copy  # sum of (y - c) over positions < start
    return float(np.abs(np.diff(upto)).sum() / total)
