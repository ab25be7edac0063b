"""Non-blocking Kafka emitter for the serving process.

The request path calls :meth:`KafkaEmitter.emit`, which serialises the event
and puts it on a bounded in-memory queue; it never blocks and never raises. A
background thread owns the ``KafkaProducer`` (created there, because its
constructor blocks or raises while no broker answers), retries creating it with
exponential backoff, and sends queued events keyed by ``event_id``.

While the broker is unreachable, events are buffered up to two bounds: the
memory queue (``queue_size`` events), then, when ``spill_path`` is set, a local
spill file (``spill_max_bytes``, :class:`collectors.transport.spill.SpillFile`) into which
the thread moves the oldest queued events once the queue is half full. Beyond
both bounds events are dropped and counted. When the broker answers, spilled
events are replayed first. Delivery failures that a retry can fix (and records
aborted at close) go back to the spill file instead of being lost.

Accounting: once :meth:`close` has returned, every accepted or recovered event
is counted in exactly one of ``sent`` (acknowledged), ``dropped`` (queue full,
spill full or absent, emitter closed), ``failed`` (not serialisable, or a
delivery error that a retry cannot fix) or ``spilled`` (on disk, replayed by
the next emitter opened on the same spill file)::

    emit() calls + recovered == sent + dropped + failed + spilled + pending

With ``heartbeat_topic`` set, the thread also sends these counters as a collector
heartbeat every ``heartbeat_interval_s`` seconds while connected
(:mod:`collectors.transport.heartbeats`), so the monitor sees spill and drops.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from pathlib import Path
from typing import Any

from collectors.transport.heartbeats import HeartbeatSchedule
from collectors.transport.kafka_client import new_kafka_client
from collectors.transport.producer_loop import STOP, ProducerLoop
from collectors.transport.spill import SpillFile
from collectors.wire.codec import WRITE_VERSIONS, encode
from collectors.wire.events import WIRE_VERSION, LabelEvent, ScoredEvent

log = logging.getLogger(__name__)
__all__ = ["KafkaEmitter", "new_kafka_client"]

_PRODUCER_DEFAULTS: dict[str, Any] = {
    "linger_ms": 5,  # small batches: throughput without adding visible latency
    "bootstrap_timeout_ms": 2000,  # constructor wait per attempt; retried with backoff
    "max_block_ms": 5000,  # send() wait for metadata before counting a failure
}


class KafkaEmitter(ProducerLoop):
    """Background Kafka producer fed by a bounded queue, with an optional spill file.

    Parameters
    ----------
    topic : str
        Default topic for :meth:`emit`.
    queue_size : int
        Maximum number of serialised events waiting in memory.
    backoff_s : tuple of float
        ``(initial, maximum)`` wait between producer creation attempts, seconds;
        doubles after each failure.
    spill_path : str or Path, optional
        Local spill file; ``None`` keeps events in memory only.
    spill_max_bytes : int
        Size bound of the spill file, bytes.
    heartbeat_topic : str, optional
        Where to send the collector heartbeat; None sends none.
    heartbeat_interval_s : float
        Seconds between heartbeats.
    collector_id : str, optional
        This collector in its heartbeats; default ``"<host>:<pid>"``.
    model_id : str
        The served model, in its heartbeats.
    wire_version : int
        4 (default): MessagePack events with raw fp16 states. 3: JSON, for a
        monitor of an earlier release (:func:`collectors.wire.codec.encode`).
    **client_kwargs
        kafka-python ``KafkaProducer`` settings (``bootstrap_servers``, security,
        ...), e.g. ``KafkaConfig.client_kwargs()``. Override the defaults
        ``linger_ms=5``, ``bootstrap_timeout_ms=2000``, ``max_block_ms=5000``.

    Raises
    ------
    ValueError
        Empty topic, ``queue_size < 1``, an unknown ``wire_version``, bad backoff,
        ``spill_max_bytes < 1``, or an empty heartbeat topic or
        ``heartbeat_interval_s <= 0`` (raised at construction, never later).
    OSError
        The spill file cannot be opened.

    Examples
    --------
    >>> servers = ["127.0.0.1:9092"]
    >>> emitter = KafkaEmitter("vlm-monitor.events", bootstrap_servers=servers)  # doctest: +SKIP
    >>> emitter.emit(event)  # doctest: +SKIP
    True
    >>> emitter.close(timeout_s=5.0)  # doctest: +SKIP
    """

    def __init__(
        self,
        topic: str,
        queue_size: int = 10_000,
        backoff_s: tuple[float, float] = (0.5, 10.0),
        spill_path: str | Path | None = None,
        spill_max_bytes: int = 256 * 2**20,
        heartbeat_topic: str | None = None,
        heartbeat_interval_s: float = 15.0,
        collector_id: str | None = None,
        model_id: str = "",
        wire_version: int = WIRE_VERSION,
        **client_kwargs: Any,
    ) -> None:
        if not isinstance(topic, str) or not topic.strip():
            raise ValueError(f"topic must be a non-empty string, got {topic!r}")
        if int(queue_size) < 1:
            raise ValueError(f"queue_size must be >= 1, got {queue_size}")
        if wire_version not in WRITE_VERSIONS:
            raise ValueError(f"wire_version must be one of {WRITE_VERSIONS}, got {wire_version!r}")
        if not 0 < backoff_s[0] <= backoff_s[1]:
            raise ValueError(f"backoff_s must satisfy 0 < initial <= maximum, got {backoff_s}")
        self.topic = topic
        self.wire_version = wire_version
        self.queue_size = int(queue_size)
        self.backoff_s = backoff_s
        self.client_kwargs = {**_PRODUCER_DEFAULTS, **client_kwargs}
        self._heartbeats = None
        if heartbeat_topic is not None:
            self._heartbeats = HeartbeatSchedule(
                heartbeat_topic, heartbeat_interval_s, collector_id, model_id
            )
        self._spill = None if spill_path is None else SpillFile(spill_path, spill_max_bytes)
        self.recovered = 0 if self._spill is None else self._spill.unread
        self._queue: queue.Queue = queue.Queue(maxsize=self.queue_size)
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._sent = self._dropped = self._failed = self._pending = 0
        self._replaying = 0
        self._last_failure = 0.0
        self._closed = False
        self._stop = threading.Event()
        self._producer: Any = None
        self.last_error: str | None = None
        self._thread = threading.Thread(target=self._run, name="vlm-monitor-emitter", daemon=True)
        self._thread.start()

    # -- counters ---------------------------------------------------------------
    @property
    def sent(self) -> int:
        """Events acknowledged by the broker."""
        return self._sent

    @property
    def dropped(self) -> int:
        """Events refused: queue full, spill file full or absent, or emitter closed."""
        return self._dropped

    @property
    def failed(self) -> int:
        """Events not serialisable, or whose delivery failed in a way a retry cannot fix."""
        return self._failed

    @property
    def pending(self) -> int:
        """Events in memory (queue or producer) not yet acknowledged, failed or dropped."""
        return self._pending

    @property
    def connected(self) -> bool:
        """Whether the background producer exists (the broker answered at least once)."""
        return self._producer is not None

    def counters(self) -> dict[str, Any]:
        """What a heartbeat carries: sent, dropped, failed, spilled, pending, recovered
        (events), spill_bytes (bytes) and connected."""
        return {
            "sent": self._sent, "dropped": self._dropped, "failed": self._failed,
            "spilled": self.spilled, "pending": max(0, self._pending),
            "recovered": self.recovered,
            "spill_bytes": 0 if self._spill is None else self._spill.size_bytes,
            "connected": self.connected,
        }  # fmt: skip

    # -- request path -----------------------------------------------------------
    def emit(self, event: ScoredEvent | LabelEvent, topic: str | None = None) -> bool:
        """Queue one event for sending; never blocks, never raises.

        Parameters
        ----------
        event : ScoredEvent or LabelEvent
            The event; serialised now with :func:`collectors.wire.codec.encode`.
        topic : str, optional
            Overrides the emitter's default topic.

        Returns
        -------
        bool
            True if queued (in memory, or in the spill file when the memory queue is
            full); False if it was dropped (both full, emitter closed) or could not
            be serialised (counted in ``failed``).
        """
        try:
            item = (
                topic or self.topic,
                event.event_id.encode("utf-8"),
                encode(event, self.wire_version),
            )
        except Exception as exc:  # noqa: BLE001 - nothing may raise into the model server
            self.last_error = f"cannot serialise event: {exc!r}"
            self._count("_failed")
            return False
        with self._lock:  # put_nowait never blocks; the lock orders emit against close
            if self._closed:
                self._dropped += 1
                return False
            try:
                self._queue.put_nowait(item)
            except queue.Full:
                # the sender is busy (e.g. reconnecting): straight to the spill file, a local
                # append of ~1 kB that never waits on the network, while it has room
                if self._spill is not None and self._spill.append(*item):
                    return True
                self._dropped += 1
                return False
            self._pending += 1
        return True

    # -- lifecycle --------------------------------------------------------------
    def flush(self, timeout_s: float = 10.0) -> bool:
        """Wait until every queued and spilled event is acknowledged or failed.

        Returns
        -------
        bool
            True if nothing is pending or spilled any more, False if ``timeout_s``
            seconds passed first (for instance while the broker is down).
        """
        deadline = time.monotonic() + max(0.0, timeout_s)
        with self._idle:
            while self._pending > 0 or self.spilled > 0:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._idle.wait(min(left, 0.05))
        return True

    def close(self, timeout_s: float = 10.0) -> None:
        """Flush for up to ``timeout_s`` seconds, then stop the thread and the producer.

        Events still in memory afterwards go to the spill file when there is one
        (and room), else they are counted as dropped. Idempotent; never raises.
        """
        try:
            start = time.monotonic()
            with self._lock:
                self._closed = True
            self.flush(timeout_s)
            self._stop.set()
            try:
                self._queue.put_nowait(STOP)  # wake the thread if it waits on the queue
            except queue.Full:
                pass
            # connected: let the thread close the producer, whose aborted records go to the spill
            grace = 3.0 if self.connected else 0.0
            self._thread.join(max(0.1, timeout_s - (time.monotonic() - start)) + grace)
            self._drain_queue()
            if self._spill is not None:
                if self._replaying == 0:
                    self._spill.compact()
                self._spill.close()
        except Exception:  # noqa: BLE001
            log.exception("error while closing the emitter")

    def __enter__(self) -> KafkaEmitter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return (
            f"KafkaEmitter(topic={self.topic!r}, queue_size={self.queue_size}, sent={self._sent}, "
            f"dropped={self._dropped}, failed={self._failed}, spilled={self.spilled})"
        )
