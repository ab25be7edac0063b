"""``vlm-monitor report --week 2026-W47``: write the weekly HTML report and JSON summary."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from monitor.cli._store import open_store
from monitor.cli.common import ConfigOption, app, load_or_exit


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
    """Write the weekly report: evidently distributions, PNG figures, JSON summary."""
    from monitor.reports.weekly import iso_week_bounds, previous_week, write_weekly_report

    week = week or previous_week(time.time())
    try:
        iso_week_bounds(week)
    except ValueError as exc:
        typer.echo(f"error: --week: {exc}", err=True)
        raise typer.Exit(2) from None
    cfg = load_or_exit(config)
    with open_store(cfg) as store:
        try:
            written = write_weekly_report(cfg, store, week, out_dir=out)
        except ValueError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(1) from None
    size_kb = written.html.stat().st_size / 1e3
    typer.echo(f"report: {written.html} ({size_kb:.0f} kB)")
    typer.echo(f"summary: {written.summary}")
    for fig in written.figures:
        typer.echo(f"figure: {fig}")
