"""When and how the emitter's thread sends the collector heartbeat
(:class:`collectors.wire.heartbeat.CollectorHeartbeat`).

A heartbeat goes out on the emitter's own producer every ``interval_s`` seconds
while it is connected, and once more as the emitter closes. It is fire-and-forget:
a failed send is logged at DEBUG and skipped, never spilled or retried, and it is
not counted among the emitter's events.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from typing import Any

from collectors.wire.heartbeat import CollectorHeartbeat, encode_heartbeat

log = logging.getLogger("collectors.transport.emitter")


def default_collector_id() -> str:
    """``"<host>:<pid>"``: unique per collector process on a host."""
    return f"{socket.gethostname()}:{os.getpid()}"


class HeartbeatSchedule:
    """Heartbeats to ``topic`` every ``interval_s`` seconds.

    Raises
    ------
    ValueError
        An empty topic or ``interval_s <= 0``.
    """

    def __init__(
        self, topic: str, interval_s: float, collector_id: str | None = None, model_id: str = ""
    ) -> None:
        if not isinstance(topic, str) or not topic.strip():
            raise ValueError(f"heartbeat topic must be a non-empty string, got {topic!r}")
        if not float(interval_s) > 0:
            raise ValueError(f"heartbeat_interval_s must be > 0, got {interval_s}")
        self.topic = topic
        self.interval_s = float(interval_s)
        self.collector_id = collector_id or default_collector_id()
        self.model_id = model_id
        self._next = 0.0  # the first one as soon as the producer connects
        self.n_sent = 0

    def due(self) -> bool:
        return time.monotonic() >= self._next

    def send(self, producer: Any, counters: dict[str, Any]) -> None:
        """Send one heartbeat carrying ``counters`` (never raises)."""
        self._next = time.monotonic() + self.interval_s
        beat = CollectorHeartbeat(
            collector_id=self.collector_id, ts=time.time(), model_id=self.model_id, **counters
        )
        try:
            producer.send(self.topic, key=self.collector_id.encode("utf-8"),
                          value=encode_heartbeat(beat))  # fmt: skip
            self.n_sent += 1
        except Exception as exc:  # noqa: BLE001 - telemetry: skip it, never disturb the events
            log.debug("heartbeat not sent: %r", exc)
