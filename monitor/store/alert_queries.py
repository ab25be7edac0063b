"""Queries over the detector history and the alerts (``detector_runs``, ``alerts``).

Used by the alert policy (persistence, cooldown), ``vlm-monitor alerts`` and the
weekly report; all through :meth:`monitor.store.database.Store.execute`.
"""

from __future__ import annotations

from typing import Any


def recent_drift_flags(store: Any, detector: str, subject: str, n: int) -> list[bool]:
    """``is_drift`` of the last ``n`` stored runs of a detector on a subject, newest first.

    Runs that lacked data (``statistic IS NULL``) are skipped: they neither
    confirm nor break a run of drifting windows.
    """
    rows = store.execute(
        "SELECT is_drift FROM detector_runs WHERE detector = ? AND subject = ? "
        "AND statistic IS NOT NULL ORDER BY ts DESC, id DESC LIMIT ?",
        [detector, subject, int(n)],
    )
    return [bool(r[0]) for r in rows]


def last_alert(store: Any, detector: str, subject: str) -> dict[str, Any] | None:
    """The most recent stored alert of a detector on a subject (``ts``, ``severity``...)."""
    rows = store.execute(
        "SELECT ts, severity, kind, statistic FROM alerts WHERE detector = ? AND subject = ? "
        "ORDER BY ts DESC, id DESC LIMIT 1",
        [detector, subject],
    )
    if not rows:
        return None
    ts, severity, kind, statistic = rows[0]
    return {"ts": ts, "severity": severity, "kind": kind, "statistic": statistic}


def list_alerts(
    store: Any,
    limit: int = 50,
    kind: str | None = None,
    since: float | None = None,
    subject: str | None = None,
) -> list[dict[str, Any]]:
    """Stored alerts, newest first, optionally filtered by kind, time and subject prefix.

    Raises
    ------
    ValueError
        ``limit < 0``.
    """
    if int(limit) < 0:
        raise ValueError(f"limit must be >= 0, got {limit}")
    clauses, params = ["TRUE"], []
    if kind is not None:
        clauses.append("kind = ?")
        params.append(kind)
    if since is not None:
        clauses.append("ts >= ?")
        params.append(float(since))
    if subject is not None:
        clauses.append("starts_with(subject, ?)")
        params.append(subject)
    cols = ["id", "ts", "kind", "detector", "subject", "severity", "message", "statistic"]
    rows = store.execute(
        f"SELECT {', '.join(cols)}, threshold FROM alerts WHERE {' AND '.join(clauses)} "
        "ORDER BY ts DESC, id DESC LIMIT ?",
        params + [int(limit)],
    )
    return [dict(zip(cols + ["threshold"], r)) for r in rows]


def alert_counts(store: Any) -> dict[tuple[str, str], int]:
    """Number of stored alerts per (kind, severity)."""
    rows = store.execute("SELECT kind, severity, count(*) FROM alerts GROUP BY kind, severity")
    return {(k, s): int(n) for k, s, n in rows}
