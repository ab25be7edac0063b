"""The Kafka side of ingest: one consumer, its partition assignment, and lingering polls.

A :class:`Poller` creates its consumer on first use (so constructing one never
blocks), assigns it the partitions of its topics by hand
(:mod:`monitor.ingest.assignment`: no consumer group), looks for added partitions
every ``refresh_s`` seconds, and gathers the polls of up to ``linger_s`` seconds into
one transaction's worth of records. It notices a recreated topic (a new topic id)
in the metadata of every poll and reads it again from the beginning.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from collectors.transport.emitter import new_kafka_client
from monitor.config.settings import KafkaConfig
from monitor.ingest import assignment
from monitor.ingest.admin import ensure_topics

log = logging.getLogger(__name__)

DEFAULT_BATCH_SIZE = 122_880
"""Records per transaction at most: one DuckDB row group, which DuckDB writes straight to the
file instead of through its write-ahead log (``bench/ingest.py``)."""
MAX_BATCH_BYTES = 64 << 20
"""Message bytes per transaction at most (about 50,000 events with 512-d states)."""

Polled = dict[Any, list[Any]]
"""kafka-python's poll result: ``TopicPartition -> [ConsumerRecord, ...]``."""


class Poller:
    """Consume the events and labels topics for one ingester.

    Parameters
    ----------
    kafka : KafkaConfig
        Broker address, security settings, topic names and the static assignment.
    store : Store
        Holds the stored offsets the poller seeks to (and clears for recreated topics).
    batch_size : int
        Most records per :meth:`poll`.
    linger_s : float
        How long to keep polling once some records arrived, seconds.
    create_topics : bool
        Create missing topics (one partition per ingester of the assignment).
    refresh_s : float
        How often to look for partitions added to the topics, seconds.
    connect_timeout_s : float
        How long one attempt to reach the broker may block, seconds.

    Raises
    ------
    ValueError
        ``batch_size < 1`` or ``linger_s < 0``.
    """

    def __init__(
        self,
        kafka: KafkaConfig,
        store: Any,
        batch_size: int = DEFAULT_BATCH_SIZE,
        linger_s: float = 0.5,
        create_topics: bool = True,
        refresh_s: float = 30.0,
        connect_timeout_s: float = 5.0,
    ) -> None:
        if int(batch_size) < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if not linger_s >= 0:
            raise ValueError(f"linger_s must be >= 0 seconds, got {linger_s}")
        self.kafka = kafka
        self.store = store
        self.batch_size = int(batch_size)
        self.linger_s = float(linger_s)
        self.create_topics = create_topics
        self.refresh_s = refresh_s
        self.connect_timeout_s = connect_timeout_s
        self.topics = [kafka.topics.events, kafka.topics.labels]
        self.topic_ids: dict[str, str | None] = {}
        """The broker's id of each topic when it was assigned (KIP-516)."""
        self.consumer: Any = None
        """The kafka-python consumer, None until first use and after :meth:`reset`."""
        self._refreshed_at = float("-inf")

    def ensure(self) -> Any:
        """The consumer, created and assigned if needed, its assignment refreshed when due.

        Raises
        ------
        kafka.errors.KafkaError
            The broker is unreachable.
        monitor.ingest.assignment.AssignmentError
            A shared assignment over topics with different partition counts.
        """
        if self.consumer is None:
            from kafka import KafkaConsumer

            kwargs = self.kafka.client_kwargs()
            kwargs["bootstrap_timeout_ms"] = int(self.connect_timeout_s * 1000)
            if self.create_topics:
                # a shared assignment needs at least one partition per ingester
                ensure_topics(kwargs, self.topics, partitions=self.kafka.assignment.members)
            self.consumer = new_kafka_client(
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
            share = (self.kafka.assignment.member, self.kafka.assignment.members)
            assignment.assign(self.consumer, self.topics, self.store, self.topic_ids, share)
            self._refreshed_at = time.monotonic()
        return self.consumer

    def poll(self, timeout_s: float, before_restart: Callable[[], Any]) -> Polled | None:
        """Records for one transaction: at most ``batch_size`` records or :data:`MAX_BATCH_BYTES`.

        The first poll waits up to ``timeout_s`` seconds; later ones take what arrives
        within ``linger_s`` of the first.

        Parameters
        ----------
        timeout_s : float
            Longest wait for the first records, seconds.
        before_restart : callable
            Called before a recreated topic's stored offsets are cleared (to finish
            the write in flight, which holds offsets of the old topic).

        Returns
        -------
        dict or None
            kafka-python's poll result, merged over the polls (possibly empty); None
            when a topic was recreated: the polled records are put back and the topic
            is read again from its beginning.
        """
        t0 = time.perf_counter()
        consumer = self.ensure()
        polled: Polled = {}
        n = size = 0
        wait_s = timeout_s
        while True:
            more = consumer.poll(timeout_ms=int(wait_s * 1000), max_records=self.batch_size - n)
            recreated = assignment.recreated_topics(consumer, self.topics, self.topic_ids)
            for tp, records in more.items():
                polled.setdefault(tp, []).extend(records)
            if recreated:  # records fetched at stale positions of a new topic: drop them
                self._restart(recreated, polled, before_restart)
                return None
            n += sum(map(len, more.values()))
            size += sum(len(r.value or b"") for rs in more.values() for r in rs)
            wait_s = self.linger_s - (time.perf_counter() - t0)
            if not more or n >= self.batch_size or size >= MAX_BATCH_BYTES or wait_s <= 0:
                return polled

    def _restart(self, topics: set[str], polled: Polled, before: Callable[[], Any]) -> None:
        """Read recreated topics from their beginning; put the other polled records back."""
        from kafka import TopicPartition

        for tp, records in polled.items():
            if records and tp.topic not in topics:
                self.consumer.seek(TopicPartition(tp.topic, tp.partition), records[0].offset)
        before()
        for topic in sorted(topics):
            log.warning("topic %s was recreated on the broker: reading it from the start", topic)
            self.store.clear_offsets(topic)
            tps = [tp for tp in self.consumer.assignment() if tp.topic == topic]
            if tps:
                self.consumer.seek_to_beginning(*tps)
        self._refreshed_at = float("-inf")  # pick up the new topic's partitions

    def lag(self) -> dict[tuple[str, int], int]:
        """Messages behind per assigned (topic, partition), from the last fetch's high watermark."""
        return {} if self.consumer is None else assignment.lag(self.consumer)

    def reset(self) -> None:
        """Close the consumer (after a broker error); the next :meth:`ensure` makes a new one."""
        if self.consumer is not None:
            try:
                self.consumer.close()
            except Exception:  # noqa: BLE001 - already broken
                log.debug("error closing a failed consumer", exc_info=True)
        self.consumer = None
        self._refreshed_at = float("-inf")
