"""Stacked probe: one probe over the concatenated pooled states of several decoder layers.

The paper's "stacked probe" (Table 6) reads the last N decoder layers at once;
the feature vector is ``concat(h_l1, h_l2, ...)`` in the order of ``layers``,
exactly what a serving :class:`collectors.probe.linear.LinearProbe` with
``layers=(l1, l2, ...)`` computes in the hook.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from collectors.probe.linear import LinearProbe
from retrain.probes.estimators import L2LogisticProbe, Probe


def last_layers(n_layers: int, n: int) -> tuple[int, ...]:
    """The last ``n`` decoder-layer indices of a model with ``n_layers`` layers.

    Raises
    ------
    ValueError
        ``n`` not in ``[1, n_layers]``.
    """
    if not 1 <= n <= n_layers:
        raise ValueError(f"cannot stack the last {n} of {n_layers} decoder layers")
    return tuple(range(n_layers - n, n_layers))


class StackedProbe(Probe):
    """Wrap a probe so it reads the concatenation of several layers' states.

    Parameters
    ----------
    layers : sequence of int
        Decoder layers, in concatenation order.
    base : Probe, optional
        The probe fitted on the concatenation; default :class:`L2LogisticProbe`.
    """

    def __init__(self, layers: Sequence[int], base: Probe | None = None) -> None:
        self.layers = tuple(int(i) for i in layers)
        if not self.layers:
            raise ValueError("a stacked probe needs at least one layer")
        self.base = base if base is not None else L2LogisticProbe()
        self.kind = f"stacked_{self.base.kind}"

    def stack(self, states: np.ndarray | Mapping[int, np.ndarray]) -> np.ndarray:
        """``{layer: (n, width)}`` or an already concatenated ``(n, len(layers) * width)``.

        Raises
        ------
        ValueError
            A layer missing from the mapping.
        """
        if isinstance(states, Mapping):
            missing = [i for i in self.layers if i not in states]
            if missing:
                raise ValueError(f"no states for decoder layers {missing}")
            return np.concatenate([np.asarray(states[i], np.float32) for i in self.layers], 1)
        return np.asarray(states, dtype=np.float32)

    def fit(
        self, states: np.ndarray | Mapping[int, np.ndarray], correct: np.ndarray
    ) -> StackedProbe:
        """Fit the base probe on the stacked states; return self."""
        self.base.fit(self.stack(states), correct)
        self.coef_, self.intercept_ = self.base.coef_, self.base.intercept_
        self.input_norm_ = self.base.input_norm_
        return self

    def decision_function(self, states: np.ndarray | Mapping[int, np.ndarray]) -> np.ndarray:
        return self.base.decision_function(self.stack(states))

    def to_linear_probe(self, **kwargs) -> LinearProbe:
        """As :meth:`Probe.to_linear_probe`, with ``layers`` set to this probe's layers."""
        kwargs.setdefault("layer", self.layers[0])
        kwargs["layers"] = self.layers
        probe = self.base.to_linear_probe(**kwargs)
        probe.metadata["probe_kind"] = self.kind
        return probe
