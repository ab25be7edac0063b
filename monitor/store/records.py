"""The store's small tables: detector runs, alerts, probes, and dead-letter summaries.

A mixin of :class:`monitor.store.database.Store` (it uses the store's ``_con`` and ``_lock``).
"""

from __future__ import annotations

import json
import math
import time
from typing import Any

import numpy as np


class RecordsMixin:
    """Methods of :class:`monitor.store.database.Store` for its small tables."""

    _con: Any
    _lock: Any

    def _rows(self, sql: str, params: list[Any] | None = None) -> list[dict[str, Any]]:
        with self._lock:
            cur = self._con.execute(sql, params or [])
            names = [d[0] for d in cur.description]
            return [dict(zip(names, row)) for row in cur.fetchall()]

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
        return self._rows("SELECT * FROM alerts ORDER BY ts DESC, id DESC LIMIT ?", [int(limit)])

    def record_probe(
        self,
        version: str,
        model_id: str,
        layer: int,
        pooling: str,
        hidden_dim: int,
        path: str,
        status: str = "candidate",
        metrics: dict[str, Any] | None = None,
        ts: float | None = None,
        status_ts: float | None = None,
        reason: str | None = None,
    ) -> None:
        """Register a probe version (or update its status, path and metrics).

        Parameters
        ----------
        version : str
            Probe version, the key.
        model_id, layer, pooling, hidden_dim : str, int, str, int
            Which model, decoder layer and pooling the probe reads, and its input width.
        path : str
            Where its safetensors + JSON files are.
        status : str
            For instance ``"candidate"``, ``"champion"``, ``"retired"``.
        metrics : dict, optional
            JSON-serialisable evaluation results (AUROC, ECE, ...); NaN becomes null.
        ts : float, optional
            Creation time, seconds since the Unix epoch; default now.
        status_ts : float, optional
            When it reached ``status``, seconds since the Unix epoch; default ``ts``.
        reason : str, optional
            Why it has that status (the promotion rule's verdict, what replaced it).
        """
        body = None if metrics is None else json.dumps(_json_safe(metrics), allow_nan=False)
        created = time.time() if ts is None else float(ts)
        with self._lock:
            self._con.execute(
                "INSERT OR REPLACE INTO probes (version, created_ts, model_id, layer, pooling, "
                "hidden_dim, path, status, metrics, status_ts, reason) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    version,
                    created,
                    model_id,
                    int(layer),
                    pooling,
                    int(hidden_dim),
                    str(path),
                    status,
                    body,
                    created if status_ts is None else float(status_ts),
                    reason,
                ],
            )

    def probes(self) -> list[dict[str, Any]]:
        """Registered probes, newest first; ``metrics`` parsed from JSON."""
        rows = self._rows("SELECT * FROM probes ORDER BY created_ts DESC, version")
        for row in rows:
            row["metrics"] = None if row["metrics"] is None else json.loads(row["metrics"])
        return rows

    def dead_letter_counts(self) -> list[tuple[str, int]]:
        """Dead letters grouped by error (the message up to its first colon), most first."""
        with self._lock:
            rows = self._con.execute(
                "SELECT split_part(error, ':', 1) AS kind, count(*) AS n FROM dead_letters "
                "GROUP BY kind ORDER BY n DESC, kind"
            ).fetchall()
        return [(str(k), int(n)) for k, n in rows]


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
