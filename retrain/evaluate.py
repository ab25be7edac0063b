"""Evaluation of a probe on a labelled test split: AUROC, ECE, Brier, bootstrap intervals.

- AUROC: area under the ROC curve of confidence against correctness
  (scikit-learn ``roc_auc_score``; Hanley & McNeil 1982).
- ECE and Brier score: the calibration detector's own functions
  (:mod:`detectors.calibration.reliability`: right-closed equal-width bins,
  Guo et al. 2017, Eq. 3), so the retrain job and the calibration detector
  always agree on the same data.
- Intervals: :func:`detectors.bootstrap.percentile_interval` over
  :func:`detectors.bootstrap.resample_indices` (Efron & Tibshirani 1993, Ch. 13), paired
  when two probes are compared on the same rows, so the interval of the
  difference accounts for their correlation.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy.stats import rankdata
from sklearn.metrics import roc_auc_score

from detectors.bootstrap import percentile_interval, resample_indices
from detectors.calibration.reliability import brier_score, expected_calibration_error


def auroc(confidence: np.ndarray, correct: np.ndarray) -> float:
    """AUROC of ``confidence`` for ``correct``; NaN when only one class is present."""
    y = np.asarray(correct, dtype=bool)
    if y.all() or not y.any():
        return float("nan")
    return float(roc_auc_score(y, np.asarray(confidence, dtype=np.float64)))


def auroc_rows(confidence: np.ndarray, correct: np.ndarray) -> np.ndarray:
    """AUROC of each row (Mann-Whitney U / (n1 n0), ties at half rank); NaN for one class.

    Parameters
    ----------
    confidence, correct : ndarray of shape (n_rows, n_samples)

    Returns
    -------
    ndarray of shape (n_rows,)
    """
    y = np.asarray(correct, dtype=bool)
    ranks = rankdata(np.asarray(confidence, dtype=np.float64), axis=1)
    n1 = y.sum(1).astype(np.float64)
    n0 = y.shape[1] - n1
    with np.errstate(invalid="ignore", divide="ignore"):
        out = ((ranks * y).sum(1) - n1 * (n1 + 1) / 2) / (n1 * n0)
    return np.where((n1 > 0) & (n0 > 0), out, np.nan)


@dataclass(frozen=True)
class Evaluation:
    """Point estimates and 95 % percentile-bootstrap intervals on one test split."""

    n: int
    auroc: float
    auroc_ci: tuple[float, float]
    ece: float
    ece_ci: tuple[float, float]
    brier: float
    brier_ci: tuple[float, float]

    def as_dict(self) -> dict:
        return asdict(self)


def evaluate(
    confidence: np.ndarray,
    correct: np.ndarray,
    *,
    n_bins: int = 15,
    resamples: np.ndarray | None = None,
) -> Evaluation:
    """AUROC, ECE and Brier with bootstrap intervals.

    Parameters
    ----------
    confidence : ndarray of shape (n_samples,)
        Calibrated probability of a correct answer.
    correct : ndarray of shape (n_samples,)
    n_bins : int
        ECE bins.
    resamples : ndarray of shape (n_resamples, n_samples), optional
        From :func:`detectors.bootstrap.resample_indices`; pass the same to compare two
        probes pairwise.
    """
    p = np.asarray(confidence, dtype=np.float64)
    y = np.asarray(correct, dtype=bool)
    if resamples is None:
        resamples = resample_indices(len(y), 200, 0)
    pb, yb = p[resamples], y[resamples]  # [n_resamples, n]
    return Evaluation(
        n=int(len(y)),
        auroc=auroc(p, y),
        auroc_ci=percentile_interval(auroc_rows(pb, yb)),
        ece=expected_calibration_error(p, y, n_bins),
        ece_ci=percentile_interval(
            [expected_calibration_error(a, b, n_bins) for a, b in zip(pb, yb)]
        ),
        brier=brier_score(p, y),
        brier_ci=percentile_interval(np.mean((pb - yb) ** 2, axis=1)),
    )


def paired_auroc_difference(
    challenger: np.ndarray, champion: np.ndarray, correct: np.ndarray, resamples: np.ndarray
) -> tuple[float, tuple[float, float]]:
    """``AUROC(challenger) - AUROC(champion)`` and its paired 95 % bootstrap interval."""
    y = np.asarray(correct, dtype=bool)
    a, b = np.asarray(challenger, np.float64), np.asarray(champion, np.float64)
    diffs = auroc_rows(a[resamples], y[resamples]) - auroc_rows(b[resamples], y[resamples])
    return auroc(a, y) - auroc(b, y), percentile_interval(diffs)
