"""The emitter's background thread: connect, send, spill while offline, replay.

:class:`ProducerLoop` is the half of :class:`collectors.transport.emitter.KafkaEmitter`
that never runs on the request path. It shares the emitter's state (queue,
counters, spill file, lock) and keeps its accounting invariant: each event is
in exactly one of memory (``pending``), the spill file, ``sent``, ``dropped``
or ``failed``.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from typing import Any

from collectors.transport.kafka_client import close_producer, new_kafka_client
from collectors.transport.spill import Record, SpillFile

log = logging.getLogger("collectors.transport.emitter")

STOP = object()
REPLAY_CHUNK = 256


class ProducerLoop:
    """Background-thread methods of the emitter (mixed into ``KafkaEmitter``)."""

    queue_size: int
    backoff_s: tuple[float, float]
    client_kwargs: dict[str, Any]
    last_error: str | None
    _queue: queue.Queue
    _lock: threading.Lock
    _idle: threading.Condition
    _stop: threading.Event
    _spill: SpillFile | None
    _producer: Any
    _pending: int
    _replaying: int
    _last_failure: float
    _heartbeats: Any

    def counters(self) -> dict[str, Any]:  # defined by the emitter
        raise NotImplementedError

    @property
    def spilled(self) -> int:
        """Events waiting in the spill file."""
        return 0 if self._spill is None else self._spill.unread

    # -- accounting -------------------------------------------------------------
    def _count(self, name: str, n: int = 1) -> None:
        with self._lock:
            setattr(self, name, getattr(self, name) + n)

    def _settle(self, name: str | None, n: int = 1) -> None:
        """Move ``n`` pending events to counter ``name`` (None: to the spill file)."""
        with self._idle:
            if name is not None:
                setattr(self, name, getattr(self, name) + n)
            self._pending -= n
            self._idle.notify_all()

    def _to_spill(self, item: Record) -> None:
        """A pending event leaves memory: into the spill file, or dropped when it is full."""
        if self._spill is not None and self._spill.append(*item):
            self._settle(None)
        else:
            self._settle("_dropped")

    def _drain_queue(self) -> None:
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is not STOP:
                self._to_spill(item)

    # -- background thread ------------------------------------------------------
    def _try_connect(self) -> bool:
        from kafka import KafkaProducer

        try:
            producer = new_kafka_client(KafkaProducer, **self.client_kwargs)
        except Exception as exc:  # noqa: BLE001 - keep trying, never give up silently
            self.last_error = f"cannot create producer: {exc!r}"
            log.warning("%s", self.last_error)
            return False
        if self._stop.is_set():  # closed while connecting: nothing will use it
            close_producer(producer, timeout_s=0.0)
            return False
        self._producer = producer
        self.last_error = None
        log.info("emitter connected to %s", self.client_kwargs.get("bootstrap_servers"))
        return True

    def _connect_in_background(self) -> bool | None:
        """Start or check a connection attempt on its own thread, so that the sender keeps
        moving the memory queue into the spill file while a broker is slow to answer
        (a refused or black-holed bootstrap takes seconds). None while it runs, else
        whether it connected."""
        attempt = self._attempt
        if attempt is None:
            result: list[bool] = []
            attempt = threading.Thread(
                target=lambda: result.append(self._try_connect()),
                name="vlm-monitor-emitter-connect",
                daemon=True,
            )
            attempt.result = result  # type: ignore[attr-defined]
            self._attempt = attempt
            attempt.start()
        if attempt.is_alive():
            return None
        self._attempt = None
        return bool(attempt.result and attempt.result[0])  # type: ignore[attr-defined]

    def _spill_overflow(self) -> None:
        """While offline, keep the memory queue at most half full by spilling its oldest events."""
        if self._spill is None:
            return
        while self._queue.qsize() > self.queue_size // 2:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return
            if item is STOP:
                self._queue.put_nowait(STOP)
                return
            self._to_spill(item)

    def _replay(self) -> None:
        """Move a chunk of spilled records back into memory and send them."""
        records = self._spill.read(REPLAY_CHUNK) if self._spill is not None else []
        with self._lock:
            self._pending += len(records)
            self._replaying += len(records)
        for record in records:
            self._send(record, replayed=True)

    def _send(self, item: Record, replayed: bool = False) -> None:
        topic, key, value = item
        try:
            if topic not in self._known:
                # Fetch (and auto-create) the topic's metadata before its first record:
                # Tansu 0.6 stalls a produce request mixing a topic it is creating with
                # others for a request timeout (30 s).
                self._producer.partitions_for(topic)
                self._known.add(topic)
            future = self._producer.send(topic, key=key, value=value)
        except Exception as exc:  # noqa: BLE001 - e.g. metadata timeout, record too large
            self._on_error(item, replayed, exc)
            return
        future.add_callback(self._on_ack, replayed)
        future.add_errback(self._on_error, item, replayed)

    def _on_ack(self, replayed: bool, _metadata: Any) -> None:
        self._done(replayed)
        self._settle("_sent")

    def _on_error(self, item: Record, replayed: bool, exc: BaseException) -> None:
        self.last_error = f"delivery failed: {exc!r}"
        self._last_failure = time.monotonic()
        self._done(replayed)
        if getattr(exc, "retriable", False) or self._stop.is_set():
            self._to_spill(item)  # a retry can fix it, or it was aborted at close
        else:
            self._settle("_failed")

    def _done(self, replayed: bool) -> None:
        if replayed:
            with self._lock:
                self._replaying -= 1

    def _run(self) -> None:
        self._known: set[str] = set()
        self._attempt: threading.Thread | None = None
        delay, next_try = self.backoff_s[0], 0.0
        try:
            while not self._stop.is_set():
                if self._producer is None:
                    if self._attempt is not None or time.monotonic() >= next_try:
                        if self._connect_in_background() is False:
                            next_try = time.monotonic() + delay
                            delay = min(2 * delay, self.backoff_s[1])
                    if self._producer is None:
                        self._spill_overflow()
                        self._stop.wait(min(0.05, max(0.0, next_try - time.monotonic())))
                        continue
                if self._heartbeats is not None and self._heartbeats.due():
                    self._heartbeats.send(self._producer, self.counters())
                cooled = time.monotonic() - self._last_failure > self.backoff_s[0]
                if self.spilled and self._pending < self.queue_size // 2 and cooled:
                    self._replay()
                    continue
                try:
                    item = self._queue.get(timeout=0.05)
                except queue.Empty:
                    if self._spill is not None and self._replaying == 0:
                        self._spill.compact()
                    continue
                if item is not STOP:
                    self._send(item)
        except Exception:  # noqa: BLE001
            log.exception("emitter thread stopped by an unexpected error")
        finally:
            if self._attempt is not None:  # it sees the stop and closes what it built
                self._attempt.join(timeout=1.0)
            if self._producer is not None:
                if self._heartbeats is not None:  # the final counts, flushed by the close
                    self._heartbeats.send(self._producer, self.counters())
                close_producer(self._producer, timeout_s=1.0)
