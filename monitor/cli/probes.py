"""``vlm-monitor probes``: every probe version the registry served, with its lifecycle."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from monitor.cli.common import ConfigOption, app, load_or_exit
from monitor.cli.daemon_client import read


def _utc(ts: float | None) -> str:
    if ts is None:
        return ""
    return datetime.fromtimestamp(float(ts), tz=timezone.utc).strftime("%Y-%m-%d %H:%M")


def _figure(metrics: dict | None, name: str) -> str:
    value = ((metrics or {}).get("challenger") or {}).get(name)
    return "" if value is None else f"{value:.3f}"


@app.command()
def probes(
    config: ConfigOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
) -> None:
    """List probe versions: champion, retired or rejected, since when, why, held-out figures.

    While `vlm-monitor run` holds the store, the daemon answers.
    """
    cfg = load_or_exit(config)
    rows = read(cfg, lambda store: store.probes(), lambda daemon: daemon.call("GET", "/api/probes"))
    if as_json:
        for row in rows:
            typer.echo(json.dumps(row, default=str))
        return
    table = Table(title=f"probe versions ({len(rows)})", title_justify="left")
    for col in ("version", "status", "since (UTC)", "model", "layer", "AUROC", "ECE"):
        table.add_column(col, no_wrap=True)
    table.add_column("why", overflow="fold")
    style = {"champion": "bold green", "retired": "dim", "rejected": "yellow"}
    for r in rows:
        table.add_row(
            r["version"], r["status"], _utc(r.get("status_ts") or r["created_ts"]),
            r["model_id"], str(r["layer"]), _figure(r["metrics"], "auroc"),
            _figure(r["metrics"], "ece"), r.get("reason") or "",
            style=style.get(r["status"], ""),
        )  # fmt: skip
    Console().print(table if rows else "no probe versions recorded")
