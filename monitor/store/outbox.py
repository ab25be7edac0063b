"""The store's alert outbox: one row per alert and external sink until it is delivered.

A mixin of :class:`monitor.store.database.Store`. Rows are written in the same
store as the alert itself, so an alert that was stored is never lost on its way
out: :mod:`monitor.alerts.outbox` retries each row with backoff until the sink
takes it, across daemon restarts.
"""

from __future__ import annotations

import time
from typing import Any


class OutboxMixin:
    """Methods of :class:`monitor.store.database.Store` for the alert outbox."""

    _con: Any
    _lock: Any

    def enqueue_alert(self, sink: str, payload: str, now: float | None = None) -> int:
        """Queue ``payload`` (the alert's JSON) for ``sink``; due at once. Returns the row id."""
        now = time.time() if now is None else float(now)
        with self._lock:
            row = self._con.execute(
                "INSERT INTO alert_outbox (created_ts, sink, payload, attempts, next_try) "
                "VALUES (?, ?, ?, 0, ?) RETURNING id",
                [now, sink, payload, now],
            ).fetchone()
        return int(row[0])

    def due_alerts(self, sink: str, now: float, limit: int = 100) -> list[tuple[int, str, int]]:
        """Undelivered rows of ``sink`` due by ``now``, oldest first: (id, payload, attempts)."""
        with self._lock:
            return self._con.execute(
                "SELECT id, payload, attempts FROM alert_outbox WHERE sink = ? AND "
                "delivered_ts IS NULL AND next_try <= ? ORDER BY id LIMIT ?",
                [sink, float(now), int(limit)],
            ).fetchall()

    def mark_delivered(self, row_id: int, now: float) -> None:
        """The sink took the row."""
        with self._lock:
            self._con.execute(
                "UPDATE alert_outbox SET delivered_ts = ?, attempts = attempts + 1, "
                "last_error = NULL WHERE id = ?",
                [float(now), int(row_id)],
            )

    def mark_failed(self, row_id: int, error: str, next_try: float) -> None:
        """An attempt failed; try again at ``next_try`` (seconds since the epoch)."""
        with self._lock:
            self._con.execute(
                "UPDATE alert_outbox SET attempts = attempts + 1, last_error = ?, next_try = ? "
                "WHERE id = ?",
                [error[:500], float(next_try), int(row_id)],
            )

    def outbox_counts(self) -> dict[str, dict[str, int]]:
        """Per sink: ``{"delivered": n, "pending": n}``."""
        with self._lock:
            rows = self._con.execute(
                "SELECT sink, count(delivered_ts), count(*) - count(delivered_ts) "
                "FROM alert_outbox GROUP BY sink ORDER BY sink"
            ).fetchall()
        return {s: {"delivered": int(d), "pending": int(p)} for s, d, p in rows}
