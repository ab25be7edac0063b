"""The store's schema: DuckDB DDL, the Arrow schemas rows are written through, dead letters.

Bump :data:`SCHEMA_VERSION` with every change to the DDL; :class:`monitor.store.Store`
refuses a file written by a newer version.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

from collectors.events import LabelEvent, ScoredEvent

SCHEMA_VERSION = 1

VERSION_DDL = """
CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL, applied_at DOUBLE NOT NULL)
"""
DDL = """
CREATE TABLE IF NOT EXISTS events (
    event_id VARCHAR PRIMARY KEY, ts DOUBLE NOT NULL, model_id VARCHAR NOT NULL,
    probe_version VARCHAR NOT NULL, layer INTEGER NOT NULL, pooling VARCHAR NOT NULL,
    raw_logit DOUBLE NOT NULL, confidence DOUBLE NOT NULL, decision VARCHAR NOT NULL,
    answer VARCHAR NOT NULL, tag VARCHAR NOT NULL, state FLOAT[], schema_version INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS labels (
    event_id VARCHAR PRIMARY KEY, correct BOOLEAN NOT NULL, ts DOUBLE NOT NULL,
    source VARCHAR NOT NULL);
CREATE TABLE IF NOT EXISTS dead_letters (
    raw BLOB, error VARCHAR NOT NULL, topic VARCHAR NOT NULL, "partition" INTEGER NOT NULL,
    "offset" BIGINT NOT NULL, ts DOUBLE NOT NULL, PRIMARY KEY (topic, "partition", "offset"));
CREATE TABLE IF NOT EXISTS offsets (
    topic VARCHAR NOT NULL, "partition" INTEGER NOT NULL, next_offset BIGINT NOT NULL,
    PRIMARY KEY (topic, "partition"));
CREATE SEQUENCE IF NOT EXISTS detector_runs_id;
CREATE TABLE IF NOT EXISTS detector_runs (
    id BIGINT PRIMARY KEY DEFAULT nextval('detector_runs_id'), ts DOUBLE NOT NULL,
    detector VARCHAR NOT NULL, subject VARCHAR NOT NULL, window_start DOUBLE, window_end DOUBLE,
    statistic DOUBLE, threshold DOUBLE, is_drift BOOLEAN NOT NULL, n_reference BIGINT,
    n_current BIGINT, details JSON);
CREATE SEQUENCE IF NOT EXISTS alerts_id;
CREATE TABLE IF NOT EXISTS alerts (
    id BIGINT PRIMARY KEY DEFAULT nextval('alerts_id'), ts DOUBLE NOT NULL, kind VARCHAR NOT NULL,
    detector VARCHAR NOT NULL, subject VARCHAR NOT NULL, severity VARCHAR NOT NULL,
    message VARCHAR NOT NULL, statistic DOUBLE, threshold DOUBLE);
CREATE INDEX IF NOT EXISTS events_ts ON events (ts);
CREATE OR REPLACE VIEW labelled_events AS
    SELECT e.*, l.correct, l.ts AS label_ts, l.source AS label_source
    FROM labels AS l JOIN events AS e USING (event_id);
"""

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
        ("state", pa.list_(pa.float32())),
        ("schema_version", pa.int32()),
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
    ]
)
OFFSET_SCHEMA = pa.schema(
    [("topic", pa.string()), ("partition", pa.int32()), ("next_offset", pa.int64())]
)


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
    """

    raw: bytes
    error: str
    topic: str
    partition: int
    offset: int
    ts: float


ROWS = {
    "events": (ScoredEvent, EVENT_SCHEMA),
    "labels": (LabelEvent, LABEL_SCHEMA),
    "dead_letters": (DeadLetter, DEAD_SCHEMA),
}
