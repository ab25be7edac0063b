"""DuckDB store: events, states, labels, dead letters, offsets, detector runs, alerts, probes.

One DuckDB file, opened by one process (DuckDB allows a single writer). All
access goes through one connection guarded by a lock, so the ingest thread and
the scheduler can share a :class:`Store`. Timestamps are seconds since the Unix
epoch (``DOUBLE``), as in :mod:`collectors.wire.events`. The schema and its versions
are in :mod:`monitor.store.schema` and :mod:`monitor.store.migrations`; an older file is
migrated when opened.

Exactly-once ingest: :meth:`Store.write_arrow` (and :meth:`Store.write_batch`,
its row-object form) writes rows and the next Kafka offsets in one transaction
and ignores events whose ``event_id`` is already stored (:mod:`monitor.store.writes`),
so a replayed message never doubles a row. Old rows move to a Parquet archive
(:meth:`Store.archive`); every read below covers live and archived rows.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

import pyarrow as pa

from collectors.wire.events import LabelEvent, ScoredEvent
from monitor.store import guard, outbox, reads, records, retention, writes
from monitor.store.id_index import IdIndex
from monitor.store.migrations import StoreError, migrate
from monitor.store.schema import SCHEMA_VERSION, DeadLetter

__all__ = ["SCHEMA_VERSION", "DeadLetter", "Store", "StoreError"]

log = logging.getLogger(__name__)


class Store(reads.ReadsMixin, records.RecordsMixin, outbox.OutboxMixin):
    """The monitor's DuckDB database.

    Parameters
    ----------
    path : str or Path
        DuckDB file; its parent directory is created. ``":memory:"`` for a
        throw-away store.
    archive_dir : str or Path, optional
        Parquet archive of old rows (:mod:`monitor.store.retention`). Recorded in the
        file, so a later open without it finds the same archive. Default: the
        recorded one, else ``<path's directory>/archive``; none for ``":memory:"``.
    read_only : bool
        Open without writing (no migration): for inspecting a file that no
        process holds open for writing.

    Raises
    ------
    StoreError
        The file cannot be opened (for instance, another process holds it),
        was written by a newer schema version, or needs a migration while
        ``read_only``.
    """

    def __init__(
        self, path: str | Path, archive_dir: str | Path | None = None, read_only: bool = False
    ) -> None:
        import duckdb

        memory = str(path) == ":memory:"
        self.path: str | Path = ":memory:" if memory else Path(path)
        self.archive_dir = None if archive_dir is None else Path(archive_dir).resolve()
        if not memory and not read_only:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        try:
            con = duckdb.connect(str(self.path), read_only=read_only)
        except duckdb.Error as exc:
            raise guard.damaged_error(self.path, exc) or StoreError(
                f"cannot open store {self.path}: {exc}"
            ) from exc
        self._con = guard.GuardedConnection(con, self.path)
        self._lock = threading.RLock()
        self._ids: IdIndex | None = None  # built at the first write
        self.read_only = read_only
        self._file_id = None if memory else guard.file_id(Path(path))
        try:
            if read_only:
                try:
                    version = self._con.execute("SELECT max(version) FROM schema_version")
                    version = version.fetchone()
                except duckdb.Error as exc:
                    raise StoreError(f"{self.path} is not a vlm-monitor store: {exc}") from exc
                if version[0] != SCHEMA_VERSION:
                    raise StoreError(
                        f"store {self.path} has schema version {version[0]}, this build "
                        f"reads {SCHEMA_VERSION}; open it once read-write to migrate it"
                    )
            else:
                migrate(self._con, self.path)
            self._settle_archive_dir(memory)
            if not read_only:
                retention.recover(self._con, self.archive_dir)
                retention.create_views(self._con, self.archive_dir)
            self._mark = retention.watermark(self._con)
        except BaseException:
            self._con.close()
            raise

    @classmethod
    def from_config(cls, store: Any, read_only: bool = False) -> Store:
        """Open the store of a ``StoreConfig`` (its ``path`` and ``archive_dir``)."""
        return cls(store.path, archive_dir=store.archive_dir, read_only=read_only)

    def _settle_archive_dir(self, memory: bool) -> None:
        """Use the archive directory recorded in the file unless one is given; record it."""
        row = self._con.execute("SELECT value FROM settings WHERE key = 'archive_dir'").fetchone()
        if self.archive_dir is None:
            if row is not None:
                self.archive_dir = Path(row[0])
            elif not memory:
                self.archive_dir = Path(self.path).resolve().parent / "archive"
        if (
            self.archive_dir is not None
            and not self.read_only
            and (row is None or row[0] != str(self.archive_dir))
        ):
            if row is not None:
                log.warning("store %s: archive directory changed from %s to %s",
                            self.path, row[0], self.archive_dir)  # fmt: skip
            self._con.execute(
                "INSERT OR REPLACE INTO settings VALUES ('archive_dir', ?)", [str(self.archive_dir)]
            )

    # -- ingest ---------------------------------------------------------------
    def write_arrow(
        self,
        events: pa.Table | None = None,
        states: pa.Table | None = None,
        labels: pa.Table | None = None,
        dead_letters: pa.Table | None = None,
        offsets: dict[tuple[str, int], int] | None = None,
        topic_ids: dict[str, str | None] | None = None,
    ) -> dict[str, int]:
        """Write Arrow tables and next offsets in one transaction; idempotent on ``event_id``.

        Parameters
        ----------
        events, states, labels, dead_letters : pyarrow.Table, optional
            Tables with the schemas of :mod:`monitor.store.schema` (``EVENT_SCHEMA``,
            ``STATE_SCHEMA``, ``LABEL_SCHEMA``, ``DEAD_SCHEMA``).
        offsets : dict of (topic, partition) -> int, optional
            Next offset to consume for each partition (upserted).
        topic_ids : dict of topic -> str, optional
            The broker's id of each topic, stored with its offsets.

        Returns
        -------
        dict of str -> int
            Rows inserted: ``events``, ``states``, ``labels``, ``dead_letters``.

        Raises
        ------
        StoreError
            The file was deleted or replaced since it was opened (:meth:`check_file`),
            or its disk is full (the message names the directory and the free space);
            nothing was stored.
        duckdb.Error
            The write failed; nothing was stored.
        """
        offsets_table = writes.offsets_to_arrow(offsets, topic_ids)
        self.check_file()
        with self._lock:
            if self._ids is None:
                self._ids = IdIndex.load(self._con)
            try:
                return writes.write_tables(
                    self._con,
                    events,
                    states,
                    labels,
                    dead_letters,
                    offsets_table,
                    self.archive_dir,
                    self._mark,
                    self._ids,
                )
            except Exception as exc:
                guard.raise_if_disk_full(self.path, exc)
                raise

    def check_file(self) -> None:
        """Raise :class:`StoreError` if the file was deleted or replaced since it was opened."""
        if self._file_id is not None:
            guard.check_unchanged(Path(self.path), self._file_id)

    def write_batch(
        self,
        events: list[ScoredEvent] = (),  # type: ignore[assignment]
        labels: list[LabelEvent] = (),  # type: ignore[assignment]
        dead_letters: list[DeadLetter] = (),  # type: ignore[assignment]
        offsets: dict[tuple[str, int], int] | None = None,
        topic_ids: dict[str, str | None] | None = None,
    ) -> dict[str, int]:
        """Write row objects and next offsets in one transaction; idempotent on ``event_id``.

        Events or labels whose ``event_id`` is already stored (or repeated in the
        batch: the first wins) are ignored, as are dead letters already stored at
        the same coordinates. An event's state goes to the ``states`` table.

        Returns
        -------
        dict of str -> int
            Rows actually inserted: ``events``, ``labels``, ``dead_letters``.

        Raises
        ------
        TypeError
            A row is not of the expected class. Nothing is written then.
        ValueError
            A state is empty or not finite. Nothing is written then.
        """
        event_table, state_table = writes.events_to_arrow(list(events))
        inserted = self.write_arrow(
            event_table,
            state_table,
            writes.labels_to_arrow(list(labels)),
            writes.dead_to_arrow(list(dead_letters)),
            offsets,
            topic_ids,
        )
        return {k: inserted[k] for k in ("events", "labels", "dead_letters")}

    def stored_offsets(self) -> dict[tuple[str, int], int]:
        """Return the next offset to consume per (topic, partition)."""
        with self._lock:
            rows = self._con.execute(
                'SELECT topic, "partition", next_offset FROM offsets'
            ).fetchall()
        return {(t, int(p)): int(o) for t, p, o in rows}

    def offset_rows(self) -> list[tuple[str, int, int, str | None]]:
        """Return ``(topic, partition, next_offset, topic_id)`` rows (topic id None if unknown)."""
        with self._lock:
            rows = self._con.execute(
                'SELECT topic, "partition", next_offset, topic_id FROM offsets '
                'ORDER BY topic, "partition"'
            ).fetchall()
        return [(t, int(p), int(o), tid) for t, p, o, tid in rows]

    def clear_offsets(self, topic: str | None = None) -> None:
        """Forget stored offsets (all, or one topic's): ingest restarts from the beginning.

        Already stored events are not duplicated (``event_id`` is checked on write).
        """
        where, params = ("topic = ?", [topic]) if topic is not None else ("TRUE", [])
        with self._lock:
            self._con.execute(f"DELETE FROM offsets WHERE {where}", params)

    # -- retention ------------------------------------------------------------
    def archive(self, days: float, now: float | None = None) -> retention.ArchiveResult:
        """Move events and states older than ``days`` days (cut at UTC midnight) to Parquet.

        Reads keep covering them through the ``all_events`` and ``all_states`` views.

        Raises
        ------
        StoreError
            The store has no ``archive_dir`` or is read-only.
        ValueError
            ``days`` is negative.
        """
        if self.archive_dir is None or self.read_only:
            raise StoreError(f"store {self.path} has no archive directory or is read-only")
        cutoff = retention.cutoff_for(days, now)
        with self._lock:
            result = retention.archive(self._con, self.archive_dir, cutoff, now)
            self._mark = max(self._mark, retention.watermark(self._con))
        return result

    def execute(self, sql: str, params: list[Any] | None = None) -> list[tuple]:
        """Run one SQL statement under the store's lock and return all rows."""
        with self._lock:
            return self._con.execute(sql, params or []).fetchall()

    # -- lifecycle ------------------------------------------------------------
    def close(self) -> None:
        """Close the connection (checkpointing the file). Idempotent."""
        with self._lock:
            self._con.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Store({str(self.path)!r})"
