"""``vlm-monitor review``: the labelling budget and which events to send for review first."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from monitor.cli.common import ConfigOption, app, load_or_exit
from monitor.cli.daemon_client import read


@app.command()
def review(
    config: ConfigOption = None,
    model: Annotated[str | None, typer.Option(help="Model id (default: model.id).")] = None,
    probe: Annotated[str | None, typer.Option(help="Probe version (default: all).")] = None,
    tag: Annotated[str | None, typer.Option(help="Request tag (default: all).")] = None,
    limit: Annotated[int, typer.Option(help="Events to list.", min=1)] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object.")] = False,
) -> None:
    """How many labels bound this window's accuracy to +-3 points, and the unlabelled events
    least like the reference (pooled states), most novel first.

    While `vlm-monitor run` holds the store, the daemon answers.
    """
    from monitor.detection.review import review_plan
    from monitor.store.queries import Subject

    cfg = load_or_exit(config)
    subject = Subject(model or cfg.reliability_monitor.model.id, probe, tag)
    plan = read(
        cfg,
        lambda store: review_plan(cfg, store, subject, limit),
        lambda daemon: daemon.call(
            "GET", "/api/review", model=subject.model_id, probe=probe, tag=tag, limit=limit
        ),
    )
    if as_json:
        typer.echo(json.dumps(plan, default=str))
        return
    console = Console()
    console.print(
        f"{plan['subject']}: {plan['n_events']:,} events in the last detection window, "
        f"{plan['n_labelled']:,} labelled. To bound its accuracy to ±3 points (95 %), label "
        f"[bold]{plan['labels_for_3_points']:,}[/bold] events drawn at random; to learn where "
        "the probe is least known, review these first (novelty of the pooled state against "
        f"the reference {plan['reference']['subject']}):"
    )
    table = Table(title_justify="left")
    for col in ("event id", "time (UTC)", "confidence", "novelty"):
        table.add_column(col, no_wrap=True)
    for row in plan["queue"]:
        when = datetime.fromtimestamp(row["ts"], tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
        table.add_row(row["event_id"], when, f"{row['confidence']:.3f}", f"{row['novelty']:.1f}")
    console.print(table if plan["queue"] else "no unlabelled event with a captured state")
