"""Kafka -> DuckDB ingest with exactly-once semantics and dead letters.

The :class:`Ingester` assigns itself every partition of the events and labels
topics by hand (no consumer group: Tansu's group join takes about 20 s), however
many partitions the collectors spread over, or its static share of them
(``kafka.assignment``: several ingesters, each with its own store), and seeks to
the offsets stored in DuckDB, else to the beginning. The polls of up to ``linger_s``
seconds are decoded as one batch (:func:`monitor.ingest.decode.decode_batch`); a
message that does not decode becomes a :class:`~monitor.store.schema.DeadLetter`
(raw bytes, error, topic, partition, offset) and ingest goes on. Messages are
routed by their ``kind``, not by topic. Rows and next offsets are written in one
:meth:`Store.write_arrow` transaction, so a crash never loses or doubles a row.

A topic that was deleted and created again (or a memory-only broker that
restarted) gets a new topic id; its stored offsets then no longer apply, so the
ingester reads the new topic from the beginning (stored event ids are not
written twice).
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from collectors.transport.emitter import new_kafka_client
from monitor.config.settings import KafkaConfig
from monitor.ingest import assignment
from monitor.ingest.admin import ensure_topics
from monitor.ingest.clock import EventClock
from monitor.ingest.pipeline import (  # noqa: F401 - IngestStats is part of this module's API
    IngestStats,
    PreparedBatch,
    WriteAhead,
    WriteFailed,
    prepare,
    rewind,
    stats_of,
    write,
)
from monitor.ingest.widths import StateWidths, store_lookup
from monitor.store.database import Store

log = logging.getLogger(__name__)


DEFAULT_CLOCK = EventClock()  # frozen: shared safely
DEFAULT_BATCH_SIZE = 122_880
"""Records per transaction at most: one DuckDB row group, which DuckDB writes straight to the
file instead of through its write-ahead log (``bench/ingest.py``)."""
MAX_BATCH_BYTES = 64 << 20
"""Message bytes per transaction at most (about 50,000 events with 512-d states)."""


class Ingester:
    """Consume the events and labels topics into a :class:`Store`.

    Parameters
    ----------
    kafka : KafkaConfig
        Broker address, security settings and topic names.
    store : Store
        Destination; also holds the consumer offsets.
    batch_size : int
        Most records per transaction (default: one DuckDB row group).
    linger_s : float
        How long to keep polling for more records once some arrived, seconds:
        fewer, larger transactions (each costs a commit), at most this much later.
    create_topics : bool
        Create the events and labels topics if they are missing (one partition).
    refresh_s : float
        How often to look for partitions added to the topics, seconds.
    connect_timeout_s : float
        How long one attempt to reach the broker may block, seconds.
    pipelined : bool
        In :meth:`run` and :meth:`run_until_idle`, decode the next batch while the
        previous one is written (:mod:`monitor.ingest.pipeline`); :meth:`poll_once` never does.
    clock : EventClock or None
        Bounds on each event's ``ts`` against its record's timestamp and this
        process's clock (:mod:`monitor.ingest.clock`); events outside them are dead
        letters. None: only the wire format's [2000, 2100] range applies.

    Raises
    ------
    ValueError
        ``batch_size < 1`` or ``linger_s < 0``.

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
        batch_size: int = DEFAULT_BATCH_SIZE,
        linger_s: float = 0.5,
        create_topics: bool = True,
        refresh_s: float = 30.0,
        connect_timeout_s: float = 5.0,
        pipelined: bool = True,
        clock: EventClock | None = DEFAULT_CLOCK,
    ) -> None:
        if int(batch_size) < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if not linger_s >= 0:
            raise ValueError(f"linger_s must be >= 0 seconds, got {linger_s}")
        self.kafka = kafka
        self.store = store
        self.batch_size = int(batch_size)
        self.linger_s = float(linger_s)
        self._widths = StateWidths(store_lookup(store))
        self.clock = clock
        self.create_topics = create_topics
        self.refresh_s = refresh_s
        self.connect_timeout_s = connect_timeout_s
        self.topics = [kafka.topics.events, kafka.topics.labels]
        self.totals = IngestStats()
        self._consumer: Any = None
        self._refreshed_at = float("-inf")
        self._topic_ids: dict[str, str | None] = {}
        self.pipelined = pipelined
        self._writer = WriteAhead(lambda batch: write(self.store, batch))

    # -- assignment -------------------------------------------------------------
    def _ensure_consumer(self) -> Any:
        if self._consumer is None:
            from kafka import KafkaConsumer

            kwargs = self.kafka.client_kwargs()
            kwargs["bootstrap_timeout_ms"] = int(self.connect_timeout_s * 1000)
            if self.create_topics:
                # a shared assignment needs at least one partition per ingester
                ensure_topics(kwargs, self.topics, partitions=self.kafka.assignment.members)
            self._consumer = new_kafka_client(
                KafkaConsumer,
                **kwargs,
                group_id=None,
                enable_auto_commit=False,
                auto_offset_reset="earliest",
                max_poll_records=self.batch_size,
                fetch_max_wait_ms=100,  # the default 500 ms idles between small fetches
                max_partition_fetch_bytes=8 << 20,
                fetch_max_bytes=64 << 20,
            )
        if time.monotonic() - self._refreshed_at > self.refresh_s:
            self._assign()
        return self._consumer

    def _assign(self) -> None:
        share = (self.kafka.assignment.member, self.kafka.assignment.members)
        assignment.assign(self._consumer, self.topics, self.store, self._topic_ids, share)
        self._refreshed_at = time.monotonic()

    def _restart_topics(self, topics: set[str], firsts: dict[tuple[str, int], int]) -> None:
        """Read recreated topics from their beginning; put the other polled records back."""
        from kafka import TopicPartition

        consumer = self._consumer
        for (topic, partition), offset in firsts.items():
            consumer.seek(TopicPartition(topic, partition), offset)
        self._drain()  # the write in flight holds offsets of the old topic
        for topic in sorted(topics):
            log.warning("topic %s was recreated on the broker: reading it from the start", topic)
            self.store.clear_offsets(topic)
            tps = [tp for tp in consumer.assignment() if tp.topic == topic]
            if tps:
                consumer.seek_to_beginning(*tps)
        self._refreshed_at = float("-inf")  # pick up the new topic's partitions

    # -- polling ----------------------------------------------------------------
    def _prepare(self, timeout_s: float) -> PreparedBatch | None:
        """Poll until a transaction's worth of records is in hand, and decode them (no write).

        The first poll waits up to ``timeout_s``; later ones take what arrives within
        ``linger_s`` of the first, until ``batch_size`` records or :data:`MAX_BATCH_BYTES`.
        """
        t0 = time.perf_counter()
        consumer = self._ensure_consumer()
        polled: dict = {}
        n = size = 0
        wait_s = timeout_s
        while True:
            more = consumer.poll(timeout_ms=int(wait_s * 1000), max_records=self.batch_size - n)
            recreated = assignment.recreated_topics(consumer, self.topics, self._topic_ids)
            for tp, records in more.items():
                polled.setdefault(tp, []).extend(records)
            if recreated:  # records fetched at stale positions of a new topic: drop them
                firsts = {(tp.topic, tp.partition): r[0].offset for tp, r in polled.items() if r}
                self._restart_topics(recreated, {k: v for k, v in firsts.items() if k[0] not in
                                                 recreated})  # fmt: skip
                return None
            n += sum(map(len, more.values()))
            size += sum(len(r.value or b"") for rs in more.values() for r in rs)
            wait_s = self.linger_s - (time.perf_counter() - t0)
            if not more or n >= self.batch_size or size >= MAX_BATCH_BYTES or wait_s <= 0:
                break
        return prepare(polled, self._topic_ids, t0, self._widths, self.clock)

    def _collect(self, batch: PreparedBatch | None) -> IngestStats:
        """Stats of a written batch, added to :attr:`totals`."""
        stats = stats_of(batch)
        self.totals = self.totals + stats
        return stats

    def _rewind(self, failed: WriteFailed) -> None:
        if self._consumer is not None:
            rewind(self._consumer, failed)

    def _drain(self) -> IngestStats:
        """Wait for the write in flight; on failure rewind and raise the write's error."""
        try:
            return self._collect(self._writer.drain())
        except WriteFailed as exc:
            self._rewind(exc)
            raise exc.cause from exc

    def _step(self, timeout_s: float, pipelined: bool) -> IngestStats:
        """Poll and decode one batch; write it now, or hand it to the write-ahead thread.

        Returns the stats of the batches whose writes finished during this step.
        """
        done = IngestStats() if pipelined else self._drain()
        batch = self._prepare(timeout_s)
        if batch is None:
            return done + self._drain()
        try:
            if pipelined:
                return self._collect(self._writer.submit(batch))
            try:
                return done + self._collect(write(self.store, batch))
            except BaseException as exc:
                raise WriteFailed(exc, [batch]) from exc
        except WriteFailed as exc:
            self._rewind(exc)
            raise exc.cause from exc

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
        stats = self._step(timeout_s, pipelined=False)
        stats.seconds = time.perf_counter() - t0
        return stats

    def lag(self) -> dict[tuple[str, int], int]:
        """Messages behind per assigned (topic, partition), from the last fetch's high watermark."""
        return {} if self._consumer is None else assignment.lag(self._consumer)

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
            timeout = min(0.5, idle_s, max(0.01, max_s - (now - start)))
            stats = self._step(timeout, pipelined=self.pipelined)
            total = total + stats
            if stats.n_messages or self._writer.busy:
                last = time.monotonic()
        total = total + self._drain()
        total.seconds = time.monotonic() - start
        return total

    def run(
        self,
        stop_event: threading.Event,
        poll_timeout_s: float = 1.0,
        backoff_s: tuple[float, float] = (1.0, 30.0),
        on_poll: Any = None,
    ) -> IngestStats:
        """Poll until ``stop_event`` is set; broker errors are logged and retried.

        The event is checked between transactions, so a stop never interrupts one.

        Parameters
        ----------
        stop_event : threading.Event
            Set it to stop after the current transaction.
        poll_timeout_s : float
            Longest wait for records per poll, seconds.
        backoff_s : (float, float)
            First and largest wait after a broker error, seconds (doubling).
        on_poll : callable, optional
            Called with each poll's :class:`IngestStats` (for progress displays), and
            with empty stats after each broker error, so callers' limits still run.

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
                stats = self._step(poll_timeout_s, pipelined=self.pipelined)
                total = total + stats
                delay = backoff_s[0]
                if on_poll is not None:
                    on_poll(stats)
            except (KafkaError, OSError) as exc:
                log.warning("ingest: broker error %r; retrying in %.1f s", exc, delay)
                total = total + self._drain()
                self._reset_consumer()
                stop_event.wait(delay)
                delay = min(2 * delay, backoff_s[1])
                if on_poll is not None:  # time limits and idle exits still apply offline
                    on_poll(IngestStats())
        last = self._drain()  # the transaction in flight finishes before run returns
        if on_poll is not None and last.n_messages:
            on_poll(last)
        total = total + last
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
        """Finish the write in flight and close the Kafka consumer (offsets live in the store)."""
        try:
            self._writer.close()
        finally:
            self._reset_consumer()

    def __enter__(self) -> Ingester:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
