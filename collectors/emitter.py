"""Non-blocking Kafka emitter for the serving process.

The request path calls :meth:`KafkaEmitter.emit`, which serialises the event
and puts it on a bounded in-memory queue; it never blocks and never raises. A
background thread owns the ``KafkaProducer`` (created there, because its
constructor blocks or raises while no broker answers), retries creating it with
exponential backoff, and sends queued events keyed by ``event_id``. While the
broker is unreachable, events wait in the queue up to its bound; beyond that
they are dropped and counted.

Accounting: once :meth:`close` has returned within its timeout, every call to
:meth:`emit` is counted in exactly one of ``sent`` (acknowledged by the broker),
``dropped`` (queue full, emitter closed, or still queued when ``close`` timed
out) or ``failed`` (could not be serialised, or the producer reported a
delivery error).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from typing import Any

from collectors.events import LabelEvent, ScoredEvent, encode

log = logging.getLogger(__name__)

_STOP = object()
_PRODUCER_DEFAULTS: dict[str, Any] = {
    "linger_ms": 5,  # small batches: throughput without adding visible latency
    "bootstrap_timeout_ms": 2000,  # constructor wait per attempt; retried with backoff
    "max_block_ms": 5000,  # send() wait for metadata before counting a failure
}


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


class KafkaEmitter:
    """Background Kafka producer fed by a bounded queue.

    Parameters
    ----------
    topic : str
        Default topic for :meth:`emit`.
    queue_size : int
        Maximum number of serialised events waiting to be handed to the producer.
    backoff_s : tuple of float
        ``(initial, maximum)`` wait between producer creation attempts, seconds;
        doubles after each failure.
    **client_kwargs
        kafka-python ``KafkaProducer`` settings (``bootstrap_servers``, security,
        ...), e.g. ``KafkaConfig.client_kwargs()``. Override the defaults
        ``linger_ms=5``, ``bootstrap_timeout_ms=2000``, ``max_block_ms=5000``.

    Raises
    ------
    ValueError
        Empty topic or ``queue_size < 1`` (the only errors, raised at construction).

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
        **client_kwargs: Any,
    ) -> None:
        if not isinstance(topic, str) or not topic.strip():
            raise ValueError(f"topic must be a non-empty string, got {topic!r}")
        if int(queue_size) < 1:
            raise ValueError(f"queue_size must be >= 1, got {queue_size}")
        if not 0 < backoff_s[0] <= backoff_s[1]:
            raise ValueError(f"backoff_s must satisfy 0 < initial <= maximum, got {backoff_s}")
        self.topic = topic
        self.queue_size = int(queue_size)
        self.backoff_s = backoff_s
        self.client_kwargs = {**_PRODUCER_DEFAULTS, **client_kwargs}
        self._queue: queue.Queue = queue.Queue(maxsize=self.queue_size)
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._sent = self._dropped = self._failed = self._pending = 0
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
        """Events refused because the queue was full or the emitter closed."""
        return self._dropped

    @property
    def failed(self) -> int:
        """Events that could not be serialised or whose delivery the producer reported failed."""
        return self._failed

    @property
    def pending(self) -> int:
        """Events accepted by :meth:`emit` and not yet acknowledged, failed or dropped."""
        return self._pending

    @property
    def connected(self) -> bool:
        """Whether the background producer exists (the broker answered at least once)."""
        return self._producer is not None

    # -- request path -----------------------------------------------------------
    def emit(self, event: ScoredEvent | LabelEvent, topic: str | None = None) -> bool:
        """Queue one event for sending; never blocks, never raises.

        Parameters
        ----------
        event : ScoredEvent or LabelEvent
            The event; serialised now with :func:`collectors.events.encode`.
        topic : str, optional
            Overrides the emitter's default topic.

        Returns
        -------
        bool
            True if queued; False if it was dropped (queue full, emitter closed)
            or could not be serialised (counted in ``failed``).
        """
        try:
            item = (topic or self.topic, event.event_id.encode("utf-8"), encode(event))
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
                self._dropped += 1
                return False
            self._pending += 1
        return True

    # -- lifecycle --------------------------------------------------------------
    def flush(self, timeout_s: float = 10.0) -> bool:
        """Wait until every queued event is acknowledged or failed.

        Returns
        -------
        bool
            True if nothing is pending any more, False if ``timeout_s`` seconds
            passed first (for instance while the broker is down).
        """
        deadline = time.monotonic() + max(0.0, timeout_s)
        with self._idle:
            while self._pending > 0:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._idle.wait(min(left, 0.1))
        return True

    def close(self, timeout_s: float = 10.0) -> None:
        """Flush for up to ``timeout_s`` seconds, then stop the thread and the producer.

        Events still queued afterwards are counted as dropped. Idempotent; never raises.
        """
        try:
            start = time.monotonic()
            with self._lock:
                self._closed = True
            self.flush(timeout_s)
            self._stop.set()
            try:
                self._queue.put_nowait(_STOP)  # wake the thread if it waits on the queue
            except queue.Full:
                pass
            self._thread.join(max(0.1, timeout_s - (time.monotonic() - start)))
            self._drain_as_dropped()
        except Exception:  # noqa: BLE001
            log.exception("error while closing the emitter")

    def __enter__(self) -> KafkaEmitter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return (
            f"KafkaEmitter(topic={self.topic!r}, queue_size={self.queue_size}, "
            f"sent={self._sent}, dropped={self._dropped}, failed={self._failed})"
        )

    # -- background thread ------------------------------------------------------
    def _count(self, name: str, n: int = 1) -> None:
        with self._lock:
            setattr(self, name, getattr(self, name) + n)

    def _settle(self, name: str, n: int = 1) -> None:
        """Move ``n`` pending events to counter ``name`` and wake :meth:`flush`."""
        with self._idle:
            setattr(self, name, getattr(self, name) + n)
            self._pending -= n
            if self._pending <= 0:
                self._idle.notify_all()

    def _drain_as_dropped(self) -> None:
        n = 0
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            n += item is not _STOP
        if n:
            self._settle("_dropped", n)

    def _connect(self) -> bool:
        from kafka import KafkaProducer

        delay = self.backoff_s[0]
        while not self._stop.is_set():
            try:
                self._producer = new_kafka_client(KafkaProducer, **self.client_kwargs)
                self.last_error = None
                log.info("emitter connected to %s", self.client_kwargs.get("bootstrap_servers"))
                return True
            except Exception as exc:  # noqa: BLE001 - keep trying, never give up silently
                self.last_error = f"cannot create producer: {exc!r}"
                log.warning("%s; retrying in %.1f s", self.last_error, delay)
                self._stop.wait(delay)
                delay = min(2 * delay, self.backoff_s[1])
        return False

    def _on_ack(self, _metadata: Any) -> None:
        self._settle("_sent")

    def _on_error(self, exc: BaseException) -> None:
        self.last_error = f"delivery failed: {exc!r}"
        self._settle("_failed")

    def _run(self) -> None:
        try:
            if not self._connect():
                return
            known: set[str] = set()
            while True:
                try:
                    item = self._queue.get(timeout=0.1)
                except queue.Empty:
                    if self._stop.is_set():
                        break
                    continue
                if item is _STOP:
                    break
                topic, key, value = item
                try:
                    if topic not in known:
                        # Fetch (and auto-create) the topic's metadata before its first record:
                        # Tansu 0.6 stalls a produce request mixing a topic it is creating with
                        # others for a request timeout (30 s).
                        self._producer.partitions_for(topic)
                        known.add(topic)
                    future = self._producer.send(topic, key=key, value=value)
                except Exception as exc:  # noqa: BLE001 - e.g. metadata timeout, record too large
                    self._on_error(exc)
                    continue
                future.add_callback(self._on_ack)
                future.add_errback(self._on_error)
        except Exception:  # noqa: BLE001
            log.exception("emitter thread stopped by an unexpected error")
        finally:
            if self._producer is not None:
                try:
                    self._producer.flush(timeout=2.0)
                    self._producer.close(timeout=2.0)
                except Exception:  # noqa: BLE001
                    log.exception("error while closing the Kafka producer")
