"""Project captured hidden states to ``k`` dimensions before they leave the serving process.

A pooled hidden state of LLaVA-1.5-7B has 4,096 floats (about 40 KB as JSON);
drift detection on states works on far fewer dimensions. Two bases, both
stored with the probe (tensors in its safetensors file, kind and seed in its
JSON) so the monitor knows which space the states live in:

- ``random``: a seeded Gaussian matrix scaled by ``1 / sqrt(k)``, which keeps
  pairwise distances within ``1 +- eps`` with high probability
  (Johnson-Lindenstrauss lemma; Dasgupta & Gupta 2003, Theorem 2.1);
- ``pca``: the top ``k`` principal directions of reference states (centred,
  computed by SVD), the best rank-``k`` linear summary in squared error
  (Eckart-Young theorem).

Projected state: ``s = (h - mean) @ basis``, shape ``(k,)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


@dataclass(frozen=True, eq=False)
class Projection:
    """A linear map from ``hidden_dim`` to ``k`` dimensions.

    Parameters
    ----------
    basis : ndarray of shape (hidden_dim, k)
    mean : ndarray of shape (hidden_dim,)
        Subtracted before projecting (zeros for ``random``).
    kind : {"random", "pca"}
    seed : int or None
        Seed of a ``random`` basis.

    Raises
    ------
    ValueError
        Shapes disagree or ``kind`` is unknown.
    """

    basis: np.ndarray
    mean: np.ndarray
    kind: str
    seed: int | None = None

    def __post_init__(self) -> None:
        basis = np.asarray(self.basis, dtype=np.float32)
        mean = np.asarray(self.mean, dtype=np.float32).reshape(-1)
        if basis.ndim != 2 or mean.shape != (basis.shape[0],):
            raise ValueError(f"basis {basis.shape} and mean {mean.shape} do not match")
        if self.kind not in ("random", "pca"):
            raise ValueError(f"projection kind must be 'random' or 'pca', got {self.kind!r}")
        object.__setattr__(self, "basis", basis)
        object.__setattr__(self, "mean", mean)
        object.__setattr__(self, "_cache", {})  # (device, dtype) -> (basis, mean) tensors

    @property
    def hidden_dim(self) -> int:
        return int(self.basis.shape[0])

    @property
    def k(self) -> int:
        return int(self.basis.shape[1])

    @classmethod
    def random(cls, hidden_dim: int, k: int, seed: int = 0) -> Projection:
        """Seeded Gaussian basis ``N(0, 1/k)`` of shape ``(hidden_dim, k)``.

        Raises
        ------
        ValueError
            ``k`` or ``hidden_dim`` < 1.
        """
        if k < 1 or hidden_dim < 1:
            raise ValueError(f"hidden_dim and k must be >= 1, got {hidden_dim}, {k}")
        rng = np.random.default_rng(seed)
        basis = rng.normal(scale=1.0 / np.sqrt(k), size=(hidden_dim, k))
        return cls(basis=basis, mean=np.zeros(hidden_dim), kind="random", seed=seed)

    @classmethod
    def pca(cls, states: np.ndarray, k: int) -> Projection:
        """Top-``k`` principal directions of ``states`` (``(n_samples, hidden_dim)``).

        Raises
        ------
        ValueError
            ``k`` < 1 or larger than ``min(n_samples, hidden_dim)``.
        """
        states = np.asarray(states, dtype=np.float64)
        if states.ndim != 2 or not 1 <= k <= min(states.shape):
            raise ValueError(f"k must be in [1, {min(states.shape)}] for states {states.shape}")
        mean = states.mean(axis=0)
        _, _, vt = np.linalg.svd(states - mean, full_matrices=False)  # rows: principal axes
        return cls(basis=vt[:k].T, mean=mean, kind="pca")

    def apply(self, states: np.ndarray) -> np.ndarray:
        """Project ``states`` (``(n, hidden_dim)``) to shape ``(n, k)``, float32."""
        states = np.asarray(states, dtype=np.float32)
        return (states - self.mean) @ self.basis

    def apply_torch(self, states: torch.Tensor) -> torch.Tensor:
        """Project on ``states``' device, float32: ``(batch, hidden_dim) -> (batch, k)``."""
        key = states.device
        cached = self._cache.get(key)
        if cached is None:
            cached = (
                torch.as_tensor(self.basis, device=key),
                torch.as_tensor(self.mean, device=key),
            )
            self._cache[key] = cached
        basis, mean = cached
        return (states.float() - mean) @ basis

    def to_tensors(self) -> dict[str, torch.Tensor]:
        """Tensors to store in the probe's safetensors file."""
        return {
            "projection_basis": torch.from_numpy(self.basis.copy()),
            "projection_mean": torch.from_numpy(self.mean.copy()),
        }

    def to_meta(self) -> dict:
        """JSON-safe description stored in the probe's metadata file."""
        return {"kind": self.kind, "k": self.k, "seed": self.seed}
