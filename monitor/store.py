"""DuckDB store: events, labels, dead letters, consumer offsets, detector runs, alerts.

One DuckDB file, opened by one process (DuckDB allows a single writer). All
access goes through one connection guarded by a lock, so the ingest thread and
the scheduler can share a :class:`Store`. Timestamps are seconds since the Unix
epoch (``DOUBLE``), as in :mod:`collectors.events`.

Exactly-once ingest: :meth:`Store.write_batch` writes rows and the next Kafka
offsets in one transaction, and ignores events whose ``event_id`` is already
stored, so a replayed message never doubles a row.
"""

from __future__ import annotations

import json
import math
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from collectors.events import LabelEvent, ScoredEvent
from monitor.schema import (  # noqa: F401 - DeadLetter is part of the store's API
    DDL,
    DEAD_SCHEMA,
    EVENT_SCHEMA,
    LABEL_SCHEMA,
    OFFSET_SCHEMA,
    ROWS,
    SCHEMA_VERSION,
    VERSION_DDL,
    DeadLetter,
)


class StoreError(RuntimeError):
    """The store file cannot be opened or has a schema this build does not read."""


def _columns(rows: list[Any], names: list[str]) -> dict[str, list[Any]]:
    return {n: [getattr(r, n) for r in rows] for n in names}


def _window(column: str, start: float | None, end: float | None) -> tuple[str, list[Any]]:
    clauses, params = [], []
    if start is not None:
        clauses.append(f"{column} >= ?")
        params.append(float(start))
    if end is not None:
        clauses.append(f"{column} < ?")
        params.append(float(end))
    if start is not None and end is not None and start > end:
        raise ValueError(f"window start {start} is after end {end}")
    return (" AND ".join(clauses) or "TRUE"), params


class Store:
    """The monitor's DuckDB database.

    Parameters
    ----------
    path : str or Path
        DuckDB file; its parent directory is created. ``":memory:"`` for a
        throw-away store.

    Raises
    ------
    StoreError
        The file cannot be opened (for instance, another process holds it) or
        was written by a newer schema version.
    """

    def __init__(self, path: str | Path) -> None:
        import duckdb

        self.path = path if str(path) == ":memory:" else Path(path)
        if isinstance(self.path, Path):
            self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._con = duckdb.connect(str(self.path))
        except duckdb.Error as exc:
            raise StoreError(f"cannot open store {self.path}: {exc}") from exc
        self._lock = threading.RLock()
        with self._lock:
            self._con.execute(VERSION_DDL)
            version = self._con.execute("SELECT max(version) FROM schema_version").fetchone()[0]
            if version is not None and version > SCHEMA_VERSION:
                self._con.close()
                raise StoreError(
                    f"store {self.path} has schema version {version}, "
                    f"this build reads up to {SCHEMA_VERSION}"
                )
            self._con.execute(DDL)
            if version is None:
                self._con.execute(
                    "INSERT INTO schema_version VALUES (?, ?)", [SCHEMA_VERSION, time.time()]
                )

    # -- ingest ---------------------------------------------------------------
    def write_batch(
        self,
        events: list[ScoredEvent] = (),  # type: ignore[assignment]
        labels: list[LabelEvent] = (),  # type: ignore[assignment]
        dead_letters: list[DeadLetter] = (),  # type: ignore[assignment]
        offsets: dict[tuple[str, int], int] | None = None,
    ) -> dict[str, int]:
        """Write rows and next offsets in one transaction; idempotent on ``event_id``.

        Events or labels whose ``event_id`` is already stored (or repeated in the
        batch: the first wins) are ignored, as are dead letters already stored at
        the same (topic, partition, offset). Offsets are upserted.

        Parameters
        ----------
        events, labels, dead_letters : list
            Rows to insert.
        offsets : dict of (topic, partition) -> int, optional
            Next offset to consume for each partition.

        Returns
        -------
        dict of str -> int
            Rows actually inserted: ``events``, ``labels``, ``dead_letters``.

        Raises
        ------
        TypeError
            A row is not of the expected class. Nothing is written then.
        """
        batches = {}
        for table, rows in (("events", events), ("labels", labels), ("dead_letters", dead_letters)):
            cls, schema = ROWS[table]
            bad = next((r for r in rows if not isinstance(r, cls)), None)
            if bad is not None:
                raise TypeError(f"{table} must hold {cls.__name__}, got {type(bad).__name__}")
            batches[table] = pa.Table.from_pydict(_columns(rows, schema.names), schema=schema)
        items = sorted((offsets or {}).items())
        batches["offsets"] = pa.Table.from_pylist(
            [{"topic": t, "partition": p, "next_offset": o} for (t, p), o in items],
            schema=OFFSET_SCHEMA,
        )
        inserted = {"events": 0, "labels": 0, "dead_letters": 0, "offsets": 0}
        with self._lock:
            con = self._con
            con.execute("BEGIN TRANSACTION")
            try:
                for table, arrow in batches.items():
                    if arrow.num_rows:
                        verb = "INSERT OR REPLACE" if table == "offsets" else "INSERT OR IGNORE"
                        con.register("_batch", arrow)
                        n = con.execute(f"{verb} INTO {table} SELECT * FROM _batch").fetchone()[0]
                        con.unregister("_batch")
                        inserted[table] = int(n)
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise
        del inserted["offsets"]
        return inserted

    def stored_offsets(self) -> dict[tuple[str, int], int]:
        """Return the next offset to consume per (topic, partition)."""
        with self._lock:
            rows = self._con.execute(
                'SELECT topic, "partition", next_offset FROM offsets'
            ).fetchall()
        return {(t, int(p)): int(o) for t, p, o in rows}

    def clear_offsets(self, topic: str | None = None) -> None:
        """Forget stored offsets (all, or one topic's): ingest restarts from the beginning.

        Needed after a memory-only broker restarts, since its offsets start again at 0.
        Already stored events are not duplicated (``event_id`` is a primary key).
        """
        where, params = ("topic = ?", [topic]) if topic is not None else ("TRUE", [])
        with self._lock:
            self._con.execute(f"DELETE FROM offsets WHERE {where}", params)

    # -- reads ----------------------------------------------------------------
    def confidences(
        self, start: float | None = None, end: float | None = None, model_id: str | None = None
    ) -> np.ndarray:
        """Calibrated confidences of events with ``start <= ts < end``, in time order.

        Returns
        -------
        ndarray of shape (n_events,), float64
            Probabilities in [0, 1].

        Raises
        ------
        ValueError
            ``start > end``.
        """
        where, params = _window("ts", start, end)
        if model_id is not None:
            where += " AND model_id = ?"
            params.append(model_id)
        with self._lock:
            rows = self._con.execute(
                f"SELECT confidence FROM events WHERE {where} ORDER BY ts, event_id", params
            ).fetchnumpy()
        return np.asarray(rows["confidence"], dtype=np.float64)

    def labelled(
        self, start: float | None = None, end: float | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Confidence and correctness of labelled events with ``start <= event ts < end``.

        Returns
        -------
        confidence : ndarray of shape (n_labelled,), float64
            Calibrated probabilities in [0, 1].
        correct : ndarray of shape (n_labelled,), bool
            Whether each answer was right.

        Raises
        ------
        ValueError
            ``start > end``.
        """
        where, params = _window("ts", start, end)
        with self._lock:
            cols = self._con.execute(
                f"SELECT confidence, correct FROM labelled_events WHERE {where} "
                "ORDER BY ts, event_id",
                params,
            ).fetchnumpy()
        return (
            np.asarray(cols["confidence"], dtype=np.float64),
            np.asarray(cols["correct"], dtype=bool),
        )

    # -- detector runs and alerts ---------------------------------------------
    def record_detector_run(
        self,
        detector: str,
        subject: str,
        statistic: float,
        threshold: float,
        is_drift: bool,
        n_reference: int,
        n_current: int,
        window_start: float | None = None,
        window_end: float | None = None,
        details: dict[str, Any] | None = None,
        ts: float | None = None,
    ) -> int:
        """Store one detector result; return its id.

        ``details`` must be JSON-serialisable (NaN becomes ``null``), e.g.
        ``{"p_value": 0.01, "bins": [...]}``.

        Raises
        ------
        TypeError
            ``details`` is not JSON-serialisable.
        """
        body = None if details is None else json.dumps(_json_safe(details), allow_nan=False)
        with self._lock:
            row = self._con.execute(
                "INSERT INTO detector_runs (ts, detector, subject, window_start, window_end, "
                "statistic, threshold, is_drift, n_reference, n_current, details) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
                [
                    time.time() if ts is None else float(ts),
                    detector,
                    subject,
                    window_start,
                    window_end,
                    _nan_to_none(statistic),
                    _nan_to_none(threshold),
                    bool(is_drift),
                    int(n_reference),
                    int(n_current),
                    body,
                ],
            ).fetchone()
        return int(row[0])

    def record_alert(
        self,
        kind: str,
        detector: str,
        subject: str,
        severity: str,
        message: str,
        statistic: float | None,
        threshold: float | None,
        ts: float | None = None,
    ) -> int:
        """Store one alert; return its id."""
        with self._lock:
            row = self._con.execute(
                "INSERT INTO alerts (ts, kind, detector, subject, severity, message, statistic, "
                "threshold) VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
                [
                    time.time() if ts is None else float(ts),
                    kind,
                    detector,
                    subject,
                    severity,
                    message,
                    _nan_to_none(statistic),
                    _nan_to_none(threshold),
                ],
            ).fetchone()
        return int(row[0])

    def alerts(self, limit: int = 100) -> list[dict[str, Any]]:
        """Most recent alerts first, at most ``limit``."""
        if int(limit) < 0:
            raise ValueError(f"limit must be >= 0, got {limit}")
        with self._lock:
            cur = self._con.execute(
                "SELECT * FROM alerts ORDER BY ts DESC, id DESC LIMIT ?", [int(limit)]
            )
            names = [d[0] for d in cur.description]
            return [dict(zip(names, row)) for row in cur.fetchall()]

    def counts(self) -> dict[str, int]:
        """Row counts of ``events``, ``labels``, ``dead_letters`` and ``alerts``."""
        with self._lock:
            return {
                t: int(self._con.execute(f"SELECT count(*) FROM {t}").fetchone()[0])
                for t in ("events", "labels", "dead_letters", "alerts")
            }

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


def _nan_to_none(x: float | None) -> float | None:
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else float(x)


def _json_safe(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _json_safe(obj.tolist())
    if isinstance(obj, np.generic):
        return _json_safe(obj.item())
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj
