"""The store's current schema: the Arrow schemas rows are written through, and dead letters.

The DuckDB DDL lives in :mod:`monitor.store.migrations` as a list of versioned steps
(frozen history: a step, once released, never changes); :data:`SCHEMA_VERSION` is
the version the last step produces. :class:`monitor.store.database.Store` migrates an older
file when it opens it and refuses a file written by a newer release.

Tables (version 6)
------------------
``events``
    One row per scored request (no pooled state). Duplicate ``event_id`` values
    are rejected at write time (see :mod:`monitor.store.writes`), not by an index.
``states``
    Pooled hidden states, one row per event that carried one: ``event_id``, the
    event's ``ts``, ``dim`` and ``state``, a ``BLOB`` of ``dim`` little-endian
    IEEE 754 half-precision values (:func:`collectors.wire.events.pack_state`).
``labels``
    Delayed ground truth, primary key ``event_id`` (first label wins); kept even
    when its event has not arrived yet, joined by the ``labelled_events`` view.
``dead_letters``
    Messages that did not decode: raw bytes, error, Kafka coordinates, time.
``offsets``
    Next offset to consume per (topic, partition), written in the same
    transaction as the rows, and the topic's id when the broker reports one.
``detector_runs``, ``alerts``, ``probes``, ``archive_runs``, ``schema_version``.

Views ``all_events`` and ``all_states`` read the live table UNION ALL its Parquet
archive (:mod:`monitor.store.retention`); ``labelled_events`` joins ``labels`` to
``all_events`` on ``event_id``.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

SCHEMA_VERSION = 6

EVENT_SCHEMA = pa.schema(
    [
        ("event_id", pa.string()),
        ("ts", pa.float64()),
        ("model_id", pa.string()),
        ("probe_version", pa.string()),
        ("layer", pa.int32()),
        ("pooling", pa.string()),
        ("raw_logit", pa.float64()),
        ("confidence", pa.float64()),
        ("decision", pa.string()),
        ("answer", pa.string()),
        ("tag", pa.string()),
        ("schema_version", pa.int32()),
        ("route", pa.string()),  # the final route after self-consistency; NULL: the decision
        ("consistency", pa.float64()),
        ("consistency_k", pa.int32()),
    ]
)
EVENT_OPTIONAL = {"route": "VARCHAR", "consistency": "DOUBLE", "consistency_k": "INTEGER"}
"""Event columns that may be NULL (gray-zone resolution), with their SQL types; Parquet
archived before they existed reads them as NULL."""
STATE_SCHEMA = pa.schema(
    [
        ("event_id", pa.string()),
        ("ts", pa.float64()),
        ("dim", pa.int32()),
        ("state", pa.binary()),
    ]
)
LABEL_SCHEMA = pa.schema(
    [
        ("event_id", pa.string()),
        ("correct", pa.bool_()),
        ("ts", pa.float64()),
        ("source", pa.string()),
    ]
)
DEAD_SCHEMA = pa.schema(
    [
        ("raw", pa.binary()),
        ("error", pa.string()),
        ("topic", pa.string()),
        ("partition", pa.int32()),
        ("offset", pa.int64()),
        ("ts", pa.float64()),
        ("topic_id", pa.string()),
    ]
)
OFFSET_SCHEMA = pa.schema(
    [
        ("topic", pa.string()),
        ("partition", pa.int32()),
        ("next_offset", pa.int64()),
        ("topic_id", pa.string()),
    ]
)

#: Tables whose old rows :mod:`monitor.store.retention` moves to Parquet, with their columns.
ARCHIVED = {"events": EVENT_SCHEMA.names, "states": STATE_SCHEMA.names}


@dataclass(frozen=True)
class DeadLetter:
    """A message that could not be decoded, kept with where it came from.

    Attributes
    ----------
    raw : bytes
        The message value as received (``b""`` for an empty message).
    error : str
        Why it was rejected.
    topic, partition, offset : str, int, int
        Its Kafka coordinates.
    ts : float
        When it was rejected, seconds since the Unix epoch.
    topic_id : str
        The topic's id on the broker (``""`` when unknown). Part of the key, so a
        recreated topic whose offsets start again at 0 does not collide.
    """

    raw: bytes
    error: str
    topic: str
    partition: int
    offset: int
    ts: float
    topic_id: str = ""
