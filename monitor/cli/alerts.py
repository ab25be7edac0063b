"""``vlm-monitor alerts``: list stored alerts, newest first."""

from __future__ import annotations

import json
import time
from datetime import datetime, timezone
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from monitor.cli.common import ConfigOption, app, load_or_exit
from monitor.cli.daemon_client import read


@app.command("alerts")
def alerts_command(
    config: ConfigOption = None,
    limit: Annotated[int, typer.Option(min=0, help="At most this many alerts.")] = 20,
    kind: Annotated[
        str | None, typer.Option(help="Only this kind, e.g. calibration_drift.")
    ] = None,
    since: Annotated[
        str | None, typer.Option(help="Only alerts newer than this, e.g. 7d or 12h.")
    ] = None,
    subject: Annotated[str | None, typer.Option(help="Only subjects starting with this.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
) -> None:
    """List stored alerts (kind, subject, severity, message), newest first.

    While `vlm-monitor run` holds the store, the daemon answers.
    """
    from monitor.alerts.dispatch import KINDS
    from monitor.config.durations import parse_duration
    from monitor.store import alert_queries

    if kind is not None and kind not in KINDS:
        typer.echo(f"error: --kind must be one of {', '.join(KINDS)}, got {kind!r}", err=True)
        raise typer.Exit(2)
    try:
        cutoff = None if since is None else time.time() - parse_duration(since)
    except ValueError as exc:
        typer.echo(f"error: --since: {exc}", err=True)
        raise typer.Exit(2) from None
    cfg = load_or_exit(config)
    rows = read(
        cfg,
        lambda store: alert_queries.list_alerts(
            store, limit, kind=kind, since=cutoff, subject=subject
        ),
        lambda daemon: daemon.call(
            "GET", "/api/alerts", limit=limit, kind=kind, since=cutoff, subject=subject
        ),
    )
    if as_json:
        for row in rows:
            typer.echo(json.dumps(row, default=str))
        return
    table = Table(title=f"vlm-monitor alerts ({len(rows)} shown)", title_justify="left")
    for col in ("time (UTC)", "kind", "severity"):
        table.add_column(col, no_wrap=True)
    for col in ("subject", "message"):
        table.add_column(col, overflow="fold")
    for row in rows:
        when = datetime.fromtimestamp(row["ts"], tz=timezone.utc).strftime("%Y-%m-%d %H:%M")
        style = "bold red" if row["severity"] == "critical" else "yellow"
        cells = (when, row["kind"], row["severity"], row["subject"], row["message"])
        table.add_row(*cells, style=style)
    Console().print(table if rows else "no alerts")
