"""Which pooled hidden states a collector keeps for the monitor, and in what projection."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from collectors.probe.projection import Projection


@dataclass
class CaptureRequest:
    """Which pooled states to keep: a sampling ``rate`` in [0, 1], an optional projection."""

    rate: float
    projection: Projection | None
    rng: np.random.Generator

    def rows(self, batch: int) -> list[int]:
        """Row indices sampled for capture (host RNG, no device work)."""
        if self.rate <= 0.0:
            return []
        if self.rate >= 1.0:
            return list(range(batch))
        return [i for i, u in enumerate(self.rng.random(batch)) if u < self.rate]
