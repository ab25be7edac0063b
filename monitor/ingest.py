"""Kafka -> DuckDB ingest with exactly-once semantics and dead letters.

The :class:`Ingester` assigns itself every partition of the events and labels
topics by hand (no consumer group: Tansu's group join takes about 20 s) and
seeks to the offsets stored in DuckDB, else to the beginning. Each poll decodes
messages with :func:`collectors.events.decode`; a message that does not decode
becomes a :class:`~monitor.store.DeadLetter` (raw bytes, error, topic, partition,
offset) and ingest goes on. Messages are routed by their ``kind``, not by
topic. Rows and next offsets are written in one :meth:`Store.write_batch`
transaction, so a crash never loses or doubles a row.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, fields
from typing import Any

from collectors.emitter import new_kafka_client
from collectors.events import EventDecodeError, LabelEvent, ScoredEvent, decode
from monitor.broker import ensure_topics
from monitor.config import KafkaConfig
from monitor.store import DeadLetter, Store

log = logging.getLogger(__name__)


@dataclass
class IngestStats:
    """Counts for one poll or a whole run.

    Attributes
    ----------
    n_messages : int
        Kafka records consumed.
    n_events, n_labels, n_dead : int
        Rows newly stored in ``events``, ``labels`` and ``dead_letters``.
    n_duplicates : int
        Decoded events and labels ignored because their ``event_id`` was already stored.
    seconds : float
        Wall-clock time spent, seconds.
    """

    n_messages: int = 0
    n_events: int = 0
    n_labels: int = 0
    n_dead: int = 0
    n_duplicates: int = 0
    seconds: float = 0.0

    def __add__(self, other: IngestStats) -> IngestStats:
        return IngestStats(*(getattr(self, f.name) + getattr(other, f.name) for f in fields(self)))


class Ingester:
    """Consume the events and labels topics into a :class:`Store`.

    Parameters
    ----------
    kafka : KafkaConfig
        Broker address, security settings and topic names.
    store : Store
        Destination; also holds the consumer offsets.
    batch_size : int
        Maximum records per poll, hence per transaction.
    create_topics : bool
        Create the events and labels topics if they are missing (one partition).
    refresh_s : float
        How often to look for partitions added to the topics, seconds.
    connect_timeout_s : float
        How long one attempt to reach the broker may block, seconds.

    Raises
    ------
    ValueError
        ``batch_size < 1``.

    Notes
    -----
    The Kafka consumer is created on first use, so constructing an ingester
    never blocks; :meth:`poll_once` raises ``kafka.errors.KafkaError`` while the
    broker is unreachable, and :meth:`run` retries with backoff.
    """

    def __init__(
        self,
        kafka: KafkaConfig,
        store: Store,
        batch_size: int = 1000,
        create_topics: bool = True,
        refresh_s: float = 30.0,
        connect_timeout_s: float = 5.0,
    ) -> None:
        if int(batch_size) < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.kafka = kafka
        self.store = store
        self.batch_size = int(batch_size)
        self.create_topics = create_topics
        self.refresh_s = refresh_s
        self.connect_timeout_s = connect_timeout_s
        self.topics = [kafka.topics.events, kafka.topics.labels]
        self.totals = IngestStats()
        self._consumer: Any = None
        self._refreshed_at = float("-inf")

    # -- assignment -------------------------------------------------------------
    def _ensure_consumer(self) -> Any:
        if self._consumer is None:
            from kafka import KafkaConsumer

            kwargs = self.kafka.client_kwargs()
            kwargs["bootstrap_timeout_ms"] = int(self.connect_timeout_s * 1000)
            if self.create_topics:
                ensure_topics(kwargs, self.topics)
            self._consumer = new_kafka_client(
                KafkaConsumer,
                **kwargs,
                group_id=None,
                enable_auto_commit=False,
                auto_offset_reset="earliest",
                max_poll_records=self.batch_size,
            )
        if time.monotonic() - self._refreshed_at > self.refresh_s:
            self._assign()
        return self._consumer

    def _assign(self) -> None:
        """Assign every partition of the topics; seek new ones to their stored offset."""
        from kafka import TopicPartition

        consumer = self._consumer
        stored = self.store.stored_offsets()
        current = set(consumer.assignment())
        wanted = set(current)
        for topic in self.topics:
            partitions = consumer.partitions_for_topic(topic) or set()
            wanted |= {TopicPartition(topic, p) for p in partitions}
        new = wanted - current
        if new:
            consumer.assign(sorted(wanted))
            try:
                ends = consumer.end_offsets(sorted(new))
            except Exception:  # noqa: BLE001 - only used for a warning below
                ends = {}
            for tp in sorted(new):
                offset = stored.get((tp.topic, tp.partition))
                if offset is None:
                    consumer.seek_to_beginning(tp)
                    continue
                consumer.seek(tp, offset)
                if offset > ends.get(tp, offset):
                    # Tansu under-reports its end offset by up to one batch, so only warn.
                    log.warning(
                        "stored offset %d of %s:%d is past the broker's end offset %d; "
                        "if the broker was reset, run Store.clear_offsets()",
                        offset,
                        tp.topic,
                        tp.partition,
                        ends[tp],
                    )
            log.info(
                "ingest assigned %d partition(s): %s",
                len(wanted),
                ", ".join(f"{tp.topic}:{tp.partition}" for tp in sorted(wanted)),
            )
        self._refreshed_at = time.monotonic()

    # -- polling ----------------------------------------------------------------
    def poll_once(self, timeout_s: float = 1.0) -> IngestStats:
        """Consume at most ``batch_size`` records and store them in one transaction.

        Returns
        -------
        IngestStats
            What this poll consumed and stored (also added to :attr:`totals`).

        Raises
        ------
        kafka.errors.KafkaError
            The broker is unreachable. Nothing is stored and the position is
            unchanged.
        duckdb.Error
            The write failed; the consumer is rewound so nothing is skipped.
        """
        t0 = time.perf_counter()
        consumer = self._ensure_consumer()
        polled = consumer.poll(timeout_ms=int(timeout_s * 1000), max_records=self.batch_size)
        events: list[ScoredEvent] = []
        labels: list[LabelEvent] = []
        dead: list[DeadLetter] = []
        offsets: dict[tuple[str, int], int] = {}
        first: dict[Any, int] = {}
        n = 0
        for tp, records in polled.items():
            if not records:
                continue
            first[tp] = records[0].offset
            offsets[(tp.topic, tp.partition)] = records[-1].offset + 1
            for rec in records:
                n += 1
                try:
                    if rec.value is None:
                        raise EventDecodeError("empty message (null value)")
                    obj = decode(rec.value)
                except EventDecodeError as exc:
                    dead.append(
                        DeadLetter(
                            raw=rec.value or b"",
                            error=str(exc),
                            topic=tp.topic,
                            partition=tp.partition,
                            offset=rec.offset,
                            ts=time.time(),
                        )
                    )
                    continue
                (events if isinstance(obj, ScoredEvent) else labels).append(obj)
        if n == 0:
            return IngestStats(seconds=time.perf_counter() - t0)
        try:
            inserted = self.store.write_batch(events, labels, dead, offsets)
        except BaseException:
            for tp, offset in first.items():  # consumed but not stored: read them again
                consumer.seek(tp, offset)
            raise
        stats = IngestStats(
            n_messages=n,
            n_events=inserted["events"],
            n_labels=inserted["labels"],
            n_dead=inserted["dead_letters"],
            n_duplicates=len(events) + len(labels) - inserted["events"] - inserted["labels"],
            seconds=time.perf_counter() - t0,
        )
        if dead:
            log.warning(
                "%d message(s) sent to dead_letters, first: %s:%d@%d: %s",
                len(dead),
                dead[0].topic,
                dead[0].partition,
                dead[0].offset,
                dead[0].error,
            )
        self.totals = self.totals + stats
        return stats

    def run_until_idle(self, idle_s: float = 1.0, max_s: float = 60.0) -> IngestStats:
        """Poll until nothing arrives for ``idle_s`` seconds or ``max_s`` seconds pass.

        Returns
        -------
        IngestStats
            Totals of this call.
        """
        start = last = time.monotonic()
        total = IngestStats()
        while True:
            now = time.monotonic()
            if now - last >= idle_s or now - start >= max_s:
                break
            stats = self.poll_once(timeout_s=min(0.5, idle_s, max(0.01, max_s - (now - start))))
            total = total + stats
            if stats.n_messages:
                last = time.monotonic()
        total.seconds = time.monotonic() - start
        return total

    def run(
        self,
        stop_event: threading.Event,
        poll_timeout_s: float = 1.0,
        backoff_s: tuple[float, float] = (1.0, 30.0),
    ) -> IngestStats:
        """Poll until ``stop_event`` is set; broker errors are logged and retried.

        Returns
        -------
        IngestStats
            Totals of this call.
        """
        from kafka.errors import KafkaError

        start = time.monotonic()
        total = IngestStats()
        delay = backoff_s[0]
        while not stop_event.is_set():
            try:
                total = total + self.poll_once(timeout_s=poll_timeout_s)
                delay = backoff_s[0]
            except (KafkaError, OSError) as exc:
                log.warning("ingest: broker error %r; retrying in %.1f s", exc, delay)
                self._reset_consumer()
                stop_event.wait(delay)
                delay = min(2 * delay, backoff_s[1])
        total.seconds = time.monotonic() - start
        return total

    def _reset_consumer(self) -> None:
        if self._consumer is not None:
            try:
                self._consumer.close()
            except Exception:  # noqa: BLE001 - already broken
                log.debug("error closing a failed consumer", exc_info=True)
        self._consumer = None
        self._refreshed_at = float("-inf")

    def close(self) -> None:
        """Close the Kafka consumer. Offsets live in the store, so nothing is committed."""
        self._reset_consumer()

    def __enter__(self) -> Ingester:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
