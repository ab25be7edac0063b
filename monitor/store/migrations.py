"""Versioned schema migrations of the DuckDB store.

Each step takes a file from version ``n - 1`` to ``n`` inside one transaction
and records ``n`` in ``schema_version``. A new file runs every step, so a fresh
file and a migrated one end with the same schema. Released steps are history:
never edit one, add the next.

Version 1 is the walking skeleton's schema (``events.state FLOAT[]``, primary key
on ``events.event_id``). Version 2 moves pooled states to their own ``states``
table as fp16 ``BLOB`` (half the bytes of ``FLOAT[]``), drops the events primary
key and ``ts`` index (duplicates are rejected by a time-bounded anti-join at
write time, which also covers the Parquet archive), keys dead letters by topic id
as well, records topic ids with offsets, and adds ``probes``, ``archive_runs`` and
``settings`` (the archive directory, so every process opening the file finds it).
Version 6 stores ``states.state`` without compression (``bench/ingest.py``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pyarrow as pa

from collectors.wire.events import pack_state
from monitor.store.schema import SCHEMA_VERSION, STATE_SCHEMA
from monitor.store.writes import fetch_batches


class StoreError(RuntimeError):
    """The store file cannot be opened, migrated or archived, or has a newer schema."""


VERSION_DDL = """
CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL, applied_at DOUBLE NOT NULL)
"""

V1_DDL = """
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

_EVENT_COLUMNS = (
    "event_id, ts, model_id, probe_version, layer, pooling, raw_logit, confidence, decision, "
    "answer, tag, schema_version"
)
V2_DDL = f"""
DROP VIEW IF EXISTS labelled_events;
DROP INDEX IF EXISTS events_ts;
CREATE TABLE events_v2 (
    event_id VARCHAR NOT NULL, ts DOUBLE NOT NULL, model_id VARCHAR NOT NULL,
    probe_version VARCHAR NOT NULL, layer INTEGER NOT NULL, pooling VARCHAR NOT NULL,
    raw_logit DOUBLE NOT NULL, confidence DOUBLE NOT NULL, decision VARCHAR NOT NULL,
    answer VARCHAR NOT NULL, tag VARCHAR NOT NULL, schema_version INTEGER NOT NULL);
INSERT INTO events_v2 SELECT {_EVENT_COLUMNS} FROM events ORDER BY ts;
DROP TABLE events;
ALTER TABLE events_v2 RENAME TO events;
CREATE TABLE dead_letters_v2 (
    raw BLOB, error VARCHAR NOT NULL, topic VARCHAR NOT NULL, "partition" INTEGER NOT NULL,
    "offset" BIGINT NOT NULL, ts DOUBLE NOT NULL, topic_id VARCHAR NOT NULL DEFAULT '',
    PRIMARY KEY (topic, topic_id, "partition", "offset"));
INSERT INTO dead_letters_v2 SELECT raw, error, topic, "partition", "offset", ts, ''
    FROM dead_letters;
DROP TABLE dead_letters;
ALTER TABLE dead_letters_v2 RENAME TO dead_letters;
CREATE TABLE offsets_v2 (
    topic VARCHAR NOT NULL, "partition" INTEGER NOT NULL, next_offset BIGINT NOT NULL,
    topic_id VARCHAR, PRIMARY KEY (topic, "partition"));
INSERT INTO offsets_v2 SELECT topic, "partition", next_offset, NULL FROM offsets;
DROP TABLE offsets;
ALTER TABLE offsets_v2 RENAME TO offsets;
CREATE TABLE probes (
    version VARCHAR PRIMARY KEY, created_ts DOUBLE NOT NULL, model_id VARCHAR NOT NULL,
    layer INTEGER NOT NULL, pooling VARCHAR NOT NULL, hidden_dim INTEGER NOT NULL,
    path VARCHAR NOT NULL, status VARCHAR NOT NULL, metrics JSON);
CREATE TABLE settings (key VARCHAR PRIMARY KEY, value VARCHAR NOT NULL);
CREATE TABLE archive_runs (
    run_id VARCHAR PRIMARY KEY, cutoff DOUBLE NOT NULL, created_ts DOUBLE NOT NULL,
    n_events BIGINT NOT NULL, n_states BIGINT NOT NULL);
"""


def _v1(con: Any) -> None:
    con.execute(V1_DDL)


def _v2(con: Any) -> None:
    con.execute(
        "CREATE TABLE states (event_id VARCHAR NOT NULL, ts DOUBLE NOT NULL, "
        "dim INTEGER NOT NULL, state BLOB NOT NULL)"
    )
    reader = fetch_batches(
        con.execute(
            "SELECT event_id, ts, state FROM events WHERE state IS NOT NULL AND len(state) > 0 "
            "ORDER BY ts"
        ),
        50_000,
    )
    batches = []
    for batch in reader:  # FLOAT[] -> fp16 BLOB, in chunks
        states = batch.column("state").to_pylist()
        blobs = [pack_state(np.nan_to_num(np.asarray(s, np.float32))) for s in states]
        batches.append(
            pa.Table.from_arrays(
                [
                    batch.column("event_id"),
                    batch.column("ts"),
                    pa.array([len(b) // 2 for b in blobs], pa.int32()),
                    pa.array(blobs, pa.binary()),
                ],
                schema=STATE_SCHEMA,
            )
        )
    for i, table in enumerate(batches):
        con.register(f"_v1_states_{i}", table)
        con.execute(f"INSERT INTO states SELECT * FROM _v1_states_{i}")
        con.unregister(f"_v1_states_{i}")
    con.execute(V2_DDL)


V3_DDL = """
CREATE SEQUENCE IF NOT EXISTS alert_outbox_id;
CREATE TABLE alert_outbox (
    id BIGINT PRIMARY KEY DEFAULT nextval('alert_outbox_id'), created_ts DOUBLE NOT NULL,
    sink VARCHAR NOT NULL, payload VARCHAR NOT NULL, attempts INTEGER NOT NULL,
    next_try DOUBLE NOT NULL, delivered_ts DOUBLE, last_error VARCHAR);
"""


def _v3(con: Any) -> None:
    con.execute(V3_DDL)


V4_DDL = """
ALTER TABLE probes ADD COLUMN status_ts DOUBLE;
ALTER TABLE probes ADD COLUMN reason VARCHAR;
UPDATE probes SET status_ts = created_ts;
"""


def _v4(con: Any) -> None:
    con.execute(V4_DDL)


V5_DDL = """
ALTER TABLE events ADD COLUMN route VARCHAR;
ALTER TABLE events ADD COLUMN consistency DOUBLE;
ALTER TABLE events ADD COLUMN consistency_k INTEGER;
"""


def _v5(con: Any) -> None:
    con.execute(V5_DDL)


V6_DDL = """
CREATE TABLE states_v6 (
    event_id VARCHAR NOT NULL, ts DOUBLE NOT NULL, dim INTEGER NOT NULL,
    state BLOB NOT NULL USING COMPRESSION uncompressed);
INSERT INTO states_v6 SELECT event_id, ts, dim, state FROM states;
DROP TABLE states;
ALTER TABLE states_v6 RENAME TO states;
"""


def _v6(con: Any) -> None:
    con.execute(V6_DDL)


#: (version, description, step) in order; the last version is :data:`SCHEMA_VERSION`.
MIGRATIONS: list[tuple[int, str, Callable[[Any], None]]] = [
    (1, "walking skeleton: events, labels, dead letters, offsets, detector runs, alerts", _v1),
    (2, "fp16 states table, topic ids, probes, archive runs; no events primary key", _v2),
    (3, "alert outbox: deliveries to external sinks, retried until they succeed", _v3),
    (4, "probe lifecycle: when a probe reached its status (champion, retired, rejected), why", _v4),
    (5, "gray zone: the final route after self-consistency, its agreement and K", _v5),
    # fp16 states barely compress (a few percent) and DuckDB's analysis of them for
    # dictionary and FSST compression took 4/5 of the write time of a state
    (6, "states stored uncompressed: a quarter of the write time, the same file size", _v6),
]
assert MIGRATIONS[-1][0] == SCHEMA_VERSION


def current_version(con: Any) -> int:
    """Return the file's schema version (0 for a new file)."""
    con.execute(VERSION_DDL)
    version = con.execute("SELECT max(version) FROM schema_version").fetchone()[0]
    return 0 if version is None else int(version)


def migrate(con: Any, path: object = "<store>") -> tuple[int, int]:
    """Bring a store file up to :data:`SCHEMA_VERSION`, one transaction per step.

    Parameters
    ----------
    con : duckdb.DuckDBPyConnection
        Connection to the file (read-write).
    path : object
        Shown in error messages.

    Returns
    -------
    (int, int)
        The version found and the version reached.

    Raises
    ------
    StoreError
        The file has a newer version than this build knows, or a step failed
        (the file then stays at the last completed version).
    """
    found = current_version(con)
    if found > SCHEMA_VERSION:
        raise StoreError(
            f"store {path} has schema version {found}, this build reads up to {SCHEMA_VERSION}"
        )
    for version, description, step in MIGRATIONS:
        if version <= found:
            continue
        con.execute("BEGIN TRANSACTION")
        try:
            step(con)
            con.execute("INSERT INTO schema_version VALUES (?, ?)", [version, time.time()])
            con.execute("COMMIT")
        except Exception as exc:
            con.execute("ROLLBACK")
            raise StoreError(
                f"migrating store {path} to version {version} ({description}) failed: {exc}"
            ) from exc
    return found, SCHEMA_VERSION
