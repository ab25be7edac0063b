"""Fit a linear correctness probe and its temperature from labelled hidden states.

The probe is an L2-regularised logistic regression on standardised pooled
hidden states (scikit-learn); the standardisation is folded back into the
weights so the serving probe is a single dot product. The temperature is fitted
on a disjoint calibration split by minimising the negative log-likelihood
(Guo et al. 2017, "On Calibration of Modern Neural Networks", Sec. 4.2).
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import minimize_scalar
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split

from collectors.probe import LinearProbe


def _check(states: np.ndarray, correct: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    states = np.asarray(states, dtype=np.float64)
    correct = np.asarray(correct).astype(bool)
    if states.ndim != 2:
        raise ValueError(f"states must be 2-D (n_samples, hidden_dim), got shape {states.shape}")
    if correct.shape != (states.shape[0],):
        raise ValueError(f"correct must have shape ({states.shape[0]},), got {correct.shape}")
    if correct.all() or not correct.any():
        raise ValueError("correct must contain both right and wrong answers to fit a probe")
    return states, correct


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


def fit_linear_probe(
    states: np.ndarray,
    correct: np.ndarray,
    *,
    layer: int,
    pooling: str = "last_prompt_token",
    version: str = "v1",
    calibration_fraction: float = 0.3,
    C: float = 1.0,
    seed: int = 0,
) -> LinearProbe:
    """Fit a probe on one split and its temperature on a disjoint, stratified split.

    Parameters
    ----------
    states : ndarray of shape (n_samples, hidden_dim)
        Pooled hidden states of decoder layer ``layer``.
    correct : ndarray of shape (n_samples,)
        Whether each answer was right.
    layer, pooling, version
        Stored on the probe.
    calibration_fraction : float
        Share of samples held out for temperature scaling.
    C : float
        Inverse L2 strength of the logistic regression.
    seed : int

    Returns
    -------
    LinearProbe
        With ``metadata["calibration_auroc"]``, the split sizes and the temperature.

    Raises
    ------
    ValueError
        Bad shapes, or only one class present.
    """
    states, correct = _check(states, correct)
    x_fit, x_cal, y_fit, y_cal = train_test_split(
        states, correct, test_size=calibration_fraction, stratify=correct, random_state=seed
    )
    mean, std = x_fit.mean(axis=0), x_fit.std(axis=0) + 1e-6
    clf = LogisticRegression(C=C, max_iter=2000).fit((x_fit - mean) / std, y_fit)
    weight = clf.coef_[0] / std  # fold standardisation into the weights
    bias = float(clf.intercept_[0] - np.dot(clf.coef_[0], mean / std))
    cal_logits = x_cal @ weight + bias
    temperature = fit_temperature(cal_logits, y_cal)
    return LinearProbe(
        weight=weight.astype(np.float32),
        bias=bias,
        temperature=temperature,
        layer=layer,
        pooling=pooling,
        version=version,
        metadata={
            "n_fit": int(len(y_fit)),
            "n_calibration": int(len(y_cal)),
            "calibration_auroc": float(roc_auc_score(y_cal, cal_logits)),
            "fit_accuracy_base_rate": float(y_fit.mean()),
            "C": C,
            "seed": seed,
        },
    )
