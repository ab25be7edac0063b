"""Choose and fit the calibration map of a probe: temperature scaling or isotonic regression.

Both maps take the probe's raw logit to a probability:

- temperature scaling, ``p = sigmoid(z / T)`` with ``T`` minimising the NLL
  (Guo et al. 2017, Sec. 4.2), one parameter, cannot change the ranking;
- isotonic regression of correctness on ``z`` (Zadrozny & Elkan 2002),
  non-parametric, needs more data and can overfit a small split.

The choice is made by held-out ECE (Guo et al. 2017, Eq. 3): the calibration
split (disjoint from the probe's fitting split, as scikit-learn's
``CalibratedClassifierCV`` requires) is cut into ``n_folds`` stratified folds;
each map is fitted on the other folds and its ECE measured on the held-out one;
the map with the lower mean ECE is refitted on the whole calibration split.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import minimize_scalar
from sklearn.model_selection import StratifiedKFold

from collectors.probe.calibration import IsotonicTable, TemperatureScaling
from detectors.calibration.reliability import expected_calibration_error as ece

METHODS = ("auto", "temperature", "isotonic")


def fit_temperature(logits: np.ndarray, correct: np.ndarray) -> float:
    """Temperature ``T`` minimising the NLL of ``sigmoid(logits / T)``.

    Parameters
    ----------
    logits : ndarray of shape (n_samples,)
        Raw probe logits on a calibration split disjoint from the fitting split.
    correct : ndarray of shape (n_samples,), bool

    Returns
    -------
    float
        ``T`` in ``[0.05, 20]``.
    """
    z = np.asarray(logits, dtype=np.float64)
    y = np.asarray(correct, dtype=np.float64)

    def nll(log_t: float) -> float:
        s = z / np.exp(log_t)
        # log(1 + exp(-s)) for y=1, log(1 + exp(s)) for y=0, computed stably
        return float(np.mean(np.logaddexp(0.0, -s) * y + np.logaddexp(0.0, s) * (1 - y)))

    res = minimize_scalar(nll, bounds=(np.log(0.05), np.log(20.0)), method="bounded")
    return float(np.exp(res.x))


def _fit(method: str, logits: np.ndarray, y: np.ndarray) -> TemperatureScaling | IsotonicTable:
    if method == "temperature":
        return TemperatureScaling(fit_temperature(logits, y))
    return IsotonicTable.fit(logits, y)


@dataclass(frozen=True)
class CalibrationChoice:
    """The fitted map and the held-out ECE that chose it.

    Attributes
    ----------
    calibration : TemperatureScaling or IsotonicTable
        Fitted on the whole calibration split.
    method : {"temperature", "isotonic"}
    heldout_ece : dict of str to float
        Mean held-out ECE of each candidate method (probability units).
    """

    calibration: TemperatureScaling | IsotonicTable
    method: str
    heldout_ece: dict[str, float] = field(default_factory=dict)


def choose_calibration(
    logits: np.ndarray,
    correct: np.ndarray,
    *,
    method: str = "auto",
    n_folds: int = 5,
    n_bins: int = 15,
    seed: int = 0,
) -> CalibrationChoice:
    """Fit temperature scaling or isotonic regression, chosen by held-out ECE.

    Parameters
    ----------
    logits : ndarray of shape (n_samples,)
        Raw probe logits on the calibration split (never the fitting split).
    correct : ndarray of shape (n_samples,), bool
    method : {"auto", "temperature", "isotonic"}
        ``"auto"`` chooses by cross-validated ECE; the others force a map.
    n_folds : int
        Folds of the held-out comparison (reduced when a class is rarer).
    n_bins : int
        ECE bins.
    seed : int

    Returns
    -------
    CalibrationChoice

    Raises
    ------
    ValueError
        Unknown method, shapes differ, or only one class is present.
    """
    if method not in METHODS:
        raise ValueError(f"calibration method must be one of {METHODS}, got {method!r}")
    z = np.asarray(logits, dtype=np.float64).reshape(-1)
    y = np.asarray(correct).astype(bool).reshape(-1)
    if z.shape != y.shape:
        raise ValueError(f"logits {z.shape} and correct {y.shape} differ in length")
    if y.all() or not y.any():
        raise ValueError("the calibration split must hold both right and wrong answers")
    if method != "auto":
        return CalibrationChoice(_fit(method, z, y), method)
    folds = min(n_folds, int(y.sum()), int((~y).sum()))
    scores: dict[str, float] = {}
    if folds >= 2:
        split = StratifiedKFold(folds, shuffle=True, random_state=seed).split(z, y)
        per: dict[str, list[float]] = {"temperature": [], "isotonic": []}
        for fit_idx, held_idx in split:
            for name in per:
                cal = _fit(name, z[fit_idx], y[fit_idx])
                per[name].append(ece(cal.apply(z[held_idx]), y[held_idx], n_bins))
        scores = {k: float(np.mean(v)) for k, v in per.items()}
        best = min(scores, key=lambda k: (scores[k], k != "temperature"))  # ties: temperature
    else:
        best = "temperature"  # too few of one class to hold any out: the 1-parameter map
    return CalibrationChoice(_fit(best, z, y), best, scores)
