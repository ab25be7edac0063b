"""Shared machinery of the binned divergences (KL, PSI, Jensen-Shannon).

Bins. ``n_bins`` equal-width bins on ``value_range``, fixed at ``fit`` time, so
the numbers of different weeks compare. The default ``(0, 1)`` suits
probabilities; ``value_range=None`` takes ``(min, max)`` of the reference (for
unbounded scores such as raw probe logits). Bins are ``[e_i, e_{i+1})``, the
last one closed; values outside the range are clipped into the edge bins and
counted in ``details["n_clipped"]``.

Smoothing. With counts :math:`c_i`, :math:`n = \\sum_i c_i` and :math:`k` bins,
every bin's probability gets ``epsilon`` added and the vector is renormalised:
:math:`p_i = (c_i / n + \\varepsilon) / (1 + k \\varepsilon)` (additive,
"Lidstone" smoothing; Manning and Schütze 1999, Sec. 6.2.2). Both windows are
smoothed the same way, so an empty bin never makes a divergence infinite and two
identical windows give exactly 0.

False-alarm rate. With ``alpha`` set, the threshold becomes a floor on the
effect and drift also needs the statistic's p-value under a resampled null for
the current window size below ``alpha`` (:mod:`detectors.scores.null`); the
result's ``threshold`` is then ``max(floor, critical value)``.
"""

from __future__ import annotations

import math
import numbers
from abc import abstractmethod

import numpy as np
from numpy.typing import ArrayLike, NDArray

from detectors.base import Detector, DetectorResult, Window, as_1d_finite, insufficient_reason
from detectors.scores.null import null_bound


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


class HistogramDetector(Detector):
    """Base of the divergences between smoothed histograms on reference-fixed bins.

    Subclasses store ``threshold``, ``n_bins``, ``epsilon``, ``value_range`` and
    ``min_samples`` and implement :meth:`_divergence`.

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
    """

    n_bins: int
    epsilon: float
    value_range: tuple[float, float] | None
    direction: str = ""
    alpha: float | None = None
    null_resamples: int = 1000
    random_state: int = 0

    @abstractmethod
    def _divergence(self, p: NDArray[np.float64], q: NDArray[np.float64]) -> float:
        """Statistic between the smoothed current ``p`` and reference ``q``, shape (n_bins,)."""

    def _check_params(self) -> None:
        super()._check_params()
        if isinstance(self.n_bins, bool) or not isinstance(self.n_bins, int) or self.n_bins < 1:
            raise ValueError(f"n_bins must be a positive int, got {self.n_bins!r}")
        if not (isinstance(self.epsilon, numbers.Real) and 0 < self.epsilon < 1):
            raise ValueError(f"epsilon must be in (0, 1), got {self.epsilon!r}")

    def fit(self, reference: ArrayLike) -> HistogramDetector:
        """Fix the bins and learn the reference distribution.

        Parameters
        ----------
        reference : array-like of shape (n_samples,)
            Reference confidences (probability) or scores (e.g. raw logits).

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
        self.reference_counts_, self.n_reference_clipped_ = self.bin_counts(x)
        self.reference_probs_ = smoothed_distribution(self.reference_counts_, self.epsilon)
        self.n_reference_ = int(x.size)
        return self

    def fit_counts(self, counts: ArrayLike, bin_edges: ArrayLike) -> HistogramDetector:
        """Fit from reference counts on given bins (binned once, shared by several detectors).

        Parameters
        ----------
        counts : array-like of shape (n_bins,)
            Reference counts, values outside the range counted in the edge bins.
        bin_edges : array-like of shape (n_bins + 1,)
            Equal-width increasing edges, e.g. another detector's ``bin_edges_``.

        Returns
        -------
        self

        Raises
        ------
        ValueError
            Bad parameters, or counts and edges that do not match ``n_bins``.
        """
        self._check_params()
        edges = np.asarray(bin_edges, dtype=np.float64)
        c = np.asarray(counts, dtype=np.int64)
        if edges.shape != (self.n_bins + 1,) or c.shape != (self.n_bins,) or (c < 0).any():
            raise ValueError(
                f"need {self.n_bins} non-negative counts and {self.n_bins + 1} edges, "
                f"got shapes {c.shape} and {edges.shape}"
            )
        if c.sum() == 0:
            raise ValueError("reference counts are all zero")
        self.bin_edges_ = edges
        self.reference_counts_ = c
        self.n_reference_clipped_ = 0
        self.reference_probs_ = smoothed_distribution(c, self.epsilon)
        self.n_reference_ = int(c.sum())
        return self

    def score(self, current: ArrayLike, window: Window | None = None) -> DetectorResult:
        """The statistic between the current window and the reference, on the fitted bins.

        Parameters
        ----------
        current : array-like of shape (n_samples,)
            Confidences (or scores) of the current window.
        window : tuple of (float, float), optional
            ``(start, end)`` of the window in epoch seconds, copied into the result.

        Returns
        -------
        DetectorResult
            ``statistic`` in the detector's unit; ``details`` holds ``bin_edges``,
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
        base = {"direction": self.direction, "bin_edges": _floats(self.bin_edges_)}
        reason = insufficient_reason(self.n_reference_, n, self.min_samples)
        if reason is not None:
            return self._result(
                None, n_current=n, window=window, details=base, insufficient_reason=reason
            )
        counts, n_clipped = self.bin_counts(x)
        return self.score_counts(counts, window=window, n_clipped=n_clipped)

    def score_counts(
        self, counts: ArrayLike, window: Window | None = None, n_clipped: int = 0
    ) -> DetectorResult:
        """Score a window given as counts on the fitted bins (binned elsewhere, e.g. in SQL).

        Parameters
        ----------
        counts : array-like of shape (n_bins,)
            Non-negative counts of the current window on ``bin_edges_`` (values
            outside the range counted in the edge bins).
        window : tuple of (float, float), optional
            ``(start, end)`` in epoch seconds.
        n_clipped : int, default 0
            How many of the counted values lay outside the range (for ``details``).

        Returns
        -------
        DetectorResult
            As :meth:`score`.

        Raises
        ------
        NotFittedError
            ``fit`` was not called.
        ValueError
            ``counts`` has the wrong shape or negative entries.
        """
        self._check_is_fitted()
        counts = np.asarray(counts, dtype=np.int64)
        if counts.shape != (self.n_bins,) or (counts < 0).any():
            raise ValueError(
                f"counts must be {self.n_bins} non-negative integers, got shape {counts.shape}"
            )
        n = int(counts.sum())
        base = {"direction": self.direction, "bin_edges": _floats(self.bin_edges_)}
        reason = insufficient_reason(self.n_reference_, n, self.min_samples)
        if reason is not None:
            return self._result(
                None, n_current=n, window=window, details=base, insufficient_reason=reason
            )
        p = smoothed_distribution(counts, self.epsilon)
        value = max(self._divergence(p, self.reference_probs_), 0.0)
        bound, p_val, null = null_bound(self, value, n)
        details = {
            **base,
            "reference_probs": _floats(self.reference_probs_),
            "current_probs": _floats(p),
            "current_counts": tuple(int(c) for c in counts),
            "n_clipped": n_clipped,
            "epsilon": float(self.epsilon),
            **null,
        }
        return self._result(
            value, n_current=n, window=window, details=details, p_value=p_val, threshold=bound
        )

    def bin_counts(self, x: NDArray[np.float64]) -> tuple[NDArray[np.int64], int]:
        """Counts of finite values ``x`` per fitted bin, shape (n_bins,), and how many
        lay outside the range (counted in the edge bins)."""
        lo, hi = float(self.bin_edges_[0]), float(self.bin_edges_[-1])
        n_clipped = 0
        if x.size and (x.min() < lo or x.max() > hi):
            n_clipped = int(np.count_nonzero(x < lo) + np.count_nonzero(x > hi))
        # numpy's uniform fast path (blocked, exact at the edges) drops values outside
        # [lo, hi]: count those into the edge bins, as if clipped.
        counts, _ = np.histogram(x, bins=self.n_bins, range=(lo, hi))
        counts = counts.astype(np.int64)
        if n_clipped:
            counts[0] += int(np.count_nonzero(x < lo))
            counts[-1] += int(np.count_nonzero(x > hi))
        return counts, n_clipped


def _floats(a: NDArray[np.float64]) -> tuple[float, ...]:
    return tuple(float(v) for v in a)
