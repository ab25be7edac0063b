"""Retention: move old events and states to a Parquet archive partitioned by day.

Layout (Hive style, readable by DuckDB, Spark, Trino, pandas)::

    <archive_dir>/events/day=2026-11-21/part-<run_id>-0.parquet
    <archive_dir>/states/day=2026-11-21/part-<run_id>-0.parquet

``day`` is the UTC calendar day of the event's ``ts``. Views ``all_events`` and
``all_states`` read the live table UNION ALL the archive, so window queries do
not care where a row lives.

Crash safety: a run writes its files under ``<archive_dir>/_staging/<run_id>/``,
then deletes the archived rows and records the run in ``archive_runs`` in one
transaction, and only then moves the files into place. :func:`recover` (run when
a store opens) finishes the moves of a committed run and deletes the files of a
run that never committed, so a row is never both live and archived, nor lost.
"""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from monitor.store.schema import ARCHIVED, EVENT_OPTIONAL

DAY_S = 86_400.0
_STAGING = "_staging"
_DAY_SQL = "strftime(make_timestamp(CAST(floor(ts * 1e6) AS BIGINT)), '%Y-%m-%d')"


@dataclass(frozen=True)
class ArchiveResult:
    """What one retention run moved.

    Attributes
    ----------
    run_id : str
        Name of the run (also in the Parquet file names).
    cutoff : float
        Rows with ``ts < cutoff`` were archived, seconds since the Unix epoch (a UTC midnight).
    n_events, n_states : int
        Rows moved from ``events`` and ``states``.
    days : tuple of str
        The day partitions written to, ``YYYY-MM-DD``.
    """

    run_id: str
    cutoff: float
    n_events: int
    n_states: int
    days: tuple[str, ...]


def cutoff_for(days: float, now: float | None = None) -> float:
    """The UTC midnight at or before ``now - days`` days, seconds since the Unix epoch.

    Raises
    ------
    ValueError
        ``days`` is negative or not finite.
    """
    if not math.isfinite(days) or days < 0:
        raise ValueError(f"retention days must be a finite number >= 0, got {days}")
    now = time.time() if now is None else float(now)
    return math.floor((now - days * DAY_S) / DAY_S) * DAY_S


def day_of(ts: float) -> str:
    """The UTC day ``YYYY-MM-DD`` of a Unix timestamp (seconds)."""
    return time.strftime("%Y-%m-%d", time.gmtime(math.floor(ts)))


def archived_files(
    archive_dir: Path | None, table: str, days: list[str] | None = None
) -> list[str]:
    """Parquet files of ``table`` in the archive (all days, or the given ones), sorted."""
    if archive_dir is None:
        return []
    root = Path(archive_dir) / table
    dirs = [root / f"day={d}" for d in days] if days is not None else sorted(root.glob("day=*"))
    return sorted(str(f) for d in dirs if d.is_dir() for f in d.glob("*.parquet"))


def days_between(start: float, end: float) -> list[str]:
    """Every UTC day ``YYYY-MM-DD`` from the day of ``start`` to the day of ``end``."""
    first, last = math.floor(start / DAY_S), math.floor(end / DAY_S)
    return [day_of(d * DAY_S) for d in range(int(first), int(last) + 1)]


def _sql_list(files: list[str]) -> str:
    return "[" + ", ".join("'" + f.replace("'", "''") + "'" for f in files) + "]"


def create_views(con: Any, archive_dir: Path | None) -> None:
    """(Re)create ``all_events``, ``all_states`` and ``labelled_events`` over live + archive."""
    for table, columns in ARCHIVED.items():
        cols = ", ".join(columns)
        files = archived_files(archive_dir, table)
        sql = f"SELECT {cols} FROM {table}"
        if files:
            glob = str(Path(archive_dir) / table / "day=*" / "*.parquet").replace("'", "''")
            source = f"read_parquet('{glob}', hive_partitioning = false, union_by_name = true)"
            held = {r[0] for r in con.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()}
            archived = ", ".join(  # files written before a column existed read it as NULL
                c if c in held or c not in EVENT_OPTIONAL else f"NULL::{EVENT_OPTIONAL[c]} AS {c}"
                for c in columns
            )
            sql += f" UNION ALL SELECT {archived} FROM {source}"
        con.execute(f"CREATE OR REPLACE VIEW all_{table} AS {sql}")
    con.execute(f"CREATE OR REPLACE VIEW labelled_events AS {labelled_events_sql('labels')}")


def labelled_events_sql(labels: str, events: str = "all_events") -> str:
    """The ``labelled_events`` view's query: each label joined to its event."""
    return (
        "SELECT e.*, l.correct, l.ts AS label_ts, l.source AS label_source "
        f"FROM {labels} AS l JOIN {events} AS e USING (event_id)"
    )


def watermark(con: Any) -> float:
    """The largest cutoff of a committed run (``-inf`` when nothing was archived)."""
    value = con.execute("SELECT max(cutoff) FROM archive_runs").fetchone()[0]
    return float("-inf") if value is None else float(value)


def _publish(staging: Path, archive_dir: Path) -> None:
    for src in sorted(staging.rglob("*.parquet")):
        dst = archive_dir / src.relative_to(staging)
        dst.parent.mkdir(parents=True, exist_ok=True)
        os.replace(src, dst)
    _remove(staging)


def _remove(staging: Path) -> None:
    """Delete a run's staging directory, and ``_staging`` itself once empty."""
    shutil.rmtree(staging, ignore_errors=True)
    with contextlib.suppress(OSError):
        staging.parent.rmdir()


def recover(con: Any, archive_dir: Path | None) -> list[str]:
    """Finish or undo interrupted runs; return the run ids that were finished.

    Files of a run recorded in ``archive_runs`` are moved into place; files of an
    unrecorded run (it crashed before its transaction committed, so its rows are
    still live) are deleted.
    """
    if archive_dir is None or not (Path(archive_dir) / _STAGING).is_dir():
        return []
    committed = {r[0] for r in con.execute("SELECT run_id FROM archive_runs").fetchall()}
    finished = []
    for staging in sorted((Path(archive_dir) / _STAGING).iterdir()):
        if staging.name in committed:
            _publish(staging, Path(archive_dir))
            finished.append(staging.name)
        else:
            _remove(staging)
    return finished


def archive(con: Any, archive_dir: Path, cutoff: float, now: float | None = None) -> ArchiveResult:
    """Move rows with ``ts < cutoff`` from ``events`` and ``states`` to Parquet.

    The caller holds the store's lock, so no write interleaves.

    Raises
    ------
    duckdb.Error, OSError
        Writing the files or the transaction failed; live rows are unchanged and
        the staged files are removed.
    """
    archive_dir = Path(archive_dir)
    recover(con, archive_dir)  # a run whose files did not move yet (e.g. disk full)
    run_id = time.strftime("%Y%m%dT%H%M%S", time.gmtime(now)) + "-" + uuid.uuid4().hex[:8]
    staging = archive_dir / _STAGING / run_id
    n = {
        t: con.execute(f"SELECT count(*) FROM {t} WHERE ts < ?", [cutoff]).fetchone()[0]
        for t in ARCHIVED
    }
    if n["events"] == 0 and n["states"] == 0:
        return ArchiveResult(run_id, cutoff, 0, 0, ())
    days = [
        r[0]
        for r in con.execute(
            f"SELECT DISTINCT {_DAY_SQL} FROM events WHERE ts < ? ORDER BY 1", [cutoff]
        ).fetchall()
    ]
    con.execute("BEGIN TRANSACTION")
    try:
        for table, columns in ARCHIVED.items():
            if n[table] == 0:
                continue
            (staging / table).mkdir(parents=True, exist_ok=True)
            target = str(staging / table).replace("'", "''")
            con.execute(
                f"COPY (SELECT {', '.join(columns)}, {_DAY_SQL} AS day FROM {table} "
                f"WHERE ts < {cutoff!r} ORDER BY ts) TO '{target}' (FORMAT parquet, "
                f"PARTITION_BY (day), FILENAME_PATTERN 'part-{run_id}-{{i}}', "
                "OVERWRITE_OR_IGNORE true)"
            )
            con.execute(f"DELETE FROM {table} WHERE ts < ?", [cutoff])
        con.execute(
            "INSERT INTO archive_runs VALUES (?, ?, ?, ?, ?)",
            [run_id, cutoff, time.time() if now is None else now, n["events"], n["states"]],
        )
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        _remove(staging)
        raise
    _publish(staging, archive_dir)
    create_views(con, archive_dir)
    return ArchiveResult(run_id, cutoff, int(n["events"]), int(n["states"]), tuple(days))
