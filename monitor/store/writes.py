"""One ingest transaction: Arrow tables in, deduplicated rows and offsets out.

Duplicates are rejected by ``event_id``, first occurrence wins:

- within a batch, by keeping each id's first row;
- events against every stored event, live or archived, whatever ``ts`` the copy
  carries: an in-memory index of id hashes (:mod:`monitor.store.id_index`) proves
  most ids new; its candidates are confirmed against the rows themselves, first
  within their ``ts`` range (where a replayed copy is; DuckDB answers it from the
  row-group min/max of ``ts``), then across all rows for any left. This replaced
  a primary-key index, which halved insert throughput (``bench/ingest.py``) and
  could not see the archive;
- labels and dead letters by their primary keys (``INSERT OR IGNORE``);
- states follow their events: a state is stored only with a newly stored event.
"""

from __future__ import annotations

import contextlib
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from collectors.wire.events import LabelEvent, ScoredEvent, pack_state
from monitor.store.id_index import IdIndex, batch_hashes
from monitor.store.retention import archived_files, days_between
from monitor.store.schema import (
    DEAD_SCHEMA,
    EVENT_SCHEMA,
    LABEL_SCHEMA,
    OFFSET_SCHEMA,
    STATE_SCHEMA,
    DeadLetter,
)


def fetch_arrow(cursor: Any) -> pa.Table:
    """The result of an executed DuckDB statement as an Arrow table (DuckDB 1.x and 2.x)."""
    method = getattr(cursor, "to_arrow_table", None) or cursor.fetch_arrow_table
    with warnings.catch_warnings():  # 2.x hints at con.sql(); not for INSERT ... RETURNING
        warnings.simplefilter("ignore", UserWarning)
        return method()


def fetch_batches(cursor: Any, rows_per_batch: int) -> Any:
    """The result as an iterator of Arrow record batches (DuckDB 1.x and 2.x)."""
    method = getattr(cursor, "to_arrow_reader", None) or cursor.fetch_record_batch
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return method(rows_per_batch)


def _check(rows: list[Any], cls: type, table: str) -> None:
    bad = next((r for r in rows if not isinstance(r, cls)), None)
    if bad is not None:
        raise TypeError(f"{table} must hold {cls.__name__}, got {type(bad).__name__}")


def events_to_arrow(events: list[ScoredEvent]) -> tuple[pa.Table, pa.Table]:
    """Events as (``EVENT_SCHEMA`` table, ``STATE_SCHEMA`` table of those with a state).

    Raises
    ------
    TypeError
        An item is not a :class:`ScoredEvent`.
    ValueError
        A state is empty, not 1-D, or not finite.
    """
    _check(events, ScoredEvent, "events")
    cols = {n: [getattr(e, n) for e in events] for n in EVENT_SCHEMA.names}
    cols["route"] = [e.route or None for e in events]  # NULL: the route is the decision
    with_state = [e for e in events if e.state is not None]
    blobs = [pack_state(e.state) for e in with_state]
    states = pa.Table.from_pydict(
        {
            "event_id": [e.event_id for e in with_state],
            "ts": [e.ts for e in with_state],
            "dim": [len(b) // 2 for b in blobs],
            "state": blobs,
        },
        schema=STATE_SCHEMA,
    )
    return pa.Table.from_pydict(cols, schema=EVENT_SCHEMA), states


def labels_to_arrow(labels: list[LabelEvent]) -> pa.Table:
    """Labels as a ``LABEL_SCHEMA`` table. Raises TypeError for a non-label item."""
    _check(labels, LabelEvent, "labels")
    return pa.Table.from_pydict(
        {n: [getattr(r, n) for r in labels] for n in LABEL_SCHEMA.names}, schema=LABEL_SCHEMA
    )


def dead_to_arrow(dead: list[DeadLetter]) -> pa.Table:
    """Dead letters as a ``DEAD_SCHEMA`` table. Raises TypeError for a wrong item."""
    _check(dead, DeadLetter, "dead_letters")
    return pa.Table.from_pydict(
        {n: [getattr(r, n) for r in dead] for n in DEAD_SCHEMA.names}, schema=DEAD_SCHEMA
    )


def offsets_to_arrow(
    offsets: dict[tuple[str, int], int] | None, topic_ids: dict[str, str | None] | None = None
) -> pa.Table:
    """Next offsets per (topic, partition), with each topic's id when known."""
    items = sorted((offsets or {}).items())
    ids = topic_ids or {}
    return pa.Table.from_pylist(
        [
            {"topic": t, "partition": p, "next_offset": o, "topic_id": ids.get(t)}
            for (t, p), o in items
        ],
        schema=OFFSET_SCHEMA,
    )


def first_per_id(con: Any, table: pa.Table) -> pa.Table:
    """Keep the first row of each ``event_id`` (order preserved).

    The usual batch has no duplicate, which DuckDB's ``count(DISTINCT)`` proves in a
    few milliseconds (pyarrow's ``count_distinct`` of 122,880 ids takes 40x longer).
    """
    if table.num_rows < 2:
        return table
    con.register("_ids", table.select(["event_id"]))
    try:
        distinct = con.execute("SELECT count(DISTINCT event_id) FROM _ids").fetchall()[0][0]
    finally:
        _unregister(con, "_ids")
    if distinct == table.num_rows:
        return table
    ids = table.column("event_id")
    keep = np.unique(
        np.asarray(pc.dictionary_encode(ids).combine_chunks().indices), return_index=True
    )[1]
    return table.take(pa.array(np.sort(keep)))


def _insert_events(
    con: Any,
    events: pa.Table,
    archive_dir: Path | None,
    mark: float,
    want_ids: bool,
    index: IdIndex,
) -> tuple[pa.Table | int, np.ndarray]:
    """Insert events whose id is not stored yet.

    Returns the inserted ids (a one-column table) when ``want_ids``, else their
    number (``RETURNING`` costs about 20 %), and the inserted rows' id hashes
    for ``index`` once the transaction commits.
    """
    con.register("_events", events)
    try:
        hashes = batch_hashes(con, "_events")
        seen = index.contains(hashes)
        if seen.any():
            stored = _stored_ids(con, events.filter(pa.array(seen)), archive_dir, mark)
            fresh = ~(seen & np.asarray(pc.is_in(events.column("event_id"), stored)))
            events, hashes = events.filter(pa.array(fresh)), hashes[fresh]
            _unregister(con, "_events")
            con.register("_events", events)
        sql = "INSERT INTO events SELECT * FROM _events"
        if want_ids:
            return fetch_arrow(con.execute(sql + " RETURNING event_id")), hashes
        return int(con.execute(sql).fetchone()[0]), hashes
    finally:
        _unregister(con, "_events")


def _stored_ids(con: Any, candidates: pa.Table, archive_dir: Path | None, mark: float) -> pa.Array:
    """Which candidate ids are stored: first where a replayed copy is (the candidates' ``ts``
    range, live rows and the archived days it covers), then, for any left, every stored row."""
    bounds = pc.min_max(candidates.column("ts"))
    lo, hi = float(bounds["min"].as_py()), float(bounds["max"].as_py())
    con.register("_candidates", candidates.select(["event_id"]))
    try:
        near = "SELECT event_id FROM events WHERE ts BETWEEN $lo AND $hi"
        files = []
        if lo < mark:
            files = archived_files(archive_dir, "events", days_between(lo, min(hi, mark)))
        if files:
            near += (
                f" UNION ALL SELECT event_id FROM read_parquet({_files_sql(files)}) "
                "WHERE ts BETWEEN $lo AND $hi"
            )
        found = fetch_arrow(con.execute(
            f"SELECT DISTINCT event_id FROM _candidates SEMI JOIN ({near}) USING (event_id)",
            {"lo": lo, "hi": hi},
        )).column(0)  # fmt: skip
        if len(found) < candidates.num_rows:  # a copy stamped with another time
            found = fetch_arrow(con.execute(
                "SELECT DISTINCT event_id FROM _candidates SEMI JOIN all_events USING (event_id)"
            )).column(0)  # fmt: skip
        return found.combine_chunks() if isinstance(found, pa.ChunkedArray) else found
    finally:
        _unregister(con, "_candidates")


def _files_sql(files: list[str]) -> str:
    return "[" + ", ".join("'" + f.replace("'", "''") + "'" for f in files) + "]"


def write_tables(
    con: Any,
    events: pa.Table | None = None,
    states: pa.Table | None = None,
    labels: pa.Table | None = None,
    dead: pa.Table | None = None,
    offsets: pa.Table | None = None,
    archive_dir: Path | None = None,
    archive_mark: float = float("-inf"),
    index: IdIndex | None = None,
) -> dict[str, int]:
    """Write one batch and its offsets in one transaction; return rows inserted per table.

    Parameters
    ----------
    con : duckdb.DuckDBPyConnection
        The store's connection; the caller holds the store's lock.
    events, states, labels, dead, offsets : pyarrow.Table, optional
        Tables with ``EVENT_SCHEMA``, ``STATE_SCHEMA``, ``LABEL_SCHEMA``,
        ``DEAD_SCHEMA`` and ``OFFSET_SCHEMA``. Offsets are upserted.
    archive_dir : Path, optional
        Parquet archive to check for events older than ``archive_mark``.
    archive_mark : float
        Rows with ``ts`` below this were archived, seconds since the Unix epoch.
    index : IdIndex, optional
        Hashes of the stored event ids (:mod:`monitor.store.id_index`), extended
        with the inserted ones once the transaction commits. Default: built from
        the store's events on each call (slow; :class:`~monitor.store.database.Store`
        keeps one).

    Returns
    -------
    dict of str -> int
        ``events``, ``states``, ``labels``, ``dead_letters``.

    Raises
    ------
    duckdb.Error
        The write failed; nothing of the batch, offsets included, was stored.
    """
    inserted = {"events": 0, "states": 0, "labels": 0, "dead_letters": 0}
    if index is None and events is not None and events.num_rows:
        index = IdIndex.load(con)
    hashes = None
    con.execute("BEGIN TRANSACTION")
    try:
        if events is not None and events.num_rows:
            events = first_per_id(con, events)
            with_states = states is not None and states.num_rows > 0
            new, hashes = _insert_events(con, events, archive_dir, archive_mark, with_states, index)
            inserted["events"] = new if isinstance(new, int) else new.num_rows
            if with_states and inserted["events"]:
                states = first_per_id(con, states)
                if inserted["events"] < events.num_rows:
                    states = states.filter(pc.is_in(states.column("event_id"), new.column(0)))
                inserted["states"] = _insert(con, "INSERT INTO states", states)
        if labels is not None and labels.num_rows:
            inserted["labels"] = _insert(con, "INSERT OR IGNORE INTO labels", labels)
        if dead is not None and dead.num_rows:
            inserted["dead_letters"] = _insert(con, "INSERT OR IGNORE INTO dead_letters", dead)
        if offsets is not None and offsets.num_rows:
            _insert(con, "INSERT OR REPLACE INTO offsets", offsets)
        con.execute("COMMIT")
    except BaseException:
        with contextlib.suppress(Exception):  # DuckDB may have aborted it already (disk full)
            con.execute("ROLLBACK")
        raise
    if hashes is not None and index is not None:
        index.add(hashes)
    return inserted


def _insert(con: Any, verb: str, table: pa.Table) -> int:
    if table.num_rows == 0:
        return 0
    con.register("_batch", table)
    try:
        return int(con.execute(f"{verb} SELECT * FROM _batch").fetchone()[0])
    finally:
        _unregister(con, "_batch")


def _unregister(con: Any, name: str) -> None:
    """Drop a registered Arrow table; inside an aborted transaction the error would mask
    the original one, and the next ``register`` of the name replaces it anyway."""
    with contextlib.suppress(Exception):
        con.unregister(name)
