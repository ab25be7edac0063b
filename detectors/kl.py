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

Bins. ``n_bins`` equal-width bins on ``value_range``, fixed at ``fit`` time,
so the numbers of different weeks compare. The default ``(0, 1)`` suits
probabilities; ``value_range=None`` takes ``(min, max)`` of the reference
(for unbounded scores such as raw logits). Bins are ``[e_i, e_{i+1})``, the last
one closed; values outside the range are clipped into the edge bins and
counted in ``details["n_clipped"]``.

Smoothing. With counts :math:`c_i`, :math:`n = \\sum_i c_i` and :math:`k` bins,
every bin's probability gets ``epsilon`` added and the vector is renormalised:
:math:`p_i = (c_i / n + \\varepsilon) / (1 + k \\varepsilon)`. Both windows are
smoothed the same way, so an empty bin never makes the divergence infinite and
two identical windows give exactly 0.
"""

from __future__ import annotations

import math
import numbers

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.special import rel_entr

from detectors.base import Detector, DetectorResult, Window, as_1d_finite


def smoothed_distribution(counts: ArrayLike, epsilon: float) -> NDArray[np.float64]:
    """Bin probabilities with additive smoothing, ``(c_i / n + epsilon) / (1 + k * epsilon)``.

    Parameters
    ----------
    counts : array-like of shape (n_bins,)
        Non-negative counts per bin.
    epsilon : float
        Probability mass added to every bin before renormalising, > 0.

    Returns
    -------
    ndarray of shape (n_bins,)
        Strictly positive probabilities summing to 1.

    Raises
    ------
    ValueError
        Negative counts, all counts zero, or ``epsilon <= 0``.
    """
    c = np.asarray(counts, dtype=np.float64)
    if c.ndim != 1 or c.size == 0:
        raise ValueError(f"counts must have shape (n_bins,), got {c.shape}")
    if (c < 0).any():
        raise ValueError("counts must be non-negative")
    n = c.sum()
    if n <= 0:
        raise ValueError("counts are all zero: cannot form a distribution")
    if not (epsilon > 0 and math.isfinite(epsilon)):
        raise ValueError(f"epsilon must be > 0, got {epsilon!r}")
    return (c / n + epsilon) / (1.0 + c.size * epsilon)


class KLDivergence(Detector):
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

    def __init__(
        self,
        threshold: float = 0.15,
        n_bins: int = 10,
        epsilon: float = 1e-4,
        value_range: tuple[float, float] | None = (0.0, 1.0),
        min_samples: int = 100,
    ) -> None:
        self.threshold = threshold
        self.n_bins = n_bins
        self.epsilon = epsilon
        self.value_range = value_range
        self.min_samples = min_samples

    def fit(self, reference: ArrayLike) -> KLDivergence:
        """Fix the bins and learn the reference distribution.

        Parameters
        ----------
        reference : array-like of shape (n_samples,)
            Reference confidences (probability) or scores.

        Returns
        -------
        self

        Raises
        ------
        ValueError
            Bad parameters, a reference that is empty, not 1-D or not finite, or
            (with ``value_range=None``) a constant reference.
        """
        self._check_params()
        if isinstance(self.n_bins, bool) or not isinstance(self.n_bins, int) or self.n_bins < 1:
            raise ValueError(f"n_bins must be a positive int, got {self.n_bins!r}")
        if not (isinstance(self.epsilon, numbers.Real) and 0 < self.epsilon < 1):
            raise ValueError(f"epsilon must be in (0, 1), got {self.epsilon!r}")
        x = as_1d_finite(reference, "reference")
        if x.size == 0:
            raise ValueError("reference is empty: need at least one sample to fix the bins")
        if self.value_range is None:
            lo, hi = float(x.min()), float(x.max())
            if lo == hi:
                raise ValueError(f"reference is constant ({lo}): pass value_range explicitly")
        else:
            try:
                lo, hi = (float(v) for v in self.value_range)
            except (TypeError, ValueError) as exc:
                raise ValueError(
                    f"value_range must be (low, high), got {self.value_range!r}"
                ) from exc
            if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
                raise ValueError(
                    f"value_range must be finite with low < high, got {self.value_range!r}"
                )
        self.bin_edges_ = np.linspace(lo, hi, self.n_bins + 1)
        self.reference_counts_, self.n_reference_clipped_ = self._bin(x)
        self.reference_probs_ = smoothed_distribution(self.reference_counts_, self.epsilon)
        self.n_reference_ = int(x.size)
        return self

    def score(self, current: ArrayLike, window: Window | None = None) -> DetectorResult:
        """KL(current || reference) in nats on the bins fixed at fit time.

        Parameters
        ----------
        current : array-like of shape (n_samples,)
            Confidences (or scores) of the current window.
        window : tuple of (float, float), optional
            ``(start, end)`` of the window in epoch seconds, copied into the result.

        Returns
        -------
        DetectorResult
            ``statistic`` in nats; ``details`` holds ``bin_edges``,
            ``reference_probs``, ``current_probs``, ``current_counts``, ``n_clipped``.

        Raises
        ------
        NotFittedError
            ``fit`` was not called.
        ValueError
            ``current`` is not 1-D or holds NaN/inf, or a bad ``window``.
        """
        self._check_is_fitted()
        x = as_1d_finite(current, "current")
        n = int(x.size)
        base = {"direction": "KL(current || reference)", "bin_edges": _floats(self.bin_edges_)}
        reason = _insufficient(self.n_reference_, n, self.min_samples)
        if reason is not None:
            return self._result(
                None, n_current=n, window=window, details=base, insufficient_reason=reason
            )
        counts, n_clipped = self._bin(x)
        p = smoothed_distribution(counts, self.epsilon)
        kl = float(rel_entr(p, self.reference_probs_).sum())
        details = {
            **base,
            "reference_probs": _floats(self.reference_probs_),
            "current_probs": _floats(p),
            "current_counts": tuple(int(c) for c in counts),
            "n_clipped": n_clipped,
            "epsilon": float(self.epsilon),
        }
        return self._result(max(kl, 0.0), n_current=n, window=window, details=details)

    def _bin(self, x: NDArray[np.float64]) -> tuple[NDArray[np.int64], int]:
        """Counts per fixed bin, shape (n_bins,), and how many values were clipped."""
        lo, hi = self.bin_edges_[0], self.bin_edges_[-1]
        n_clipped = int(np.count_nonzero((x < lo) | (x > hi)))
        counts, _ = np.histogram(np.clip(x, lo, hi), bins=self.bin_edges_)
        return counts.astype(np.int64), n_clipped


def _insufficient(n_reference: int, n_current: int, min_samples: int) -> str | None:
    if n_reference < min_samples:
        return f"reference has {n_reference} samples < min_samples={min_samples}"
    if n_current < min_samples:
        return f"current window has {n_current} samples < min_samples={min_samples}"
    return None


def _floats(a: NDArray[np.float64]) -> tuple[float, ...]:
    return tuple(float(v) for v in a)
