"""Calibration maps from a probe's raw logit to a probability, applied on device.

Two maps, both usable in numpy (fitting, offline checks) and in torch (the
serving hook, on the layer's device, no host sync):

- :class:`TemperatureScaling`: ``p = sigmoid(z / T)`` (Guo et al. 2017,
  "On Calibration of Modern Neural Networks", Sec. 4.2);
- :class:`IsotonicTable`: isotonic regression of correctness on the raw logit
  (Zadrozny & Elkan 2002), stored as the lookup table of its breakpoints and
  evaluated by linear interpolation with the ends clipped, exactly as
  scikit-learn's ``IsotonicRegression(out_of_bounds="clip").predict`` does.

Calibration runs in float32 even when the layer runs in bfloat16: bfloat16
keeps 8 significant bits, so a probability near 0.99 would round to 0.9922.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


@dataclass(frozen=True)
class TemperatureScaling:
    """``p = sigmoid(z / temperature)``.

    Parameters
    ----------
    temperature : float
        ``T > 0``.

    Raises
    ------
    ValueError
        ``temperature <= 0``.
    """

    temperature: float = 1.0
    method = "temperature"

    def __post_init__(self) -> None:
        if not self.temperature > 0:
            raise ValueError(f"temperature must be > 0, got {self.temperature}")

    def apply(self, logits: np.ndarray) -> np.ndarray:
        """Probabilities, same shape as ``logits``, float64."""
        return 1.0 / (1.0 + np.exp(-np.asarray(logits, dtype=np.float64) / self.temperature))

    def apply_torch(self, logits: torch.Tensor) -> torch.Tensor:
        """Probabilities on ``logits``' device, float32, same shape."""
        return torch.sigmoid(logits.float() / self.temperature)


@dataclass(frozen=True, eq=False)
class IsotonicTable:
    """Isotonic regression as a lookup table on the raw logit.

    Parameters
    ----------
    x : ndarray of shape (n_points,)
        Strictly increasing breakpoints (raw logits), ``n_points >= 1``.
    y : ndarray of shape (n_points,)
        Non-decreasing probabilities in [0, 1] at the breakpoints.

    Raises
    ------
    ValueError
        Shapes differ, ``x`` is empty or not strictly increasing, ``y`` is not
        non-decreasing or leaves [0, 1].

    Examples
    --------
    >>> table = IsotonicTable(x=[-1.0, 1.0], y=[0.2, 0.8])
    >>> table.apply([-5.0, 0.0, 0.5, 9.0]).round(2).tolist()
    [0.2, 0.5, 0.65, 0.8]
    """

    x: np.ndarray
    y: np.ndarray
    method = "isotonic"

    def __post_init__(self) -> None:
        x = np.asarray(self.x, dtype=np.float64).reshape(-1)
        y = np.asarray(self.y, dtype=np.float64).reshape(-1)
        if x.shape != y.shape or x.size == 0:
            raise ValueError(f"x and y must be non-empty, of equal length; got {x.size}, {y.size}")
        if np.any(np.diff(x) <= 0) or np.any(np.diff(y) < 0):
            raise ValueError("x must be strictly increasing and y non-decreasing")
        if y.min() < 0 or y.max() > 1:
            raise ValueError("y must lie in [0, 1]")
        object.__setattr__(self, "x", x)
        object.__setattr__(self, "y", y)
        object.__setattr__(self, "_cache", {})  # device -> (x, y) float32 tensors

    @classmethod
    def fit(cls, logits: np.ndarray, correct: np.ndarray) -> IsotonicTable:
        """Fit on raw logits and 0/1 correctness with scikit-learn's ``IsotonicRegression``.

        Parameters
        ----------
        logits : ndarray of shape (n_samples,)
        correct : ndarray of shape (n_samples,), bool or 0/1
            Use a split disjoint from the probe's fitting split.
        """
        from sklearn.isotonic import IsotonicRegression

        iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip")
        iso.fit(np.asarray(logits, dtype=np.float64), np.asarray(correct, dtype=np.float64))
        return cls(x=iso.X_thresholds_, y=iso.y_thresholds_)

    def apply(self, logits: np.ndarray) -> np.ndarray:
        """Probabilities, same shape as ``logits``, float64 (``np.interp``, ends clipped)."""
        return np.interp(np.asarray(logits, dtype=np.float64), self.x, self.y)

    def apply_torch(self, logits: torch.Tensor) -> torch.Tensor:
        """Probabilities on ``logits``' device, float32: the same interpolation, no host sync."""
        key = logits.device
        table = self._cache.get(key)
        if table is None:
            table = (
                torch.as_tensor(self.x, dtype=torch.float32, device=key),
                torch.as_tensor(self.y, dtype=torch.float32, device=key),
            )
            self._cache[key] = table
        x, y = table
        z = logits.float()
        if x.numel() == 1:
            return y.expand_as(z).clone()
        hi = torch.searchsorted(x, z.contiguous()).clamp(1, x.numel() - 1)  # [n]
        lo = hi - 1
        t = ((z - x[lo]) / (x[hi] - x[lo])).clamp(0.0, 1.0)
        return y[lo] + t * (y[hi] - y[lo])


Calibration = TemperatureScaling | IsotonicTable
