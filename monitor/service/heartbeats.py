"""Collector heartbeats and broker reachability, as Prometheus gauges of the daemon.

:class:`HeartbeatWatcher` reads ``kafka.topics.heartbeats``
(:mod:`collectors.wire.heartbeat`) on its own thread and consumer (no group, no
offsets stored: heartbeats are telemetry, not data) and keeps the newest
heartbeat of each collector:

- ``vlm_monitor_collector_last_heartbeat_timestamp_seconds{collector, model}``:
  alert when ``time() -`` it exceeds a few intervals (collector gone, or cut off
  from the broker);
- ``vlm_monitor_collector_events{collector, model, outcome}``: ``sent``,
  ``dropped``, ``failed`` since the collector process started (a restart starts at 0:
  use ``increase()``, which treats the drop as a reset);
- ``vlm_monitor_collector_spilled_events``, ``..._spill_bytes``,
  ``..._pending_events``, ``..._connected``;
- ``vlm_monitor_broker_up``: 1 when the broker answered the watcher's last
  offsets request (every ``probe_every_s``), else 0;
- ``vlm_monitor_heartbeat_decode_errors_total``: messages on the topic that are
  not heartbeats (logged once each at WARNING, skipped).

A collector silent for ``forget_after_s`` (1 h) has its series removed. On start
the watcher reads back the last ``lookback`` messages of each partition, so a
restarted daemon knows its collectors at once.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from prometheus_client import Counter, Gauge

from collectors.transport.kafka_client import new_kafka_client
from collectors.wire.heartbeat import CollectorHeartbeat, HeartbeatDecodeError, decode_heartbeat

log = logging.getLogger(__name__)
_LABELS = ("collector", "model")


class HeartbeatWatcher:
    """Newest heartbeat per collector, and whether the broker answers.

    Parameters
    ----------
    kafka : monitor.config.settings.KafkaConfig
    registry : prometheus_client.CollectorRegistry
        Where the gauges are registered (the daemon's).
    forget_after_s : float
        Seconds of silence after which a collector's series are removed.
    probe_every_s : float
        Seconds between broker reachability checks.
    lookback : int
        Messages per partition read back at start.
    """

    def __init__(
        self,
        kafka: Any,
        registry: Any,
        forget_after_s: float = 3600.0,
        probe_every_s: float = 5.0,
        lookback: int = 1000,
    ) -> None:
        self.kafka = kafka
        self.topic = kafka.topics.heartbeats
        self.forget_after_s = float(forget_after_s)
        self.probe_every_s = float(probe_every_s)
        self.lookback = int(lookback)
        self.latest: dict[str, CollectorHeartbeat] = {}
        self.broker_up: bool | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        r = registry
        self.g_broker = Gauge("vlm_monitor_broker_up", "Broker answered the last check", registry=r)
        self.g_last = Gauge(
            "vlm_monitor_collector_last_heartbeat_timestamp_seconds",
            "When the collector's newest heartbeat was taken", _LABELS, registry=r,
        )  # fmt: skip
        self.g_events = Gauge(
            "vlm_monitor_collector_events",
            "Collector events by outcome since its process started",
            [*_LABELS, "outcome"], registry=r,
        )  # fmt: skip
        self.g_spilled = Gauge(
            "vlm_monitor_collector_spilled_events", "Events in the collector's spill file",
            _LABELS, registry=r,
        )  # fmt: skip
        self.g_spill_bytes = Gauge(
            "vlm_monitor_collector_spill_bytes", "Size of the collector's spill file",
            _LABELS, registry=r,
        )  # fmt: skip
        self.g_pending = Gauge(
            "vlm_monitor_collector_pending_events", "Events in the collector's memory queue",
            _LABELS, registry=r,
        )  # fmt: skip
        self.g_connected = Gauge(
            "vlm_monitor_collector_connected", "Collector's producer reached the broker",
            _LABELS, registry=r,
        )  # fmt: skip
        self.decode_errors = Counter(
            "vlm_monitor_heartbeat_decode_errors", "Messages on the heartbeats topic that are "
            "not heartbeats", registry=r,
        )  # fmt: skip

    # -- state ------------------------------------------------------------------
    def observe(self, beat: CollectorHeartbeat, now: float | None = None) -> None:
        """Keep ``beat`` if it is the collector's newest, and set its gauges."""
        now = time.time() if now is None else now
        if now - beat.ts > self.forget_after_s:
            return
        with self._lock:
            old = self.latest.get(beat.collector_id)
            if old is not None and old.ts > beat.ts:
                return
            if old is not None and old.model_id != beat.model_id:
                self._remove(old)
            self.latest[beat.collector_id] = beat
        labels = (beat.collector_id, beat.model_id)
        self.g_last.labels(*labels).set(beat.ts)
        for outcome in ("sent", "dropped", "failed"):
            self.g_events.labels(*labels, outcome).set(getattr(beat, outcome))
        self.g_spilled.labels(*labels).set(beat.spilled)
        self.g_spill_bytes.labels(*labels).set(beat.spill_bytes)
        self.g_pending.labels(*labels).set(beat.pending)
        self.g_connected.labels(*labels).set(1 if beat.connected else 0)

    def expire(self, now: float | None = None) -> list[str]:
        """Forget collectors silent for ``forget_after_s``; return their ids."""
        now = time.time() if now is None else now
        with self._lock:
            gone = [b for b in self.latest.values() if now - b.ts > self.forget_after_s]
            for beat in gone:
                del self.latest[beat.collector_id]
                self._remove(beat)
        return [b.collector_id for b in gone]

    def _remove(self, beat: CollectorHeartbeat) -> None:
        labels = (beat.collector_id, beat.model_id)
        for gauge in (self.g_last, self.g_spilled, self.g_spill_bytes, self.g_pending,
                      self.g_connected):  # fmt: skip
            try:
                gauge.remove(*labels)
            except KeyError:
                pass
        for outcome in ("sent", "dropped", "failed"):
            try:
                self.g_events.remove(*labels, outcome)
            except KeyError:
                pass

    def collectors(self) -> list[dict[str, Any]]:
        """The newest heartbeat of each collector (JSON-ready), oldest id first."""
        from dataclasses import asdict

        with self._lock:
            return [asdict(self.latest[k]) for k in sorted(self.latest)]

    def set_broker_up(self, up: bool) -> None:
        if up != self.broker_up:
            log.log(logging.INFO if up else logging.WARNING, "broker %s",
                    "reachable" if up else "unreachable")  # fmt: skip
        self.broker_up = up
        self.g_broker.set(1 if up else 0)

    # -- thread -------------------------------------------------------------------
    def start(self) -> HeartbeatWatcher:
        self._thread = threading.Thread(target=self._run, name="heartbeats", daemon=True)
        self._thread.start()
        return self

    def close(self, timeout_s: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None

    def _run(self) -> None:
        consumer, partitions, next_probe = None, [], 0.0
        while not self._stop.is_set():
            try:
                if consumer is None:
                    consumer = self._connect()
                if not partitions:
                    partitions = self._assign(consumer)
                if time.monotonic() >= next_probe:
                    next_probe = time.monotonic() + self.probe_every_s
                    self._probe(consumer, partitions)
                for records in consumer.poll(timeout_ms=500).values():
                    for record in records:
                        self._handle(record.value)
            except Exception as exc:  # noqa: BLE001 - broker down: say so, retry
                self.set_broker_up(False)
                log.debug("heartbeat watcher: %r", exc)
                if consumer is not None and not partitions:
                    self._close(consumer)
                    consumer = None
                self._stop.wait(self.probe_every_s)
        if consumer is not None:
            self._close(consumer)

    def _connect(self) -> Any:
        from kafka import KafkaConsumer

        from monitor.ingest.admin import ensure_topics

        kwargs = {**self.kafka.client_kwargs(), "bootstrap_timeout_ms": 5000}
        ensure_topics(kwargs, [self.topic])
        return new_kafka_client(
            KafkaConsumer, **kwargs, group_id=None, enable_auto_commit=False,
            request_timeout_ms=5000, fetch_max_wait_ms=200,
        )  # fmt: skip

    def _assign(self, consumer: Any) -> list[Any]:
        from kafka import TopicPartition

        ids = consumer.partitions_for_topic(self.topic) or ()
        partitions = [TopicPartition(self.topic, p) for p in sorted(ids)]
        if partitions:
            consumer.assign(partitions)
            for tp, end in consumer.end_offsets(partitions).items():
                consumer.seek(tp, max(0, int(end) - self.lookback))
        return partitions

    def _probe(self, consumer: Any, partitions: list[Any]) -> None:
        if partitions:  # (none yet: the topic was just created, the next round probes)
            consumer.end_offsets(partitions)  # raises when the broker does not answer
            self.set_broker_up(True)

    def _handle(self, raw: bytes) -> None:
        try:
            beat = decode_heartbeat(raw)
        except HeartbeatDecodeError as exc:
            self.decode_errors.inc()
            log.warning("not a heartbeat on %s, skipped: %s", self.topic, exc)
            return
        self.observe(beat)

    @staticmethod
    def _close(consumer: Any) -> None:
        try:
            consumer.close()
        except Exception:  # noqa: BLE001
            pass
