"""Serving-side collectors: hidden-state probe scores for any HuggingFace VLM, never blocking it.

Public API::

    from collectors import ReliabilityCollector, LinearProbe, RoutingGate, KafkaEmitter

    with ReliabilityCollector(model, probe, gate=RoutingGate(), emitter=emitter) as col:
        model.generate(**inputs)
        scores = col.collect()          # one host sync per batch
        col.emit(scores, answers)       # never blocks on Kafka

See ``docs/collectors.md``. Names are imported lazily (PEP 562), so
``import collectors.wire.events`` on the monitoring host does not import torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "collectors.probe.calibration": ("IsotonicTable", "TemperatureScaling"),
    "collectors.generate.collector": ("ReliabilityCollector",),
    "collectors.configure": ("collector_from_config", "emitter_from_config"),
    "collectors.transport.emitter": ("KafkaEmitter",),
    "collectors.wire.events": ("EventDecodeError", "LabelEvent", "ScoredEvent", "decode", "encode"),
    "collectors.routing.gate": ("FALLBACK", "SELF_CONSISTENCY", "SERVE", "RoutingGate"),
    "collectors.model.layers": ("LayerResolutionError",),
    "collectors.probe.linear": ("LinearProbe", "ProbeFileError"),
    "collectors.probe.projection": ("Projection",),
    "collectors.model.registry": ("ArchitectureSpec", "register", "resolve_architecture"),
    "collectors.routing.score": ("Score",),
    "collectors.routing.self_consistency": (
        "SelfConsistency",
        "canonicalise_answer",
        "majority_share",
    ),
}
_WHERE = {name: module for module, names in _EXPORTS.items() for name in names}
__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'collectors' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return __all__
