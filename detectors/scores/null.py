"""Thresholds from a false-alarm rate: the null distribution of a binned divergence.

A fixed threshold on KL, PSI or Jensen-Shannon means a different false-alarm rate
at every window size: small windows are noisy, large ones never reach it. With
``alpha`` set, a histogram detector (:mod:`detectors.scores.histogram`) also
computes the statistic's distribution under "no drift" for the current window
size and declares drift only when the statistic is both improbable under it
(p below ``alpha``) and above the configured threshold, which becomes a floor on
the effect.

The null is a parametric bootstrap (Efron and Tibshirani 1993, Sec. 6.5): both
windows are redrawn from the reference's empirical bin distribution, the
reference with its own size :math:`m` and the current with size :math:`n`
(:math:`c^* \\sim \\mathrm{Multinomial}(n, \\hat q)`,
:math:`r^* \\sim \\mathrm{Multinomial}(m, \\hat q)`), and the divergence of the two
smoothed histograms is taken, so both samples' noise is in the null as it is in
the observed statistic. The p-value is :math:`(1 + \\#\\{T^* \\ge T\\}) / (B + 1)`
(Davison and Hinkley 1997, Eq. 4.11), never 0.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import NDArray


def null_statistics(
    reference_counts: NDArray[np.int64],
    n_current: int,
    divergence: Callable[[NDArray[np.float64], NDArray[np.float64]], float],
    epsilon: float,
    n_resamples: int,
    seed: int,
) -> NDArray[np.float64]:
    """The divergence of ``n_resamples`` window pairs drawn from the reference histogram.

    Parameters
    ----------
    reference_counts : ndarray of shape (n_bins,)
        Reference counts; their total is the reference size :math:`m`.
    n_current : int
        Current window size :math:`n`.
    divergence : callable
        ``(p, q) -> statistic`` on smoothed distributions of shape (n_bins,).
    epsilon : float
        The detector's smoothing mass.
    n_resamples : int
        :math:`B`, >= 1.
    seed : int
        Seeds the draws (the same inputs give the same null).

    Returns
    -------
    ndarray of shape (n_resamples,)
        Sorted null statistics.

    Raises
    ------
    ValueError
        ``n_resamples < 1``, ``n_current < 1`` or an empty reference.
    """
    counts = np.asarray(reference_counts, dtype=np.int64)
    m = int(counts.sum())
    if n_resamples < 1 or n_current < 1 or m < 1:
        raise ValueError(
            f"need n_resamples >= 1, n_current >= 1 and a non-empty reference; got "
            f"{n_resamples}, {n_current}, {m}"
        )
    rng = np.random.default_rng(seed)
    q_hat = counts / m
    k = counts.size
    cur = rng.multinomial(n_current, q_hat, size=n_resamples)
    ref = rng.multinomial(m, q_hat, size=n_resamples)
    smooth = lambda c, n: (c / n + epsilon) / (1.0 + k * epsilon)  # noqa: E731 - row-wise
    p, q = smooth(cur, n_current), smooth(ref, m)
    out = np.fromiter((divergence(p[b], q[b]) for b in range(n_resamples)), np.float64)
    return np.sort(np.maximum(out, 0.0))


def p_value(null: NDArray[np.float64], statistic: float) -> float:
    """:math:`(1 + \\#\\{T^* \\ge T\\}) / (B + 1)` for sorted null statistics."""
    exceed = null.size - int(np.searchsorted(null, statistic, side="left"))
    return (1.0 + exceed) / (null.size + 1.0)


def critical_value(null: NDArray[np.float64], alpha: float) -> float:
    """The null statistic ``c`` such that every ``T > c`` has :func:`p_value` at most ``alpha``
    (infinite when ``B`` is too small to reach ``alpha``).

    Raises
    ------
    ValueError
        ``alpha`` outside (0, 1).
    """
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha!r}")
    b = null.size
    # T above the j-th largest null value exceeds at most j - 1 of them: p <= j / (B + 1)
    j = int(np.floor(alpha * (b + 1)))
    if j < 1:
        return float("inf")  # too few resamples to reach alpha: never significant
    return float(null[b - j])


def null_bound(det: Any, value: float, n: int) -> tuple[float | None, float | None, dict]:
    """``(threshold, p_value, details)`` of a fitted histogram detector's ``value`` on a
    window of ``n`` samples: ``(None, None, {})`` unless ``det.alpha`` is set.

    The null is drawn once per window size and reference, and kept on ``det``.
    """
    if det.alpha is None:
        return None, None, {}
    cache = det.__dict__.setdefault("_null_cache", {})
    key = (n, np.asarray(det.reference_counts_).tobytes())  # a refit: another key
    if key not in cache:
        cache[key] = null_statistics(
            det.reference_counts_, n, det._divergence, det.epsilon,
            int(det.null_resamples), int(det.random_state),
        )  # fmt: skip
    null = cache[key]
    crit = critical_value(null, float(det.alpha))
    details = {"floor": float(det.threshold), "alpha": float(det.alpha),
               "null_critical_value": crit, "null_resamples": int(null.size)}  # fmt: skip
    return max(float(det.threshold), crit), p_value(null, value), details
