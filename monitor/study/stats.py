"""AUROC and point-biserial correlation with percentile-bootstrap 95 % intervals.

The paper (*Where Reliability Lives*, Section 4) reports AUROC for reliability
prediction and point-biserial ``r_pb`` (scipy.stats.pointbiserialr) against the
binary correctness label, each with a 95 % bootstrap interval (10,000 resamples).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.stats import pointbiserialr

from detectors.bootstrap import percentile_interval, resample_indices
from retrain.evaluate import auroc, auroc_rows


@dataclass(frozen=True)
class SignalStats:
    """AUROC and point-biserial r of one signal, with 95 % bootstrap intervals."""

    n: int
    auroc: float
    auroc_ci: tuple[float, float]
    r_pb: float
    r_pb_ci: tuple[float, float]


def _pb_rows(score: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Pearson r between each row of ``score`` and of 0/1 ``y`` (= point-biserial r)."""
    s = score - score.mean(1, keepdims=True)
    t = y - y.mean(1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (s * t).sum(1) / np.sqrt((s**2).sum(1) * (t**2).sum(1))


def signal_stats(
    score: np.ndarray, correct: np.ndarray, *, n_resamples: int = 10_000, seed: int = 0
) -> SignalStats:
    """AUROC of ``score`` for ``correct`` and point-biserial r, with bootstrap intervals.

    Parameters
    ----------
    score : ndarray of shape (n_samples,)
        Higher means "more likely correct".
    correct : ndarray of shape (n_samples,), bool
    n_resamples : int
        Bootstrap resamples (the paper: 10,000).
    seed : int

    Returns
    -------
    SignalStats
        NaN where a statistic is undefined (one class only, or a constant score).

    Raises
    ------
    ValueError
        Shapes differ, fewer than 2 samples, or ``n_resamples`` < 1.
    """
    s = np.asarray(score, dtype=np.float64)
    y = np.asarray(correct, dtype=bool)
    if s.shape != y.shape or s.ndim != 1 or len(s) < 2 or n_resamples < 1:
        raise ValueError(
            f"need equal 1-d score and correct with >= 2 samples and n_resamples >= 1; "
            f"got {s.shape}, {y.shape}, {n_resamples}"
        )
    idx = resample_indices(len(s), n_resamples, seed)  # [n_resamples, n]
    sb, yb = s[idx], y[idx]
    constant = np.ptp(s) == 0 or y.all() or not y.any()
    r = float("nan") if constant else float(pointbiserialr(y, s).statistic)
    return SignalStats(
        n=int(len(s)),
        auroc=auroc(s, y),
        auroc_ci=percentile_interval(auroc_rows(sb, yb)),
        r_pb=r,
        r_pb_ci=percentile_interval(_pb_rows(sb, yb.astype(np.float64))),
    )
