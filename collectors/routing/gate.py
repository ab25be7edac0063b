"""The routing gate: serve, fall back, or ask for self-consistency in a gray zone.

Decision rule for a calibrated confidence ``p`` (probability the answer is correct)::

    low <= p <= high       -> "self_consistency"   (gray zone: spend K samples to decide)
    p >= threshold         -> "serve"
    otherwise              -> "fallback"           (e.g. human review)

The gray zone is checked first, so a threshold inside it (the reference
article's defaults: 0.72 inside [0.65, 0.80]) only decides outside the zone.

Actions: ``"serve"`` returns the generated answer (the "generate" action),
``"fallback"`` hands the request to the configured fallback (e.g. human review),
``"self_consistency"`` draws K more answers (:mod:`collectors.routing.self_consistency`)
and serves the majority answer when it reaches the agreement threshold, else
falls back.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

SERVE = "serve"
FALLBACK = "fallback"
SELF_CONSISTENCY = "self_consistency"


@dataclass(frozen=True)
class RoutingGate:
    """Map a calibrated confidence to a routing decision.

    Parameters
    ----------
    confidence_threshold : float
        Probability at or above which an answer is served (outside the gray zone).
    gray_zone_bounds : tuple of float
        Inclusive ``(low, high)`` probabilities where self-consistency decides.
        ``(t, t)`` with ``t`` outside ``[0, 1]`` effectively disables the zone.

    Raises
    ------
    ValueError
        Threshold outside [0, 1] or bounds not ordered.
    """

    confidence_threshold: float = 0.72
    gray_zone_bounds: tuple[float, float] = (0.65, 0.80)

    def __post_init__(self) -> None:
        lo, hi = self.gray_zone_bounds
        if not 0.0 <= self.confidence_threshold <= 1.0:
            raise ValueError(
                f"confidence_threshold must be in [0, 1], got {self.confidence_threshold}"
            )
        if lo > hi:
            raise ValueError(f"gray_zone_bounds must be ordered, got {self.gray_zone_bounds}")

    @classmethod
    def from_config(cls, routing: Any) -> RoutingGate:
        """Build from a ``reliability_monitor.routing`` config section (``RoutingConfig``)."""
        lo, hi = routing.gray_zone_bounds
        return cls(float(routing.confidence_threshold), (float(lo), float(hi)))

    def decide(self, confidence: float) -> str:
        """Return ``"serve"``, ``"fallback"`` or ``"self_consistency"`` for one confidence.

        A NaN confidence (request not scored) falls back.
        """
        lo, hi = self.gray_zone_bounds
        if lo <= confidence <= hi:
            return SELF_CONSISTENCY
        return SERVE if confidence >= self.confidence_threshold else FALLBACK

    def decide_many(self, confidences: Sequence[float]) -> list[str]:
        """:meth:`decide` for each confidence, in order."""
        return [self.decide(float(p)) for p in confidences]

    def resolve(self, decision: str, agreement: float | None, threshold: float) -> str:
        """Final route after self-consistency: serve at ``agreement >= threshold``, else fall back.

        ``decision`` other than ``"self_consistency"``, or no ``agreement``, is returned as is.
        """
        if decision != SELF_CONSISTENCY or agreement is None:
            return decision
        return SERVE if agreement >= threshold else FALLBACK


_ACTION = re.compile(r"^self_consistency(?:_k([1-9][0-9]{0,2}))?$")


def gray_zone_samples(action: str) -> int | None:
    """Samples ``K`` of a gray-zone action (``"self_consistency_k5"`` -> 5; plain -> None).

    Raises
    ------
    ValueError
        The action is not ``self_consistency`` or ``self_consistency_k<K>`` with K in 1..999.
    """
    match = _ACTION.match(action) if isinstance(action, str) else None
    if match is None:
        raise ValueError(f"gray_zone_action {action!r}: expected 'self_consistency_k<K>'")
    return int(match.group(1)) if match.group(1) else None
