"""Building and closing kafka-python clients without leaking their I/O threads."""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger(__name__)


def new_kafka_client(cls: type, **kwargs: Any) -> Any:
    """Construct a kafka-python ``KafkaProducer``, ``KafkaConsumer`` or ``KafkaAdminClient``.

    When the constructor fails (no broker answered within ``bootstrap_timeout_ms``),
    kafka-python 3.0.12 leaves its network I/O thread running; a retry loop would
    then leak one thread per attempt. This closes that client before re-raising.

    Raises
    ------
    Exception
        Whatever the constructor raised (``kafka.errors.KafkaTimeoutError`` when no
        broker answers, ``ValueError`` or ``KafkaConfigurationError`` for bad settings).
    """
    base = kwargs.pop("kafka_client", None) or cls.DEFAULT_CONFIG["kafka_client"]
    made: list[Any] = []

    def factory(**kw: Any) -> Any:
        made.append(base(**kw))
        return made[-1]

    try:
        return cls(kafka_client=factory, **kwargs)
    except BaseException:
        for client in made:
            try:
                client.close()
            except Exception:  # noqa: BLE001 - best effort, the original error matters
                log.debug("error closing a half-built Kafka client", exc_info=True)
        raise


def close_producer(producer: Any, timeout_s: float) -> None:
    """Flush and close a ``KafkaProducer``; force it closed if records are still unsent.

    kafka-python 3.0.12's ``close(timeout)`` raises ``KafkaTimeoutError`` from its
    flush when records cannot be delivered (broker down) and then leaves its
    sender thread running. This forces the sender closed instead: the unsent
    records' futures fail (``IllegalStateError``), so their errbacks run and the
    caller can account for them. Never raises.
    """
    try:
        producer.close(timeout=timeout_s)
        return
    except Exception:  # noqa: BLE001 - KafkaTimeoutError: records still in flight
        log.debug("producer did not flush within %.1f s; forcing it closed", timeout_s)
    try:
        sender = getattr(producer, "_sender", None)
        if sender is not None:
            sender.force_close()
            sender.join(max(1.0, timeout_s))
        producer.close(timeout=0)
    except Exception:  # noqa: BLE001
        log.exception("error while force-closing the Kafka producer")
