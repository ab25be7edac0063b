"""``vlm-monitor report --week 2026-W47``: write the weekly HTML report and JSON summary."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from monitor.cli.common import ConfigOption, app, load_or_exit
from monitor.cli.daemon_client import DaemonClient, read


@app.command()
def report(
    config: ConfigOption = None,
    week: Annotated[
        str | None, typer.Option(help="ISO week, e.g. 2026-W47 (default: the last complete one).")
    ] = None,
    out: Annotated[
        Path | None, typer.Option(help="Output directory (default: <reports_dir>/weekly).")
    ] = None,
) -> None:
    """Write the weekly report: evidently distributions, PNG figures, JSON summary.

    While `vlm-monitor run` holds the store, the daemon writes it.
    """
    from monitor.reports.weekly import iso_week_bounds, previous_week, write_weekly_report

    week = week or previous_week(time.time())
    try:
        iso_week_bounds(week)
    except ValueError as exc:
        typer.echo(f"error: --week: {exc}", err=True)
        raise typer.Exit(2) from None
    cfg = load_or_exit(config)

    def local(store: object) -> dict:
        try:
            written = write_weekly_report(cfg, store, week, out_dir=out)
        except ValueError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(1) from None
        return {
            "html": str(written.html),
            "size_bytes": written.html.stat().st_size,
            "summary": str(written.summary),
            "figures": [str(f) for f in written.figures],
        }

    def remote(daemon: DaemonClient) -> dict:
        if out is not None:
            typer.echo("error: --out is not available while `vlm-monitor run` holds the store "
                       "(the daemon writes under reports_dir)", err=True)  # fmt: skip
            raise typer.Exit(2)
        answer = daemon.call("POST", "/api/report", week=week)
        typer.echo(f"written by the running daemon (pid {daemon.pid})")
        return answer

    written = read(cfg, local, remote)
    typer.echo(f"report: {written['html']} ({written['size_bytes'] / 1e3:.0f} kB)")
    typer.echo(f"summary: {written['summary']}")
    for fig in written["figures"]:
        typer.echo(f"figure: {fig}")
