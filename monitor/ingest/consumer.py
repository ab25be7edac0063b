"""Kafka -> DuckDB ingest with exactly-once semantics and dead letters.

The :class:`Ingester`'s :class:`~monitor.ingest.polling.Poller` assigns itself
every partition of the events and labels topics by hand (no consumer group:
Tansu's group join takes about 20 s), however many partitions the collectors
spread over, or its static share of them (``kafka.assignment``: several
ingesters, each with its own store), and seeks to the offsets stored in DuckDB,
else to the beginning. The polls of up to ``linger_s`` seconds are decoded as
one batch (:func:`monitor.ingest.decode.decode_batch`); a
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

from monitor.config.settings import KafkaConfig
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
from monitor.ingest.polling import DEFAULT_BATCH_SIZE, Poller
from monitor.ingest.widths import StateWidths, store_lookup
from monitor.store.database import Store

log = logging.getLogger(__name__)

DEFAULT_CLOCK = EventClock()  # frozen: shared safely


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
        self.kafka = kafka
        self.store = store
        self.poller = Poller(
            kafka, store, batch_size, linger_s, create_topics, refresh_s, connect_timeout_s
        )
        self._widths = StateWidths(store_lookup(store))
        self.clock = clock
        self.totals = IngestStats()
        self.pipelined = pipelined
        self._writer = WriteAhead(lambda batch: write(self.store, batch))

    @property
    def batch_size(self) -> int:
        """Most records per transaction."""
        return self.poller.batch_size

    # -- polling ----------------------------------------------------------------
    def _prepare(self, timeout_s: float) -> PreparedBatch | None:
        """Poll a transaction's worth of records (:meth:`Poller.poll`) and decode them."""
        t0 = time.perf_counter()
        polled = self.poller.poll(timeout_s, before_restart=self._drain)
        if polled is None:
            return None
        return prepare(polled, self.poller.topic_ids, t0, self._widths, self.clock)

    def _collect(self, batch: PreparedBatch | None) -> IngestStats:
        """Stats of a written batch, added to :attr:`totals`."""
        stats = stats_of(batch)
        self.totals = self.totals + stats
        return stats

    def _rewind(self, failed: WriteFailed) -> None:
        if self.poller.consumer is not None:
            rewind(self.poller.consumer, failed)

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
        return self.poller.lag()

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
                self.poller.reset()
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

    def close(self) -> None:
        """Finish the write in flight and close the Kafka consumer (offsets live in the store)."""
        try:
            self._writer.close()
        finally:
            self.poller.reset()

    def __enter__(self) -> Ingester:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
