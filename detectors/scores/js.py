"""Jensen-Shannon distance between the current and the reference score distributions.

With :math:`M = (P + Q) / 2`, the Jensen-Shannon divergence is
:math:`\\mathrm{JSD} = \\tfrac12 D_{KL}(P\\|M) + \\tfrac12 D_{KL}(Q\\|M)` (Lin 1991,
"Divergence measures based on the Shannon entropy", Eq. 4.1); its square root is a
metric (Endres and Schindelin 2003). In base 2 the distance lies in [0, 1]: 0 for
identical windows, 1 for windows with disjoint support. It equals
``scipy.spatial.distance.jensenshannon(p, q, base=2)``. Unlike KL it is symmetric
and bounded, so one threshold reads the same for every signal.

Bins (fixed on the reference) and epsilon smoothing are those of
:mod:`detectors.scores.histogram`.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from scipy.special import rel_entr

from detectors.scores.histogram import HistogramDetector


class JensenShannonDistance(HistogramDetector):
    """Jensen-Shannon distance (base 2, in [0, 1]) of the current window from the reference.

    Parameters
    ----------
    threshold : float, default 0.1
        Drift is declared when the distance exceeds this value.
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
    >>> det = JensenShannonDistance().fit(rng.beta(5, 2, size=2000))
    >>> round(det.score(rng.beta(5, 2, size=1000)).statistic, 3)
    0.069
    >>> shifted = det.score(rng.beta(2, 2, size=1000))
    >>> round(shifted.statistic, 3), shifted.is_drift
    (0.418, True)
    """

    name = "js_distance"
    unit = "bits^(1/2)"
    direction = "symmetric: sqrt(JSD(current, reference)), base 2"

    def __init__(
        self,
        threshold: float = 0.1,
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
        """:math:`\\sqrt{\\mathrm{JSD}(P, Q) / \\ln 2}`."""
        m = 0.5 * (p + q)
        jsd = 0.5 * rel_entr(p, m).sum() + 0.5 * rel_entr(q, m).sum()
        return float(np.sqrt(max(jsd, 0.0) / np.log(2.0)))
