"""Where in a retrain window the serving probe started to fail: fit after the change, not
across it.

A shift that starts mid-window leaves a window whose first part the champion
still scores well. A challenger fitted on all of it learns mostly the old
traffic and serves the new one miscalibrated until the next retrain. So before
splitting, the retrain looks for one change in the mean of the champion's
per-event log loss at serving time,
:math:`\\ell_i = -[y_i \\ln p_i + (1 - y_i) \\ln (1 - p_i)]`, in time order, with
the CUSUM estimator of a single change (at most one change, "AMOC"; Csörgő and
Horváth 1997, *Limit Theorems in Change-Point Analysis*, Sec. 1.1):

.. math::

    T = \\max_{m \\le k \\le n - m} \\frac{|S_k - (k/n) S_n|}{\\hat\\sigma \\sqrt{n}},
    \\qquad S_k = \\sum_{i \\le k} \\ell_i,

whose null limit is the supremum of a Brownian bridge (the Kolmogorov
distribution, ``scipy.stats.kstwobign``), which gives the p-value. ``m``
(``min_segment``) keeps both sides large enough to mean something; with the
change significant at ``alpha`` the challenger is fitted on the events after it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from scipy.stats import kstwobign

_EPS = 1e-6


@dataclass(frozen=True)
class ChangePoint:
    """A change in the champion's log loss.

    Attributes
    ----------
    index : int
        First row after the change.
    ts : float
        Its event time, seconds since the Unix epoch.
    statistic : float
        The standardised CUSUM maximum :math:`T`.
    p_value : float
        Under "no change" (Kolmogorov distribution).
    loss_before, loss_after : float
        Mean log loss on each side, nats.
    """

    index: int
    ts: float
    statistic: float
    p_value: float
    loss_before: float
    loss_after: float

    def as_dict(self) -> dict[str, float]:
        return {k: float(v) for k, v in self.__dict__.items()}


def log_loss(confidence: ArrayLike, correct: ArrayLike) -> np.ndarray:
    """Per-event log loss of confidences (probabilities, clipped to [1e-6, 1 - 1e-6]), nats."""
    p = np.clip(np.asarray(confidence, dtype=np.float64), _EPS, 1.0 - _EPS)
    y = np.asarray(correct, dtype=bool)
    return -np.where(y, np.log(p), np.log1p(-p))


def find_change(
    loss: ArrayLike, ts: ArrayLike, alpha: float = 0.01, min_segment: int = 50
) -> ChangePoint | None:
    """The single most likely change in the mean of ``loss``, if significant at ``alpha``.

    Parameters
    ----------
    loss : array-like of shape (n_samples,)
        Per-event losses in time order (:func:`log_loss`).
    ts : array-like of shape (n_samples,)
        Their event times.
    alpha : float
        Significance level in (0, 1).
    min_segment : int
        Fewest events on either side of a change, >= 2.

    Returns
    -------
    ChangePoint or None
        None with fewer than ``2 * min_segment`` events, a constant loss, or no
        significant change.

    Raises
    ------
    ValueError
        Shapes differ, values are not finite, or a parameter is out of range.
    """
    x = np.asarray(loss, dtype=np.float64)
    t = np.asarray(ts, dtype=np.float64)
    if x.ndim != 1 or x.shape != t.shape:
        raise ValueError(f"loss and ts must be 1-D of one length, got {x.shape} and {t.shape}")
    if not (np.isfinite(x).all() and np.isfinite(t).all()):
        raise ValueError("loss and ts must be finite")
    if not 0.0 < alpha < 1.0 or int(min_segment) < 2:
        raise ValueError(f"need 0 < alpha < 1 and min_segment >= 2, got {alpha}, {min_segment}")
    n, m = x.size, int(min_segment)
    sigma = float(x.std(ddof=1)) if n > 1 else 0.0
    if n < 2 * m or sigma <= 1e-9 * max(1.0, float(np.abs(x).mean())):  # constant, to rounding
        return None
    s = np.cumsum(x)
    k = np.arange(1, n + 1)
    bridge = np.abs(s - k / n * s[-1])[m - 1 : n - m]  # splits after rows m..n-m
    j = int(np.argmax(bridge))
    statistic = float(bridge[j] / (sigma * np.sqrt(n)))
    p_value = float(kstwobign.sf(statistic))
    if p_value >= alpha:
        return None
    index = j + m  # first row after the change
    return ChangePoint(
        index, float(t[index]), statistic, p_value, float(x[:index].mean()), float(x[index:].mean())
    )
