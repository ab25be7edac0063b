"""Build the serving-side pieces from ``config.yaml`` (``monitor.config.settings.Config``).

The collector package does not import ``monitor``: these functions read the
config sections by attribute, so any object with the same fields works.

Examples
--------
>>> cfg = load_config("config.yaml")  # doctest: +SKIP
>>> emitter = emitter_from_config(cfg)  # doctest: +SKIP
>>> with collector_from_config(model, probe, cfg, emitter=emitter) as col:  # doctest: +SKIP
...     model.generate(**inputs)
...     scores = col.collect()
"""

from __future__ import annotations

from typing import Any

from torch import nn

from collectors.generate.collector import ReliabilityCollector
from collectors.probe.linear import LinearProbe
from collectors.probe.projection import Projection
from collectors.routing.gate import RoutingGate
from collectors.routing.self_consistency import SelfConsistency
from collectors.transport.emitter import KafkaEmitter


def emitter_from_config(config: Any, **overrides: Any) -> KafkaEmitter:
    """A :class:`KafkaEmitter` for the events topic from ``reliability_monitor.kafka``,
    sending collector heartbeats to ``kafka.topics.heartbeats`` (with ``model.id``).

    Raises
    ------
    ValueError, OSError
        As :class:`KafkaEmitter` (bad settings, unusable spill file).
    """
    kafka = config.reliability_monitor.kafka
    kwargs: dict[str, Any] = {
        "queue_size": kafka.producer_queue_size,
        "spill_path": kafka.spill_path,
        "spill_max_bytes": kafka.spill_max_bytes,
        "heartbeat_topic": kafka.topics.heartbeats,
        "heartbeat_interval_s": kafka.heartbeat_interval_s,
        "model_id": config.reliability_monitor.model.id,
        "wire_version": kafka.wire_version,
        **kafka.client_kwargs(),
    }
    kwargs.update(overrides)
    return KafkaEmitter(kafka.topics.events, **kwargs)


def collector_from_config(
    model: nn.Module, probe: LinearProbe, config: Any, *, emitter: Any = None, **overrides: Any
) -> ReliabilityCollector:
    """A :class:`ReliabilityCollector` configured from ``reliability_monitor``.

    Reads ``routing`` (threshold, gray-zone bounds, ``gray_zone_action`` such as
    ``"self_consistency_k5"``), ``logging.capture_states`` (bool or rate),
    ``logging.projection_dims`` / ``projection_seed`` (a seeded random basis,
    attached to ``probe`` when it carries none, so saving the probe stores it),
    ``family`` and ``model.id``. The layer is the probe's (``target_layer`` is
    the layer probes are fitted on). Keyword ``overrides`` go to the constructor.

    Raises
    ------
    ValueError
        An invalid ``gray_zone_action``, or as :class:`ReliabilityCollector`.
    """
    rm = config.reliability_monitor
    action = rm.routing.gray_zone_action
    sc = SelfConsistency.from_action(action) if action.startswith("self_consistency") else None
    dims = rm.logging.projection_dims
    if dims is not None and probe.projection is None:
        seed = rm.logging.projection_seed
        probe.projection = Projection.random(probe.hidden_dim, dims, seed=seed)
    kwargs: dict[str, Any] = {
        "gate": RoutingGate.from_config(rm.routing),
        "emitter": emitter,
        "model_id": rm.model.id,
        "capture_states": rm.logging.capture_states,
        "family": rm.family,
        "self_consistency": sc,
    }
    kwargs.update(overrides)
    return ReliabilityCollector(model, probe, **kwargs)
