"""Domain-classifier AUROC: can a classifier tell current states from reference states?

A logistic regression is trained to separate reference rows (label 0) from
current rows (label 1) of PCA-reduced pooled hidden states; its out-of-fold
predicted probabilities (stratified k-fold, so no row is scored by a model that
saw it) give an AUROC. 0.5 means the windows are indistinguishable; 1.0 means
every current row is recognisable (Rabanser, Günnemann and Lipton 2019, "Failing
Loudly: An Empirical Study of Methods for Detecting Dataset Shift", Sec. 3.2,
"domain classifier"; Lipton, Wang and Smola 2018). Unlike MMD it also says *how
separable* the windows are, and its coefficients point at the directions that moved.

The PCA is fitted on reference rows the classifier never sees
(:func:`detectors.states.prepare.split_reference`). Out-of-fold AUROCs of one
classifier are not independent, so their Mann-Whitney p-value would be
optimistic. With ``alpha`` set, the p-value comes from a classifier two-sample
test instead (Lopez-Paz and Oquab 2017, "Revisiting Classifier Two-Sample
Tests", Sec. 2): one more classifier fitted on a stratified half, whose scores on
the other half are independent of its training, so the one-sided Mann-Whitney
U test of current above reference scores is exact; drift is then
``AUROC > threshold`` (a floor on the effect) and ``p < alpha``. Without
``alpha`` the decision is ``AUROC > threshold`` alone.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from scipy.stats import mannwhitneyu
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold, cross_val_predict, train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from detectors.base import Detector, DetectorResult, Window, insufficient_reason
from detectors.states.prepare import (
    as_2d_finite,
    check_positive_int,
    fit_pca,
    split_reference,
    subsample,
)


class DomainClassifierAUROC(Detector):
    """Out-of-fold AUROC of a reference-vs-current logistic regression on reduced states.

    Parameters
    ----------
    threshold : float, default 0.75
        Drift is declared when the AUROC exceeds this value (0.5 = no shift).
    n_components : int, default 32
        PCA components fitted on the reference.
    n_folds : int, default 5
        Stratified folds for the out-of-fold predictions.
    max_samples : int, default 1000
        Rows used per window (drawn without replacement, seeded).
    random_state : int, default 0
        Seed of the PCA, the subsampling and the folds.
    min_samples : int, default 100
        Fewer rows in either window gives an ``insufficient_data`` result.
    alpha : float or None, default None
        False-alarm rate of the held-out classifier two-sample test; None: the
        threshold alone decides.

    Attributes
    ----------
    pca_ : sklearn.decomposition.PCA
        Projection fitted on part of the reference.
    reference_z_ : ndarray of shape (n_used, n_components)
        Projected held-out reference rows.
    n_features_ : int
        Width of the states.
    n_reference_ : int
        Number of reference rows.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> det = DomainClassifierAUROC(n_components=8).fit(rng.normal(size=(400, 64)))
    >>> r = det.score(rng.normal(size=(300, 64)))
    >>> r.statistic < 0.6, r.is_drift
    (True, False)
    >>> r = det.score(rng.normal(size=(300, 64)) + 0.5)
    >>> r.statistic > 0.85, r.is_drift
    (True, True)
    """

    name = "domain_classifier_auroc"
    unit = "AUROC"

    def __init__(
        self,
        threshold: float = 0.75,
        n_components: int = 32,
        n_folds: int = 5,
        max_samples: int = 1000,
        random_state: int = 0,
        min_samples: int = 100,
        alpha: float | None = None,
    ) -> None:
        self.alpha = alpha
        self.threshold = threshold
        self.n_components = n_components
        self.n_folds = n_folds
        self.max_samples = max_samples
        self.random_state = random_state
        self.min_samples = min_samples

    def fit(self, reference: ArrayLike) -> DomainClassifierAUROC:
        """Fit the PCA on part of the reference and keep the other part, projected.

        Parameters
        ----------
        reference : array-like of shape (n_samples, n_features)
            Pooled hidden states of the reference window; at least 4 rows.

        Returns
        -------
        self

        Raises
        ------
        ValueError
            Bad parameters, or states that are not 2-D and finite, or too few rows.
        """
        self._check_params()
        check_positive_int(self.n_folds, "n_folds", self.name, minimum=2)
        check_positive_int(self.max_samples, "max_samples", self.name, minimum=2)
        x = as_2d_finite(reference, "reference")
        rng = np.random.default_rng(self.random_state)
        pca_rows, test_rows = split_reference(x, self.max_samples, rng)
        self.pca_ = fit_pca(pca_rows, self.n_components, self.random_state)
        self.reference_z_ = self.pca_.transform(test_rows).astype(np.float64)
        self.n_features_ = int(x.shape[1])
        self.n_reference_ = int(x.shape[0])
        return self

    def score(self, current: ArrayLike, window: Window | None = None) -> DetectorResult:
        """Out-of-fold AUROC of telling the current rows from the held-out reference rows.

        Parameters
        ----------
        current : array-like of shape (n_samples, n_features)
            Pooled hidden states of the current window.
        window : tuple of (float, float), optional
            ``(start, end)`` in epoch seconds.

        Returns
        -------
        DetectorResult
            ``statistic`` is the AUROC in [0, 1]; ``details`` holds ``n_folds``,
            ``n_used_reference``, ``n_used_current`` and ``n_components``.

        Raises
        ------
        NotFittedError
            ``fit`` was not called.
        ValueError
            ``current`` is not 2-D and finite, or its width differs from the reference's.
        """
        self._check_is_fitted()
        x = as_2d_finite(current, "current", n_features=self.n_features_)
        m = int(x.shape[0])
        details = {"n_folds": int(self.n_folds), "n_components": int(self.pca_.n_components_)}
        reason = insufficient_reason(self.n_reference_, m, self.min_samples)
        if reason is not None:
            return self._result(
                None, n_current=m, window=window, details=details, insufficient_reason=reason
            )
        rng = np.random.default_rng(self.random_state + 1)
        cur = self.pca_.transform(subsample(x, self.max_samples, rng)).astype(np.float64)
        ref = self.reference_z_
        features = np.vstack([ref, cur])
        labels = np.r_[np.zeros(ref.shape[0]), np.ones(cur.shape[0])]
        folds = min(self.n_folds, ref.shape[0], cur.shape[0])
        model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
        proba = cross_val_predict(
            model,
            features,
            labels,
            cv=StratifiedKFold(folds, shuffle=True, random_state=self.random_state),
            method="predict_proba",
        )[:, 1]
        details.update(n_used_reference=int(ref.shape[0]), n_used_current=int(cur.shape[0]))
        p = None if self.alpha is None else self._held_out_p_value(model, features, labels)
        if p is not None:
            details.update(alpha=float(self.alpha), p_value_test="held-out Mann-Whitney U")
        result = self._result(
            float(roc_auc_score(labels, proba)), n_current=m, window=window, details=details,
            p_value=p,
        )  # fmt: skip
        if p is not None and result.is_drift and not p < self.alpha:
            result = replace(result, is_drift=False)  # above the floor, but within chance
        return result

    def _held_out_p_value(self, model: Any, features: np.ndarray, labels: np.ndarray) -> float:
        """One-sided p-value of a classifier fitted on a stratified half, scored on the other."""
        train, test = train_test_split(
            np.arange(labels.size), test_size=0.5, stratify=labels,
            random_state=self.random_state + 2,
        )  # fmt: skip
        fitted = clone(model).fit(features[train], labels[train])
        scores = fitted.predict_proba(features[test])[:, 1]
        y = labels[test] == 1
        return float(mannwhitneyu(scores[y], scores[~y], alternative="greater").pvalue)
