"""The detector contract shared by every drift detector.

A detector follows the scikit-learn estimator contract: ``__init__`` only
stores its arguments under their own names, ``fit`` validates the reference
window, learns attributes whose names end in ``_`` and returns ``self``, and
``score`` on an unfitted detector raises :class:`NotFittedError`. ``score``
returns a frozen :class:`DetectorResult`; below ``min_samples`` the result says
``insufficient_data=True`` with ``statistic=None`` and ``is_drift=False``
instead of a number nobody should trust.
"""

from __future__ import annotations

import inspect
import math
import numbers
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from types import MappingProxyType
from typing import Any, ClassVar

import numpy as np
from numpy.typing import ArrayLike, NDArray

Window = tuple[float, float]
"""Bounds of a scored window, ``(start, end)`` in seconds since the Unix epoch."""


class NotFittedError(ValueError, AttributeError):
    """A detector was used before :meth:`Detector.fit` (same bases as scikit-learn's)."""


@dataclass(frozen=True)
class DetectorResult:
    """Outcome of scoring one window with one detector.

    Attributes
    ----------
    detector : str
        Name of the detector (``Detector.name``), e.g. ``"kl_divergence"``.
    statistic : float or None
        The drift statistic in the detector's unit; None when data was insufficient.
    threshold : float
        Value of ``statistic`` above which drift is declared (same unit).
    is_drift : bool
        ``statistic > threshold``; always False when data was insufficient.
    p_value : float or None
        p-value of a statistical test, for detectors that run one; otherwise None.
    n_reference : int
        Number of samples in the reference window.
    n_current : int
        Number of samples in the scored window.
    window_start, window_end : float or None
        Bounds of the scored window, seconds since the Unix epoch, when known.
    insufficient_data : bool
        True when a window held fewer than ``min_samples`` samples.
    details : Mapping
        Read-only, JSON-serialisable detector-specific extras (``"unit"``, bins, ...).

    Raises
    ------
    ValueError
        Inconsistent fields: a statistic with ``insufficient_data``, a drift
        without a statistic, negative counts, a NaN statistic, or
        ``window_start > window_end``.
    """

    detector: str
    statistic: float | None
    threshold: float
    is_drift: bool
    p_value: float | None
    n_reference: int
    n_current: int
    window_start: float | None
    window_end: float | None
    insufficient_data: bool
    details: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # numpy scalars sneak in from computations: store plain Python types.
        set_ = object.__setattr__
        set_(self, "is_drift", bool(self.is_drift))
        set_(self, "insufficient_data", bool(self.insufficient_data))
        set_(self, "threshold", float(self.threshold))
        set_(self, "n_reference", int(self.n_reference))
        set_(self, "n_current", int(self.n_current))
        if self.statistic is not None:
            set_(self, "statistic", float(self.statistic))
            if math.isnan(self.statistic):
                raise ValueError(f"{self.detector}: statistic is NaN")
        if self.p_value is not None:
            set_(self, "p_value", float(self.p_value))
        set_(self, "details", MappingProxyType(dict(self.details)))
        if self.insufficient_data and (self.statistic is not None or self.is_drift):
            raise ValueError(
                f"{self.detector}: insufficient data must have statistic=None and no drift"
            )
        if self.statistic is None and not self.insufficient_data:
            raise ValueError(f"{self.detector}: statistic is None but insufficient_data is False")
        if self.n_reference < 0 or self.n_current < 0:
            raise ValueError(f"{self.detector}: negative sample counts")
        if (
            self.window_start is not None
            and self.window_end is not None
            and self.window_start > self.window_end
        ):
            raise ValueError(
                f"{self.detector}: window_start {self.window_start} > window_end {self.window_end}"
            )

    def as_dict(self) -> dict[str, Any]:
        """Plain, JSON-serialisable copy of all fields (``details`` as a ``dict``)."""
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["details"] = _plain(self.details)
        return out


def _plain(obj: Any) -> Any:
    """Mappings to dicts and tuples to lists, recursively (for JSON)."""
    if isinstance(obj, Mapping):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    return obj


class Detector(ABC):
    """Base class: parameters, fitted check, and building a :class:`DetectorResult`.

    Subclasses set ``name`` and ``unit``, store every constructor argument under
    its own name (so :meth:`get_params` and ``repr`` work), learn attributes
    ending in ``_`` in ``fit`` and call :meth:`_result` at the end of ``score``.
    """

    name: ClassVar[str] = "detector"
    unit: ClassVar[str] = ""

    threshold: float
    min_samples: int

    @abstractmethod
    def fit(self, *args: Any, **kwargs: Any) -> Detector:
        """Learn from the reference window; return ``self``."""

    @abstractmethod
    def score(self, *args: Any, **kwargs: Any) -> DetectorResult:
        """Score a current window against what ``fit`` learned."""

    def get_params(self) -> dict[str, Any]:
        """Constructor arguments by name (read from ``__init__``'s signature)."""
        names = [p for p in inspect.signature(type(self).__init__).parameters if p != "self"]
        return {p: getattr(self, p) for p in names}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"

    def _check_params(self) -> None:
        """Validate the shared parameters (called from ``fit``, never ``__init__``)."""
        t = self.threshold
        if isinstance(t, bool) or not (isinstance(t, numbers.Real) and math.isfinite(t)):
            raise ValueError(
                f"{self.name}: threshold must be a finite number, got {self.threshold!r}"
            )
        if isinstance(self.min_samples, bool) or not isinstance(self.min_samples, int):
            raise ValueError(f"{self.name}: min_samples must be an int, got {self.min_samples!r}")
        if self.min_samples < 1:
            raise ValueError(f"{self.name}: min_samples must be >= 1, got {self.min_samples}")

    def _check_is_fitted(self) -> None:
        """Raise :class:`NotFittedError` unless ``fit`` has run."""
        if getattr(self, "n_reference_", None) is None:
            raise NotFittedError(
                f"This {type(self).__name__} is not fitted yet: call fit(reference) before score()"
            )

    def _result(
        self,
        statistic: float | None,
        *,
        n_current: int,
        window: Window | None,
        p_value: float | None = None,
        details: Mapping[str, Any] | None = None,
        insufficient_reason: str | None = None,
        threshold: float | None = None,
    ) -> DetectorResult:
        """Build the result; ``insufficient_reason`` set means "no number".

        ``threshold`` overrides ``self.threshold`` for detectors whose bound on
        the statistic depends on the window (the critical value of a test at
        significance level ``alpha``, which makes ``statistic > threshold``
        equivalent to ``p_value < alpha``).
        """
        bound = self.threshold if threshold is None else threshold
        start, end = _check_window(window, self.name)
        extra = {"unit": self.unit, **(details or {})}
        if insufficient_reason is not None:
            extra["reason"] = insufficient_reason
            statistic, p_value = None, None
        return DetectorResult(
            detector=self.name,
            statistic=statistic,
            threshold=bound,
            is_drift=statistic is not None and statistic > bound,
            p_value=p_value,
            n_reference=self.n_reference_,  # type: ignore[attr-defined]
            n_current=n_current,
            window_start=start,
            window_end=end,
            insufficient_data=insufficient_reason is not None,
            details=extra,
        )


def insufficient_reason(n_reference: int, n_current: int, min_samples: int) -> str | None:
    """Why a window pair is too small to score, or None when both hold ``min_samples``."""
    if n_reference < min_samples:
        return f"reference has {n_reference} samples < min_samples={min_samples}"
    if n_current < min_samples:
        return f"current window has {n_current} samples < min_samples={min_samples}"
    return None


def _check_window(window: Window | None, who: str) -> tuple[float | None, float | None]:
    if window is None:
        return None, None
    try:
        start, end = (float(v) for v in window)
    except (TypeError, ValueError) as exc:
        raise ValueError(
            f"{who}: window must be (start, end) in epoch seconds, got {window!r}"
        ) from exc
    if not (math.isfinite(start) and math.isfinite(end)) or start > end:
        raise ValueError(f"{who}: window must satisfy start <= end (finite), got {window!r}")
    return start, end


def as_1d_finite(x: ArrayLike, name: str) -> NDArray[np.float64]:
    """Convert ``x`` to a float array of shape ``(n_samples,)``, rejecting NaN and inf.

    Raises
    ------
    ValueError
        ``x`` is not numeric, not one-dimensional, or holds non-finite values.
    """
    try:
        arr = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be numeric: {exc}") from exc
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional (n_samples,), got shape {arr.shape}")
    # Fast path: min and max are finite only when every value is (NaN propagates).
    if arr.size and not (np.isfinite(arr.min()) and np.isfinite(arr.max())):
        bad = np.count_nonzero(~np.isfinite(arr))
        raise ValueError(f"{name} holds {bad} non-finite value(s) (NaN or inf)")
    return arr


def as_probability(x: ArrayLike, name: str) -> NDArray[np.float64]:
    """Like :func:`as_1d_finite`, also requiring every value in [0, 1].

    Raises
    ------
    ValueError
        As :func:`as_1d_finite`, or a value outside [0, 1] (the first one is named).
    """
    arr = as_1d_finite(x, name)
    if arr.size == 0 or (arr.min() >= 0.0 and arr.max() <= 1.0):
        return arr
    outside = (arr < 0.0) | (arr > 1.0)
    if outside.any():
        i = int(np.argmax(outside))
        raise ValueError(
            f"{name} must be probabilities in [0, 1]: {int(outside.sum())} value(s) outside, "
            f"first {float(arr[i])!r} at index {i}"
        )
    return arr


def as_binary(x: ArrayLike, name: str) -> NDArray[np.float64]:
    """Convert 0/1 or boolean outcomes to a float array of shape ``(n_samples,)``.

    Raises
    ------
    ValueError
        ``x`` is not one-dimensional or holds a value other than 0, 1, True, False.
    """
    if isinstance(x, np.ndarray) and x.dtype == np.bool_ and x.ndim == 1:
        return x.astype(np.float64)  # already binary
    arr = as_1d_finite(x, name)
    bad = (arr != 0.0) & (arr != 1.0)
    if bad.any():
        i = int(np.argmax(bad))
        raise ValueError(f"{name} must be binary (0/1 or bool), got {float(arr[i])!r} at index {i}")
    return arr
