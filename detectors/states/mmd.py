"""Maximum mean discrepancy (MMD) of pooled hidden states, with a permutation p-value.

Statistic: the unbiased squared MMD with a Gaussian kernel (Gretton, Borgwardt,
Rasch, Schölkopf and Smola 2012, "A Kernel Two-Sample Test", JMLR 13, Eq. 3),

.. math::
    \\mathrm{MMD}^2_u = \\frac{1}{n(n-1)} \\sum_{i \\ne j} k(x_i, x_j)
    + \\frac{1}{m(m-1)} \\sum_{i \\ne j} k(y_i, y_j) - \\frac{2}{nm} \\sum_{i,j} k(x_i, y_j),

with :math:`k(a, b) = \\exp(-\\|a - b\\|^2 / (2 \\sigma^2))` and :math:`\\sigma` the
median pairwise distance in the pooled sample (the "median heuristic", same paper,
Sec. 8). The states are first reduced by a PCA fitted on one part of the
reference; the test compares the *other* part with the current window
(:func:`detectors.states.prepare.split_reference` says why).

p-value: a permutation test (same paper, Sec. 5.1; Phipson and Smyth 2010 for the
``(1 + #{T_b >= T}) / (1 + B)`` form, which is never 0 and keeps the test's size).
The bandwidth depends only on the pooled sample, which a permutation leaves
unchanged, so the test is exact at level ``alpha`` up to Monte-Carlo error.

Decision. ``alpha`` bounds the p-value; the result's ``threshold`` is the matching
critical value, the permuted statistic whose rank makes ``statistic > threshold``
the same decision as ``p_value < alpha``.

Cost. Each window is capped at ``max_samples`` rows drawn without replacement
(seeded) before the projection: the kernel is ``(n + m)^2`` and each permutation a
matrix product with it, so 1,000 + 1,000 rows and 200 permutations take a few
hundredths of a second whatever the window's size. ``n_current`` in the result is
the window's full size; ``details`` says how many rows were used.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike, NDArray

from detectors.base import Detector, DetectorResult, Window, insufficient_reason
from detectors.scores.ks import check_alpha, check_min_samples
from detectors.states.prepare import (
    as_2d_finite,
    check_positive_int,
    fit_pca,
    split_reference,
    subsample,
)


def mmd2_unbiased(kernel: NDArray[np.float64], n: int) -> float:
    """Unbiased squared MMD from a pooled kernel matrix, Gretton et al. (2012) Eq. 3.

    Parameters
    ----------
    kernel : ndarray of shape (n + m, n + m)
        Kernel matrix of the pooled sample, the first ``n`` rows from X, the rest from Y.
    n : int
        Size of the first sample, ``2 <= n <= n + m - 2``.

    Returns
    -------
    float
        :math:`\\mathrm{MMD}^2_u` (may be slightly negative under the null).
    """
    m = kernel.shape[0] - n
    kxx, kyy, kxy = kernel[:n, :n], kernel[n:, n:], kernel[:n, n:]
    sxx = (kxx.sum() - np.trace(kxx)) / (n * (n - 1))
    syy = (kyy.sum() - np.trace(kyy)) / (m * (m - 1))
    return float(sxx + syy - 2.0 * kxy.sum() / (n * m))


class MaximumMeanDiscrepancy(Detector):
    """Kernel two-sample test (Gaussian kernel, median heuristic) on PCA-reduced states.

    Parameters
    ----------
    alpha : float, default 0.05
        Significance level: drift when the permutation p-value is below it.
    n_components : int, default 32
        PCA components fitted on the reference (fewer if the reference is smaller).
    n_permutations : int, default 200
        Permutations for the p-value; at least ``1 / alpha``.
    max_samples : int, default 1000
        Rows used per window (drawn without replacement, seeded).
    random_state : int, default 0
        Seed of the PCA, the subsampling and the permutations.
    min_samples : int, default 100
        Fewer rows in either window gives an ``insufficient_data`` result.

    Attributes
    ----------
    pca_ : sklearn.decomposition.PCA
        Projection fitted on the reference.
    reference_z_ : ndarray of shape (n_used, n_components)
        Projected held-out reference rows used by the test.
    n_features_ : int
        Width of the states (hidden dimension).
    n_reference_ : int
        Number of reference rows.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> det = MaximumMeanDiscrepancy(n_components=8).fit(rng.normal(size=(300, 64)))
    >>> det.score(rng.normal(size=(300, 64))).is_drift
    False
    >>> r = det.score(rng.normal(size=(300, 64)) + 0.3)
    >>> r.is_drift, r.p_value < 0.05
    (True, True)
    """

    name = "mmd"
    unit = "squared MMD (kernel units)"

    def __init__(
        self,
        alpha: float = 0.05,
        n_components: int = 32,
        n_permutations: int = 200,
        max_samples: int = 1000,
        random_state: int = 0,
        min_samples: int = 100,
    ) -> None:
        self.alpha = alpha
        self.n_components = n_components
        self.n_permutations = n_permutations
        self.max_samples = max_samples
        self.random_state = random_state
        self.min_samples = min_samples

    def _check_params(self) -> None:
        check_alpha(self.alpha, self.name)
        check_min_samples(self.min_samples, self.name)
        check_positive_int(self.max_samples, "max_samples", self.name, minimum=2)
        check_positive_int(self.n_permutations, "n_permutations", self.name)
        if self.n_permutations + 1 <= 1 / self.alpha:
            raise ValueError(
                f"{self.name}: n_permutations={self.n_permutations} cannot reach a p-value "
                f"below alpha={self.alpha}: use at least {math.ceil(1 / self.alpha)}"
            )

    def fit(self, reference: ArrayLike) -> MaximumMeanDiscrepancy:
        """Fit the PCA on the reference states and keep the projected reference rows.

        Parameters
        ----------
        reference : array-like of shape (n_samples, n_features)
            Pooled hidden states of the reference window; at least 4 rows. The PCA is
        fitted on the rows the test does not use.

        Returns
        -------
        self

        Raises
        ------
        ValueError
            Bad parameters, or states that are not 2-D and finite, or fewer than 2 rows.
        """
        self._check_params()
        x = as_2d_finite(reference, "reference")
        rng = np.random.default_rng(self.random_state)
        pca_rows, test_rows = split_reference(x, self.max_samples, rng)
        self.pca_ = fit_pca(pca_rows, self.n_components, self.random_state)
        self.reference_z_ = self.pca_.transform(test_rows).astype(np.float64)
        self.n_features_ = int(x.shape[1])
        self.n_reference_ = int(x.shape[0])
        return self

    def score(self, current: ArrayLike, window: Window | None = None) -> DetectorResult:
        """Squared MMD of the current states against the reference, with a permutation p-value.

        Parameters
        ----------
        current : array-like of shape (n_samples, n_features)
            Pooled hidden states of the current window (same width as the reference).
        window : tuple of (float, float), optional
            ``(start, end)`` in epoch seconds.

        Returns
        -------
        DetectorResult
            ``statistic`` is :math:`\\mathrm{MMD}^2_u`; ``details`` holds ``alpha``,
            ``bandwidth``, ``n_permutations``, ``n_used_reference``,
            ``n_used_current`` and ``n_components``.

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
        details = {"alpha": float(self.alpha), "n_components": int(self.pca_.n_components_)}
        reason = insufficient_reason(self.n_reference_, m, self.min_samples)
        if reason is not None:
            return self._result(
                None,
                n_current=m,
                window=window,
                details=details,
                insufficient_reason=reason,
                threshold=0.0,
            )
        rng = np.random.default_rng(self.random_state + 1)
        cur = self.pca_.transform(subsample(x, self.max_samples, rng)).astype(np.float64)
        ref = self.reference_z_
        pooled = np.vstack([ref, cur])
        n = ref.shape[0]
        kernel, bandwidth = _gaussian_kernel(pooled)
        observed = mmd2_unbiased(kernel, n)
        permuted = _permuted_mmd2(kernel, n, self.n_permutations, rng)
        n_ge = int(np.count_nonzero(permuted >= observed))
        p_value = (1 + n_ge) / (1 + self.n_permutations)
        details.update(
            bandwidth=bandwidth,
            n_permutations=int(self.n_permutations),
            n_used_reference=int(n),
            n_used_current=int(cur.shape[0]),
        )
        return self._result(
            observed,
            n_current=m,
            window=window,
            p_value=p_value,
            details=details,
            threshold=_critical_value(permuted, self.alpha),
        )


def _gaussian_kernel(z: NDArray[np.float64]) -> tuple[NDArray[np.float64], float]:
    """Gaussian kernel matrix, shape (N, N), with the median-heuristic bandwidth sigma."""
    sq = np.einsum("ij,ij->i", z, z)
    d2 = sq[:, None] + sq[None, :] - 2.0 * (z @ z.T)
    np.maximum(d2, 0.0, out=d2)
    np.fill_diagonal(d2, 0.0)
    off = d2[np.triu_indices_from(d2, k=1)]
    sigma2 = float(np.median(np.sqrt(off))) ** 2
    if sigma2 <= 0.0:  # more than half the pairs coincide: any bandwidth gives the same test
        sigma2 = float(off.max()) if off.size and off.max() > 0 else 1.0
    np.multiply(d2, -0.5 / sigma2, out=d2)
    np.exp(d2, out=d2)
    return d2, math.sqrt(sigma2)


def _permuted_mmd2(
    kernel: NDArray[np.float64], n: int, n_permutations: int, rng: np.random.Generator
) -> NDArray[np.float64]:
    """:math:`\\mathrm{MMD}^2_u` for ``n_permutations`` random relabellings, shape (B,).

    With the indicator matrix ``A`` (N x B) of the rows labelled X, every block sum
    comes from one product ``K @ A``: ``s_xx = a^T K a``, ``s_xy = a^T K (1 - a)``,
    ``s_yy = 1^T K 1 - 2 s_xy - s_xx``. The Gaussian kernel's diagonal is 1.
    """
    total = kernel.shape[0]
    m = total - n
    order = np.argsort(rng.random((n_permutations, total)), axis=1)[:, :n]
    a = np.zeros((total, n_permutations))
    a[order.T, np.arange(n_permutations)] = 1.0
    ka = kernel @ a
    s_xx = np.einsum("ib,ib->b", a, ka)
    s_xa = ka.sum(axis=0)  # 1^T K a
    s_xy = s_xa - s_xx
    s_yy = kernel.sum() - 2.0 * s_xy - s_xx
    diag = np.trace(kernel) / total  # 1 for the Gaussian kernel
    return (
        (s_xx - n * diag) / (n * (n - 1)) + (s_yy - m * diag) / (m * (m - 1)) - 2.0 * s_xy / (n * m)
    )


def _critical_value(permuted: NDArray[np.float64], alpha: float) -> float:
    """The permuted statistic t with ``observed > t`` exactly when ``p_value < alpha``.

    ``p = (1 + G) / (1 + B)`` with ``G = #{T_b >= T}``, so ``p < alpha`` iff
    ``G <= g = ceil(alpha (1 + B) - 1) - 1``, iff ``T`` exceeds the (g+1)-th largest
    permuted value.
    """
    b = permuted.size
    g = math.ceil(round(alpha * (1 + b) - 1, 9)) - 1
    return float(np.sort(permuted)[::-1][g])
