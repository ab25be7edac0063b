"""Intervals of an accuracy: the label-free estimate's (Poisson-binomial) and a labelled one's.

- Label-free: with calibrated confidences :math:`c_i`, the number of correct answers is a
  Poisson-binomial variable with mean :math:`\\sum_i c_i` and variance
  :math:`\\sum_i c_i (1 - c_i)`; the estimate :math:`\\frac1n \\sum_i c_i` gets a normal interval.
- Labelled: the Wilson score interval of a binomial proportion (Wilson 1927, Eq. 2).
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike
from scipy.stats import norm

from detectors.base import as_probability


def estimated_accuracy(confidence: ArrayLike, level: float = 0.95) -> tuple[float, float, float]:
    """Expected accuracy of a window and its normal interval.

    Parameters
    ----------
    confidence : array-like of shape (n_samples,)
        Calibrated probabilities that each answer is correct; not empty.
    level : float, default 0.95
        Coverage of the interval.

    Returns
    -------
    estimate, low, high : float
        Mean confidence and ``estimate -/+ z * sqrt(sum c (1 - c)) / n``, clipped to [0, 1].

    Raises
    ------
    ValueError
        Empty input, or a value outside [0, 1].
    """
    c = as_probability(confidence, "confidence")
    if c.size == 0:
        raise ValueError("confidence is empty: no events to estimate accuracy from")
    return estimated_accuracy_from_sums(c.size, float(c.sum()), float(np.sum(c * (1.0 - c))), level)


def estimated_accuracy_from_sums(
    n: int, total: float, total_variance: float, level: float = 0.95
) -> tuple[float, float, float]:
    """:func:`estimated_accuracy` from a window's sums (computed elsewhere, e.g. in SQL).

    Parameters
    ----------
    n : int
        Events in the window, >= 1.
    total : float
        :math:`\\sum_i c_i`.
    total_variance : float
        :math:`\\sum_i c_i (1 - c_i)`.

    Raises
    ------
    ValueError
        ``n < 1``, or sums no confidences in [0, 1] could give.
    """
    if n < 1:
        raise ValueError("no events to estimate accuracy from")
    tol = 1e-9 * n
    if not (-tol <= total <= n + tol and -tol <= total_variance <= n / 4 + tol):
        raise ValueError(
            f"sums outside what confidences in [0, 1] give: n={n}, sum={total}, "
            f"sum c(1-c)={total_variance}"
        )
    est = min(max(total / n, 0.0), 1.0)
    se = math.sqrt(max(total_variance, 0.0)) / n
    z = float(norm.ppf(0.5 + level / 2.0))
    return est, max(0.0, est - z * se), min(1.0, est + z * se)


def wilson_interval(n_correct: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion (Wilson 1927, Eq. 2).

    Raises
    ------
    ValueError
        ``n < 1`` or ``n_correct`` outside [0, n].
    """
    if n < 1 or not 0 <= n_correct <= n:
        raise ValueError(f"need 0 <= n_correct <= n and n >= 1, got {n_correct}, {n}")
    z = float(norm.ppf(0.5 + level / 2.0))
    p = n_correct / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)
