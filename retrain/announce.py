"""Announce a promoted probe version on the Kafka control topic.

The message value is UTF-8 JSON::

    {"type": "probe_promoted", "version": "v3", "previous": "v2",
     "registry": "/path/to/registry", "model_id": "...", "ts": 1700000000.0, ...}

keyed by the version. Collectors (:mod:`collectors.probe.reload`) read it to reload
at once instead of waiting for their next poll of the registry pointer; the
pointer stays the source of truth, so a lost announcement only delays a switch.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from collectors.probe.registry import PROMOTED
from collectors.transport.kafka_client import close_producer, new_kafka_client

log = logging.getLogger(__name__)
__all__ = ["PROMOTED", "announce_promotion"]


def announce_promotion(
    client_kwargs: dict[str, Any], topic: str, message: dict[str, Any], timeout_s: float = 10.0
) -> bool:
    """Send ``message`` to ``topic`` and wait for the acknowledgement.

    Parameters
    ----------
    client_kwargs : dict
        kafka-python settings, e.g. ``KafkaConfig.client_kwargs()``.
    topic : str
        The control topic.
    message : dict
        JSON-serialisable; must hold ``"version"``.
    timeout_s : float
        Seconds to wait for the broker, connection included.

    Returns
    -------
    bool
        Whether the broker acknowledged it. Failures are logged, never raised:
        the promotion is already durable in the registry.
    """
    from kafka import KafkaProducer

    try:
        producer = new_kafka_client(
            KafkaProducer,
            **client_kwargs,
            bootstrap_timeout_ms=int(timeout_s * 1000),
            max_block_ms=int(timeout_s * 1000),
        )
    except Exception as exc:  # noqa: BLE001 - no broker: collectors still poll the pointer
        log.warning("cannot announce probe %s on %s: %s", message.get("version"), topic, exc)
        return False
    try:
        value = json.dumps(message, sort_keys=True, default=str).encode()
        producer.send(topic, value=value, key=str(message["version"]).encode()).get(timeout_s)
        return True
    except Exception as exc:  # noqa: BLE001
        log.warning("announcing probe %s on %s failed: %s", message.get("version"), topic, exc)
        return False
    finally:
        close_producer(producer, timeout_s)
