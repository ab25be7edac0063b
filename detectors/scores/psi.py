"""Population stability index (PSI) of the confidence distribution against a reference.

:math:`\\mathrm{PSI} = \\sum_i (p_i - q_i) \\ln(p_i / q_i)` with :math:`P` the binned
current window and :math:`Q` the binned reference (Siddiqi 2006, *Credit Risk
Scorecards*, Ch. 8; Yurdakul 2018, "Statistical Properties of Population Stability
Index", Eq. 1). It is the symmetrised KL divergence, :math:`D_{KL}(P\\|Q) +
D_{KL}(Q\\|P)` (Jeffreys' J-divergence), in nats. The industry's rule of thumb:
below 0.1 no change, 0.1-0.25 a moderate one, above 0.25 a major one; the default
threshold 0.2 sits in between.

Bins (fixed on the reference) and epsilon smoothing are those of
:mod:`detectors.scores.histogram`, the same as :class:`detectors.scores.kl.KLDivergence`, so
identical windows give exactly 0.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from detectors.scores.histogram import HistogramDetector


class PopulationStabilityIndex(HistogramDetector):
    """PSI (nats) between the current and the reference score distributions.

    Parameters
    ----------
    threshold : float, default 0.2
        Drift is declared when PSI exceeds this value.
    n_bins : int, default 10
        Number of equal-width bins on ``value_range``.
    epsilon : float, default 1e-4
        Smoothing mass added to every bin's probability.
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
    bin_edges_, reference_counts_, reference_probs_, n_reference_
        See :class:`detectors.scores.histogram.HistogramDetector`.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> det = PopulationStabilityIndex().fit(rng.beta(5, 2, size=2000))
    >>> round(det.score(rng.beta(5, 2, size=1000)).statistic, 3)
    0.027
    >>> shifted = det.score(rng.beta(2, 2, size=1000))
    >>> round(shifted.statistic, 3), shifted.is_drift
    (1.169, True)
    """

    name = "psi"
    unit = "nats"
    direction = "symmetric: sum (p - q) ln(p / q)"

    def __init__(
        self,
        threshold: float = 0.2,
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
        """:math:`\\sum_i (p_i - q_i) \\ln(p_i / q_i)`, nats; both are strictly positive."""
        return float(np.sum((p - q) * np.log(p / q)))
