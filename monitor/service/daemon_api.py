"""What the daemon answers on its read API (:mod:`monitor.service.read_api`), and where it
says it listens.

The daemon writes ``<store>.daemon.json`` (pid, host, port, start time) once its
endpoint is bound and removes it when it stops; :mod:`monitor.cli.daemon_client`
reads it to find the daemon that holds a store.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from monitor.service.read_api import BadRequest, Handler, float_param, int_param


def address_path(store_path: Path | str) -> Path:
    """Where a running daemon records the address of its read API."""
    return Path(str(store_path) + ".daemon.json")


def write_address(store_path: Path | str, host: str, port: int) -> Path:
    """Record this process as the daemon of ``store_path`` (atomic replace)."""
    path = address_path(store_path)
    body = {"pid": os.getpid(), "host": host, "port": int(port), "started": time.time()}
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(body))
    os.replace(tmp, path)
    return path


def remove_address(store_path: Path | str) -> None:
    """Forget the address, if it is still this process's."""
    path = address_path(store_path)
    try:
        if json.loads(path.read_text()).get("pid") == os.getpid():
            path.unlink()
    except (OSError, ValueError):
        pass


def routes(daemon: Any) -> tuple[dict[str, Handler], dict[str, Handler]]:
    """The GET and POST routes of ``daemon`` (a :class:`monitor.service.daemon.MonitorDaemon`)."""
    from monitor.alerts.dispatch import KINDS
    from monitor.service.status import collect
    from monitor.store import alert_queries

    def alerts(p: dict[str, str]) -> Any:
        kind = p.get("kind") or None
        if kind is not None and kind not in KINDS:
            raise BadRequest(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
        return alert_queries.list_alerts(
            daemon.store,
            int_param(p, "limit", 20),
            kind=kind,
            since=float_param(p, "since"),
            subject=p.get("subject") or None,
        )

    def report(p: dict[str, str]) -> Any:
        from monitor.reports.weekly import iso_week_bounds, previous_week, write_weekly_report

        week = p.get("week") or previous_week(time.time())
        try:
            iso_week_bounds(week)
        except ValueError as exc:
            raise BadRequest(f"week: {exc}") from None
        try:
            written = write_weekly_report(daemon.cfg, daemon.store, week)
        except ValueError as exc:  # e.g. no events that week
            raise BadRequest(str(exc)) from None
        return {
            "week": week,
            "html": str(written.html),
            "size_bytes": written.html.stat().st_size,
            "summary": str(written.summary),
            "figures": [str(f) for f in written.figures],
        }

    def review(p: dict[str, str]) -> Any:
        from monitor.detection.review import review_plan
        from monitor.store.queries import Subject

        model = p.get("model") or daemon.cfg.reliability_monitor.model.id
        subject = Subject(model, p.get("probe") or None, p.get("tag") or None)
        return review_plan(daemon.cfg, daemon.store, subject, int_param(p, "limit", 20, 1))

    get = {
        "/api/health": lambda p: health(daemon),
        "/api/review": review,
        "/api/status": lambda p: collect(daemon.store, detailed=True),
        "/api/alerts": alerts,
        "/api/probes": lambda p: daemon.store.probes(),
        "/api/collectors": lambda p: (
            [] if daemon.heartbeats is None else daemon.heartbeats.collectors()
        ),
    }
    return get, {"/api/report": report}


def health(daemon: Any) -> dict[str, Any]:
    """The daemon's threads, ingest totals and last drift run (JSON-ready)."""
    thread = daemon._thread
    progress = daemon.progress
    run = daemon.last_run
    beats = daemon.heartbeats
    return {
        "pid": os.getpid(),
        "broker_up": None if beats is None else beats.broker_up,
        "collectors": 0 if beats is None else len(beats.latest),
        "ingest": {
            "enabled": daemon._ingest,
            "alive": bool(thread is not None and thread.is_alive()),
            "restarts": daemon.ingest_restart_count,
            "totals": None if progress is None else asdict(progress.totals),
            "seconds_since_last_message": None
            if progress is None
            else time.monotonic() - progress.last_message_at,
        },
        "last_drift_run": None
        if run is None
        else {
            "window": [run.start, run.end],
            "finished": run.now,
            "results": len(run.results),
            "errors": len(run.errors),
            "alerts_sent": len(run.sent),
            "seconds": run.seconds,
        },
    }
