"""Structural attention metrics over image patches: spatial entropy and secondary components.

*Where Reliability Lives*, Section 3.1: per layer, attention is averaged over
heads (and answer positions), restricted to image patches and normalised to a
distribution ``a`` over the patch grid.

- Eq. 1, spatial entropy: ``H = -sum_i a_i log a_i`` (nats).
- Eq. 2, secondary-component count: threshold ``a`` at the top ``mass`` of
  attention mass, binarise on the patch grid, count connected components under
  4-neighbour adjacency (``scipy.ndimage.label``); report ``components - 1`` so
  that zero is a single contiguous focus.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage


def spatial_entropy(attention: np.ndarray) -> np.ndarray:
    """Eq. 1: entropy of the normalised attention over patches, nats.

    Parameters
    ----------
    attention : ndarray of shape (n_samples, n_patches)
        Non-negative attention to each image patch (need not sum to 1).

    Returns
    -------
    ndarray of shape (n_samples,)
        In ``[0, log n_patches]``.

    Raises
    ------
    ValueError
        Negative values or a row summing to zero.

    Examples
    --------
    >>> spatial_entropy(np.array([[1.0, 0, 0, 0], [1, 1, 1, 1]])).round(4)
    array([0.    , 1.3863])
    """
    a = np.asarray(attention, dtype=np.float64)
    if (a < 0).any() or (a.sum(1) <= 0).any():
        raise ValueError("attention must be non-negative with a positive sum per row")
    p = a / a.sum(1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.abs(-np.where(p > 0, p * np.log(p), 0.0).sum(1))  # abs: no -0.0


def top_mass_mask(attention: np.ndarray, mass: float) -> np.ndarray:
    """Boolean mask of the fewest patches holding at least ``mass`` of the attention.

    Parameters
    ----------
    attention : ndarray of shape (n_patches,)
    mass : float
        In (0, 1].

    Returns
    -------
    ndarray of shape (n_patches,), bool
    """
    a = np.asarray(attention, dtype=np.float64)
    p = a / a.sum()
    order = np.argsort(-p, kind="stable")
    n_keep = int(np.searchsorted(np.cumsum(p[order]), mass - 1e-12) + 1)
    mask = np.zeros(len(p), dtype=bool)
    mask[order[: min(n_keep, len(p))]] = True
    return mask


def secondary_components(
    attention: np.ndarray, grid: tuple[int, int], mass: float = 0.5
) -> np.ndarray:
    """Eq. 2: connected components of the top-mass patches, minus one.

    Parameters
    ----------
    attention : ndarray of shape (n_samples, rows * cols)
        Attention over patches in row-major grid order.
    grid : (int, int)
        Patch grid (rows, cols), e.g. (4, 4) for the reference model.
    mass : float
        Top attention mass kept before binarising, in (0, 1].

    Returns
    -------
    ndarray of shape (n_samples,), int
        ``components - 1``; 0 means one contiguous focus.

    Raises
    ------
    ValueError
        ``mass`` outside (0, 1] or ``grid`` not matching the number of patches.

    Examples
    --------
    >>> a = np.zeros((1, 16)); a[0, [0, 15]] = 1.0
    >>> secondary_components(a, (4, 4), mass=0.9)
    array([1])
    """
    a = np.asarray(attention, dtype=np.float64)
    if not 0 < mass <= 1:
        raise ValueError(f"mass must be in (0, 1], got {mass}")
    if grid[0] * grid[1] != a.shape[1]:
        raise ValueError(f"grid {grid} does not hold {a.shape[1]} patches")
    out = np.empty(len(a), dtype=np.int64)
    for i, row in enumerate(a):
        _, n = ndimage.label(top_mass_mask(row, mass).reshape(grid))  # 4-neighbour by default
        out[i] = n - 1
    return out


def patch_grid(n_patches: int) -> tuple[int, int]:
    """Square grid for ``n_patches`` image tokens.

    Raises
    ------
    ValueError
        ``n_patches`` is not a perfect square.
    """
    side = int(round(np.sqrt(n_patches)))
    if side * side != n_patches:
        raise ValueError(f"{n_patches} image tokens do not form a square patch grid")
    return side, side
