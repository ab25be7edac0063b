"""Write-ahead pipelining of ingest: one transaction in flight while the next batch is decoded.

Arrow's JSON reader and DuckDB both release the GIL, so on two cores decoding
batch ``k + 1`` overlaps with writing batch ``k``. Transactions still run one at a
time and in poll order, so the offsets stored with each batch only move forward
and exactly-once holds. When a write fails, :class:`WriteFailed` carries every
batch that was not stored, so the caller can rewind its consumer to the first of
their offsets.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np
import pyarrow as pa

from monitor.ingest.decode import DecodedBatch, decode_batch
from monitor.store.schema import DeadLetter
from monitor.store.writes import dead_to_arrow

log = logging.getLogger(__name__)


@dataclass
class PreparedBatch:
    """A decoded poll, ready to be written in one transaction.

    Attributes
    ----------
    decoded : DecodedBatch
        Events, states, labels and decode errors.
    dead : pyarrow.Table
        Dead letters (``DEAD_SCHEMA``).
    offsets : dict of (topic, partition) -> int
        Next offset to consume per partition after this batch.
    first : dict of (topic, partition) -> int
        First offset of this batch per partition (where to rewind to).
    topic_ids : dict of topic -> str or None
        Broker ids of the topics, stored with the offsets.
    n_messages : int
        Kafka records in the batch.
    started : float
        ``time.perf_counter()`` when the poll began.
    inserted : dict of str -> int
        Rows the write inserted (set once written).
    """

    decoded: DecodedBatch
    dead: pa.Table
    offsets: dict[tuple[str, int], int]
    first: dict[tuple[str, int], int]
    topic_ids: dict[str, str | None]
    n_messages: int
    started: float = field(default_factory=time.perf_counter)
    inserted: dict[str, int] = field(default_factory=dict)


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
    n_states : int
        Rows newly stored in ``states``.
    """

    n_messages: int = 0
    n_events: int = 0
    n_labels: int = 0
    n_dead: int = 0
    n_duplicates: int = 0
    seconds: float = 0.0
    n_states: int = 0

    def __add__(self, other: IngestStats) -> IngestStats:
        return IngestStats(*(getattr(self, f.name) + getattr(other, f.name) for f in fields(self)))


def stats_of(batch: PreparedBatch | None) -> IngestStats:
    """The :class:`IngestStats` of a written batch (empty stats for None)."""
    if batch is None:
        return IngestStats()
    d, n = batch.decoded, batch.inserted
    return IngestStats(
        n_messages=batch.n_messages,
        n_events=n["events"],
        n_labels=n["labels"],
        n_dead=n["dead_letters"],
        n_duplicates=d.events.num_rows + d.labels.num_rows - n["events"] - n["labels"],
        seconds=time.perf_counter() - batch.started,
        n_states=n["states"],
    )


class WriteFailed(Exception):
    """A write failed; ``unwritten`` lists the batches not stored (oldest first)."""

    def __init__(self, cause: BaseException, unwritten: list[PreparedBatch]) -> None:
        super().__init__(f"ingest write failed: {cause!r}")
        self.cause = cause
        self.unwritten = unwritten


def prepare(
    polled: dict,
    topic_ids: dict[str, str | None],
    started: float,
    widths: Any = None,
    clock: Any = None,
) -> PreparedBatch | None:
    """Decode one poll (``{TopicPartition: [ConsumerRecord]}``); None when it is empty.

    A message that does not decode, whose state width differs from its subject's
    (``widths``, a :class:`monitor.ingest.widths.StateWidths`), or whose ``ts`` is
    outside the bounds of ``clock`` (a :class:`monitor.ingest.clock.EventClock`)
    becomes a dead letter with its raw bytes, the error and its coordinates.
    """
    values: list[bytes | None] = []
    spans: list[tuple[str, int, int, list]] = []  # topic, partition, first index, records
    offsets: dict[tuple[str, int], int] = {}
    first: dict[tuple[str, int], int] = {}
    for tp, records in polled.items():
        if not records:
            continue
        first[(tp.topic, tp.partition)] = records[0].offset
        offsets[(tp.topic, tp.partition)] = records[-1].offset + 1
        spans.append((tp.topic, tp.partition, len(values), records))
        values += [rec.value for rec in records]
    if not values:
        return None
    decoded = decode_batch(values)
    now = time.time()
    if clock is not None:
        sent_ms = [-1 if r.timestamp is None else int(r.timestamp) for *_, rs in spans for r in rs]
        clock.check(decoded, np.asarray(sent_ms, dtype=np.int64), now)
    if widths is not None:
        widths.check(decoded)
    dead = []
    for i, error in decoded.errors:
        topic, partition, start, records = next(s for s in reversed(spans) if s[2] <= i)
        dead.append(
            DeadLetter(
                raw=values[i] or b"",
                error=error,
                topic=topic,
                partition=partition,
                offset=records[i - start].offset,
                ts=now,
                topic_id=topic_ids.get(topic) or "",
            )
        )
    if dead:
        log.warning(
            "%d message(s) sent to dead_letters, first: %s:%d@%d: %s",
            len(dead), dead[0].topic, dead[0].partition, dead[0].offset, dead[0].error,
        )  # fmt: skip
    return PreparedBatch(
        decoded, dead_to_arrow(dead), offsets, first, dict(topic_ids), len(values), started
    )


def rewind(consumer: Any, failed: WriteFailed) -> None:
    """Seek ``consumer`` back to the first offset of every batch that was not stored."""
    from kafka import TopicPartition

    starts: dict[tuple[str, int], int] = {}
    for batch in failed.unwritten:
        for tp, offset in batch.first.items():
            starts[tp] = min(offset, starts.get(tp, offset))
    for (topic, partition), offset in starts.items():
        consumer.seek(TopicPartition(topic, partition), offset)


def write(store: Any, batch: PreparedBatch) -> PreparedBatch:
    """Write one batch and its offsets in one transaction (see :meth:`Store.write_arrow`)."""
    d = batch.decoded
    batch.inserted = store.write_arrow(
        d.events, d.states, d.labels, batch.dead, batch.offsets, batch.topic_ids
    )
    return batch


class WriteAhead:
    """Keeps at most one write running on a background thread.

    Parameters
    ----------
    write_fn : callable
        Writes one :class:`PreparedBatch` and returns it, e.g.
        ``functools.partial(write, store)``.
    """

    def __init__(self, write_fn: Callable[[PreparedBatch], PreparedBatch]) -> None:
        self.write_fn = write_fn
        self._executor: ThreadPoolExecutor | None = None
        self._pending: tuple[Future, PreparedBatch] | None = None

    @property
    def busy(self) -> bool:
        """Whether a write is in flight."""
        return self._pending is not None

    def submit(self, batch: PreparedBatch) -> PreparedBatch | None:
        """Wait for the write in flight, then start writing ``batch``.

        Returns
        -------
        PreparedBatch or None
            The batch whose write just finished (None if none was in flight).

        Raises
        ------
        WriteFailed
            The write in flight failed; ``batch`` was not started, and both are
            in ``unwritten``.
        """
        done = self._wait([batch])
        if self._executor is None:
            self._executor = ThreadPoolExecutor(1, thread_name_prefix="ingest-write")
        self._pending = (self._executor.submit(self.write_fn, batch), batch)
        return done

    def drain(self) -> PreparedBatch | None:
        """Wait for the write in flight; return its batch (None if none). Raises WriteFailed."""
        return self._wait([])

    def _wait(self, more: list[PreparedBatch]) -> PreparedBatch | None:
        if self._pending is None:
            return None
        future, batch = self._pending
        self._pending = None
        try:
            return future.result()
        except BaseException as exc:
            raise WriteFailed(exc, [batch, *more]) from exc

    def close(self) -> None:
        """Wait for the write in flight (its errors are the caller's to see first) and stop."""
        try:
            self.drain()
        finally:
            if self._executor is not None:
                self._executor.shutdown(wait=True)
                self._executor = None
