"""KL divergence of the confidence distribution, current window against a reference.

Direction. The statistic is :math:`D_{KL}(P \\,\\|\\, Q) = \\sum_i p_i \\ln(p_i / q_i)`
with :math:`P` the binned *current* window and :math:`Q` the binned *reference*
(Kullback and Leibler 1951; Cover and Thomas, *Elements of Information Theory*,
Eq. 2.26): the expected extra nats per event paid for describing today's traffic
with last month's model. The expectation runs over the current window, so
confidence mass appearing where the reference had little (a new failure mode)
weighs heavily, and the reference, fixed for weeks, is the stable denominator.
It equals ``scipy.stats.entropy(p, q)``. Note that evidently's ``kl_div``
computes the other direction, ``entropy(reference, current)``, on bins drawn
from both windows together; use it only as a cross-check.

Bins and smoothing are those of :mod:`detectors.scores.histogram`: ``n_bins``
equal-width bins fixed on the reference, every bin's probability smoothed as
:math:`p_i = (c_i / n + \\varepsilon) / (1 + k \\varepsilon)`, so an empty bin
never makes the divergence infinite and two identical windows give exactly 0.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from scipy.special import rel_entr

from detectors.scores.histogram import HistogramDetector, smoothed_distribution

__all__ = ["KLDivergence", "smoothed_distribution"]


class KLDivergence(HistogramDetector):
    """KL divergence (nats) of the current confidence distribution from the reference.

    Parameters
    ----------
    threshold : float, default 0.15
        Drift is declared when the divergence exceeds this many nats.
    n_bins : int, default 10
        Number of equal-width bins on ``value_range``.
    epsilon : float, default 1e-4
        Smoothing mass added to every bin's probability (see module docstring).
    value_range : tuple of (float, float) or None, default (0.0, 1.0)
        Range the bins cover; None takes the reference's (min, max) at fit time.
    min_samples : int, default 100
        Fewer samples in either window gives an ``insufficient_data`` result.
    alpha : float or None, default None
        False-alarm rate: drift also needs p < alpha under the resampled null of
        the window's size, and ``threshold`` becomes a floor on the effect
        (:mod:`detectors.scores.null`). None: the threshold alone decides.
    null_resamples : int, default 1000
        Resampled window pairs of that null.
    random_state : int, default 0
        Seeds the null (results are reproducible).

    Attributes
    ----------
    bin_edges_ : ndarray of shape (n_bins + 1,)
        Bin edges fixed at fit time.
    reference_counts_ : ndarray of shape (n_bins,)
        Reference counts per bin (after clipping).
    reference_probs_ : ndarray of shape (n_bins,)
        Smoothed reference distribution :math:`Q`.
    n_reference_ : int
        Number of reference samples.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> det = KLDivergence().fit(rng.beta(5, 2, size=2000))
    >>> same = det.score(rng.beta(5, 2, size=1000))
    >>> round(same.statistic, 3), same.is_drift
    (0.013, False)
    >>> shifted = det.score(rng.beta(2, 2, size=1000))
    >>> round(shifted.statistic, 3), shifted.is_drift
    (0.701, True)
    """

    name = "kl_divergence"
    unit = "nats"
    direction = "KL(current || reference)"

    def __init__(
        self,
        threshold: float = 0.15,
        n_bins: int = 10,
        epsilon: float = 1e-4,
        value_range: tuple[float, float] | None = (0.0, 1.0),
        min_samples: int = 100,
        alpha: float | None = None,
        null_resamples: int = 1000,
        random_state: int = 0,
    ) -> None:
        self.threshold = threshold
        self.n_bins = n_bins
        self.epsilon = epsilon
        self.value_range = value_range
        self.min_samples = min_samples
        self.alpha = alpha
        self.null_resamples = null_resamples
        self.random_state = random_state

    def _divergence(self, p: NDArray[np.float64], q: NDArray[np.float64]) -> float:
        """:math:`\\sum_i p_i \\ln(p_i / q_i)`, nats (``scipy.special.rel_entr``)."""
        return float(rel_entr(p, q).sum())
