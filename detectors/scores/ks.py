"""Two-sample Kolmogorov-Smirnov test on the raw score values (no bins).

Statistic :math:`D = \\sup_x |F_{cur}(x) - F_{ref}(x)|`, the largest gap between
the two empirical CDFs (Smirnov 1939; Hollander, Wolfe and Chicken 2014,
*Nonparametric Statistical Methods*, Sec. 5.4). The p-value is Smirnov's
asymptotic one as scipy computes it for ``ks_2samp(..., method="asymp")``: the
one-sample Kolmogorov distribution with the effective size
:math:`n_e = \\mathrm{round}(n m / (n + m))`, ``scipy.stats.kstwo.sf(D, n_e)``.

Decision. ``alpha`` bounds the p-value; the result's ``threshold`` is the matching
critical value of the statistic, :math:`D_\\alpha = ` ``kstwo.isf(alpha, n_e)``, so
``statistic > threshold`` is the same decision as ``p_value < alpha``. With big
windows KS flags differences too small to matter: read it with the effect-size
detectors (KL, PSI, JS), not alone.
"""

from __future__ import annotations

import math
import numbers

import numpy as np
from numpy.typing import ArrayLike
from scipy.stats import kstwo

from detectors.base import Detector, DetectorResult, Window, as_1d_finite, insufficient_reason


class KolmogorovSmirnov(Detector):
    """Two-sample KS test of the current window against the reference.

    Parameters
    ----------
    alpha : float, default 0.05
        Significance level: drift when the p-value is below it.
    min_samples : int, default 100
        Fewer samples in either window gives an ``insufficient_data`` result.

    Attributes
    ----------
    reference_ : ndarray of shape (n_reference,)
        Sorted reference values.
    n_reference_ : int
        Number of reference samples.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> det = KolmogorovSmirnov().fit(rng.beta(5, 2, size=2000))
    >>> r = det.score(rng.beta(5, 2, size=1000))
    >>> round(r.statistic, 3), round(r.p_value, 2), r.is_drift
    (0.033, 0.43, False)
    >>> r = det.score(rng.beta(4, 2, size=1000))
    >>> round(r.statistic, 3), r.p_value < 0.05, r.is_drift
    (0.112, True, True)
    """

    name = "ks_test"
    unit = ""

    def __init__(self, alpha: float = 0.05, min_samples: int = 100) -> None:
        self.alpha = alpha
        self.min_samples = min_samples

    def _check_params(self) -> None:
        check_alpha(self.alpha, self.name)
        check_min_samples(self.min_samples, self.name)

    def fit(self, reference: ArrayLike) -> KolmogorovSmirnov:
        """Store the sorted reference values.

        Parameters
        ----------
        reference : array-like of shape (n_samples,)
            Reference scores (confidences or raw logits).

        Returns
        -------
        self

        Raises
        ------
        ValueError
            Bad ``alpha``/``min_samples``, or a reference that is not 1-D or not finite.
        """
        self._check_params()
        self.reference_ = np.sort(as_1d_finite(reference, "reference"))
        self.n_reference_ = int(self.reference_.size)
        return self

    def score(self, current: ArrayLike, window: Window | None = None) -> DetectorResult:
        """KS statistic D (a difference of CDFs, unitless) and its asymptotic p-value.

        Parameters
        ----------
        current : array-like of shape (n_samples,)
            Scores of the current window.
        window : tuple of (float, float), optional
            ``(start, end)`` in epoch seconds.

        Returns
        -------
        DetectorResult
            ``statistic`` is D, ``p_value`` Smirnov's, ``threshold`` the critical D
            at ``alpha``; ``details`` holds ``alpha`` and ``effective_n``.

        Raises
        ------
        NotFittedError
            ``fit`` was not called.
        ValueError
            ``current`` is not 1-D or not finite, or a bad ``window``.
        """
        self._check_is_fitted()
        cur = np.sort(as_1d_finite(current, "current"))
        n, m = self.n_reference_, int(cur.size)
        reason = insufficient_reason(n, m, self.min_samples)
        if reason is not None:
            return self._result(
                None,
                n_current=m,
                window=window,
                details={"alpha": self.alpha},
                insufficient_reason=reason,
                threshold=1.0,
            )
        ref = self.reference_
        both = np.concatenate([ref, cur])
        gap = (
            np.searchsorted(ref, both, side="right") / n
            - np.searchsorted(cur, both, side="right") / m
        )
        d = float(np.max(np.abs(gap)))
        effective_n = max(1, int(round(n * m / (n + m))))
        p_value = float(np.clip(kstwo.sf(d, effective_n), 0.0, 1.0))
        critical = float(kstwo.isf(self.alpha, effective_n))
        details = {"alpha": float(self.alpha), "effective_n": effective_n}
        return self._result(
            d, n_current=m, window=window, p_value=p_value, details=details, threshold=critical
        )


def check_alpha(alpha: object, who: str) -> None:
    """Raise ValueError unless ``alpha`` is a real number in (0, 1)."""
    if isinstance(alpha, bool) or not isinstance(alpha, numbers.Real) or not 0 < alpha < 1:
        raise ValueError(f"{who}: alpha must be a number in (0, 1), got {alpha!r}")
    if not math.isfinite(alpha):  # pragma: no cover - excluded by the range check
        raise ValueError(f"{who}: alpha must be finite")


def check_min_samples(min_samples: object, who: str) -> None:
    """Raise ValueError unless ``min_samples`` is an int >= 1."""
    if isinstance(min_samples, bool) or not isinstance(min_samples, int) or min_samples < 1:
        raise ValueError(f"{who}: min_samples must be an int >= 1, got {min_samples!r}")
