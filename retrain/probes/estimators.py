"""Correctness probes with one interface: ``fit(states, correct)``, ``predict_proba(states)``.

Every probe here is linear in the (possibly LayerNorm-normalised) state, so it
exports to the serving :class:`collectors.probe.linear.LinearProbe` exactly:

- :class:`L2LogisticProbe`: L2 logistic regression, ``C`` chosen by stratified
  K-fold cross-validation of AUROC (the paper's linear probe);
- :class:`L1SparseProbe`: L1 logistic regression (Tibshirani 1996; liblinear),
  reporting the hidden units it keeps (``selected_units_``, the paper's sparse circuit);
- :class:`retrain.probes.torch_probe.NormLinearProbe`: the reference article's LayerNorm +
  Dropout + Linear probe trained with early stopping;
- :class:`retrain.probes.stacked.StackedProbe`: any of these over the concatenated
  states of several decoder layers.

``predict_proba`` returns the uncalibrated probability ``sigmoid(logit)`` of a
correct answer; calibration is fitted apart (:mod:`retrain.calibrate`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold

from collectors.probe.calibration import IsotonicTable, TemperatureScaling
from collectors.probe.linear import LinearProbe
from collectors.probe.projection import Projection
from retrain.evaluate import auroc
from retrain.probes.solver import column_moments, fit_l2_logistic


def check_xy(states: Any, correct: Any) -> tuple[np.ndarray, np.ndarray]:
    """Validate ``states`` (n, d) and ``correct`` (n,); return float32 states and bool labels.

    Raises
    ------
    ValueError
        Not 2-D, lengths differ, non-finite values, or a single class.
    """
    x = np.ascontiguousarray(states, dtype=np.float32)
    y = np.asarray(correct).astype(bool).reshape(-1)
    if x.ndim != 2:
        raise ValueError(f"states must be 2-D (n_samples, hidden_dim), got shape {x.shape}")
    if y.shape != (x.shape[0],):
        raise ValueError(f"correct must have shape ({x.shape[0]},), got {y.shape}")
    if y.all() or not y.any():
        raise ValueError("correct must contain both right and wrong answers to fit a probe")
    return x, y


def _folds(y: np.ndarray, cv: int) -> int:
    return max(2, min(cv, int(y.sum()), int((~y).sum())))


class Probe:
    """Base class: subclasses set ``coef_`` (``(n_features,)``), ``intercept_`` and
    ``input_norm_`` (LayerNorm epsilon or ``None``) in ``fit``."""

    kind = "probe"
    input_norm_: float | None = None

    def fit(self, states: np.ndarray, correct: np.ndarray) -> Probe:  # pragma: no cover
        raise NotImplementedError

    def _check_fitted(self) -> None:
        if not hasattr(self, "coef_"):
            raise NotFittedError(f"{type(self).__name__} is not fitted; call fit() first")

    def decision_function(self, states: np.ndarray) -> np.ndarray:
        """Raw logits, shape ``(n_samples,)``, of ``states`` ``(n_samples, n_features)``."""
        self._check_fitted()
        x = np.asarray(states, dtype=np.float32)
        if x.ndim != 2 or x.shape[1] != self.coef_.shape[0]:
            raise ValueError(f"states must have shape (n, {self.coef_.shape[0]}), got {x.shape}")
        if self.input_norm_ is not None:
            x = (x - x.mean(1, keepdims=True)) / np.sqrt(x.var(1, keepdims=True) + self.input_norm_)
        return x @ self.coef_ + self.intercept_

    def predict_proba(self, states: np.ndarray) -> np.ndarray:
        """Uncalibrated probability of a correct answer, shape ``(n_samples,)``."""
        return 1.0 / (1.0 + np.exp(-self.decision_function(states).astype(np.float64)))

    def to_linear_probe(
        self,
        *,
        layer: int,
        pooling: str,
        version: str,
        layers: tuple[int, ...] | None = None,
        calibration: TemperatureScaling | IsotonicTable | None = None,
        projection: Projection | None = None,
        metadata: dict | None = None,
    ) -> LinearProbe:
        """Export to the serving format (safetensors + JSON, no pickle).

        Parameters
        ----------
        layer, pooling, version, layers
            Stored on the probe (``layers`` for a stacked probe).
        calibration : TemperatureScaling or IsotonicTable, optional
            Fitted on the raw logits of a split disjoint from the fitting split.
        projection : Projection, optional
            The probe was fitted on states projected by ``projection``; it is
            folded in (``w_raw = basis @ w``, ``b_raw = b - (mean @ basis) . w``)
            so the served probe reads raw hidden states, and kept for capture.

        Raises
        ------
        NotFittedError
        ValueError
            A projection with a LayerNorm probe (the norm of a projected state
            cannot be folded into a dot product on the raw state).
        """
        self._check_fitted()
        weight, bias = self.coef_.astype(np.float64), float(self.intercept_)
        if projection is not None:
            if self.input_norm_ is not None:
                raise ValueError("cannot fold a projection into a LayerNorm probe; use l2 or l1")
            bias -= float((projection.mean.astype(np.float64) @ projection.basis) @ weight)
            weight = projection.basis.astype(np.float64) @ weight
        extra: dict[str, Any] = {}
        if isinstance(calibration, IsotonicTable):
            extra["isotonic"] = calibration
        elif isinstance(calibration, TemperatureScaling):
            extra["temperature"] = calibration.temperature
        return LinearProbe(
            weight=weight.astype(np.float32),
            bias=bias,
            layer=layer,
            pooling=pooling,
            version=version,
            layers=layers,
            projection=projection,
            input_norm=self.input_norm_,
            metadata={"probe_kind": self.kind, **(metadata or {})},
            **extra,
        )


class L2LogisticProbe(Probe):
    """L2 logistic regression on standardised states, ``C`` chosen by K-fold AUROC.

    Parameters
    ----------
    Cs : tuple of float
        Candidate inverse L2 strengths (ascending; fitted with warm starts).
    cv : int
        Folds of the stratified cross-validation.
    cv_max_samples : int
        The C search runs on at most this many rows (a stratified subsample);
        the final fit uses all rows.
    max_iter : int
        L-BFGS iterations per fit.
    seed : int

    Attributes
    ----------
    C_ : float
    cv_auroc_ : dict of float to float
        Mean held-out AUROC per candidate C.
    coef_ : ndarray of shape (n_features,)
        Weights on the raw (unstandardised) state.
    intercept_ : float
    """

    kind = "l2"

    def __init__(
        self,
        Cs: tuple[float, ...] = (1e-3, 1e-2, 1e-1, 1.0),
        cv: int = 3,
        cv_max_samples: int = 10_000,
        max_iter: int = 100,
        seed: int = 0,
    ) -> None:
        self.Cs, self.cv, self.cv_max_samples = Cs, cv, cv_max_samples
        self.max_iter, self.seed = max_iter, seed

    def fit(self, states: np.ndarray, correct: np.ndarray) -> L2LogisticProbe:
        """Fit on ``states`` ``(n_samples, n_features)`` and 0/1 ``correct``; return self."""
        x, y = check_xy(states, correct)
        rng = np.random.default_rng(self.seed)
        sub = np.arange(len(y))
        if len(y) > self.cv_max_samples:
            sub = np.sort(rng.choice(len(y), self.cv_max_samples, replace=False))
        xs, ys = torch.from_numpy(x[sub]), y[sub]
        scores = {c: [] for c in self.Cs}
        splitter = StratifiedKFold(_folds(ys, self.cv), shuffle=True, random_state=self.seed)
        for fit_idx, held_idx in splitter.split(np.zeros(len(ys)), ys):
            xf, yf = xs[fit_idx], torch.from_numpy(ys[fit_idx].astype(np.float32))
            mean, std = column_moments(xf)
            init = None
            for c in sorted(self.Cs):
                w, b = init = fit_l2_logistic(
                    xf, yf, mean, std, c, init=init, max_iter=self.max_iter
                )
                v = w / std
                z = xs[held_idx] @ v + (b - mean @ v)
                scores[c].append(auroc(z.numpy(), ys[held_idx]))
        self.cv_auroc_ = {c: float(np.nanmean(s)) for c, s in scores.items()}
        best = max(self.cv_auroc_.values())
        self.C_ = min(c for c, s in self.cv_auroc_.items() if s >= best - 1e-4)  # ties: stronger L2
        xt = torch.from_numpy(x)
        mean, std = column_moments(xt)
        yt = torch.from_numpy(y.astype(np.float32))
        w, b = fit_l2_logistic(xt, yt, mean, std, self.C_, max_iter=self.max_iter)
        v = w / std
        self.coef_ = v.numpy().astype(np.float32)
        self.intercept_ = float(b - float(mean @ v))
        return self


class L1SparseProbe(Probe):
    """L1 logistic regression on standardised states; reports the units it selects.

    Parameters
    ----------
    Cs : tuple of float
        Candidate inverse L1 strengths, chosen by stratified K-fold AUROC.
    cv : int
    seed : int

    Attributes
    ----------
    C_ : float
    selected_units_ : ndarray of int
        Hidden-unit indices with a non-zero weight (the sparse circuit).
    coef_ : ndarray of shape (n_features,)
    intercept_ : float
    """

    kind = "l1"

    def __init__(
        self, Cs: tuple[float, ...] = (0.01, 0.03, 0.1, 0.3, 1.0), cv: int = 3, seed: int = 0
    ) -> None:
        self.Cs, self.cv, self.seed = Cs, cv, seed

    def _fit_one(self, x: np.ndarray, y: np.ndarray, c: float) -> LogisticRegression:
        return LogisticRegression(C=c, l1_ratio=1.0, solver="liblinear", max_iter=1000).fit(x, y)

    def fit(self, states: np.ndarray, correct: np.ndarray) -> L1SparseProbe:
        """Fit on ``states`` ``(n_samples, n_features)`` and 0/1 ``correct``; return self."""
        x, y = check_xy(states, correct)
        mean, std = x.mean(0), x.std(0) + 1e-6
        xs = (x - mean) / std
        splitter = StratifiedKFold(_folds(y, self.cv), shuffle=True, random_state=self.seed)
        scores = {c: [] for c in self.Cs}
        for fit_idx, held_idx in splitter.split(xs, y):
            for c in self.Cs:
                model = self._fit_one(xs[fit_idx], y[fit_idx], c)
                scores[c].append(auroc(model.decision_function(xs[held_idx]), y[held_idx]))
        self.cv_auroc_ = {c: float(np.nanmean(s)) for c, s in scores.items()}
        best = max(self.cv_auroc_.values())
        self.C_ = min(c for c, s in self.cv_auroc_.items() if s >= best - 1e-4)
        model = self._fit_one(xs, y, self.C_)
        coef = model.coef_[0]
        self.selected_units_ = np.flatnonzero(coef)
        self.coef_ = (coef / std).astype(np.float32)
        self.intercept_ = float(model.intercept_[0] - np.dot(coef, mean / std))
        return self
