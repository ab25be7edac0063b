"""``vlm-monitor run``: the monitoring daemon (ingest, scheduled drift runs, reports, metrics)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from monitor.cli._store import open_store
from monitor.cli.common import ConfigOption, app, load_or_exit


@app.command()
def run(
    config: ConfigOption = None,
    once: Annotated[
        bool, typer.Option("--once", help="One drift run now (no ingest), print it, exit.")
    ] = False,
    no_ingest: Annotated[
        bool, typer.Option("--no-ingest", help="Do not consume Kafka (score what is stored).")
    ] = False,
    metrics_port: Annotated[
        int | None, typer.Option(help="Override metrics.port (0 picks a free port).")
    ] = None,
) -> None:
    """Run the monitoring daemon until Ctrl-C / SIGTERM, or one drift run with --once."""
    cfg = load_or_exit(config)
    if metrics_port is not None:
        rm = cfg.reliability_monitor
        metrics = rm.metrics.model_copy(update={"port": metrics_port})
        cfg = cfg.model_copy(
            update={"reliability_monitor": rm.model_copy(update={"metrics": metrics})}
        )
    with open_store(cfg) as store:
        if once:
            from monitor.alerts.outbox import deliver_all
            from monitor.alerts.sinks import build_sinks, close_sinks
            from monitor.detection.run import run_detection

            sinks = build_sinks(cfg, store)
            try:
                result = run_detection(cfg, store, sinks=sinks)
                delivered, failed = deliver_all(sinks)  # the rest waits in the outbox
                if failed:
                    typer.echo(
                        f"{delivered} alert(s) delivered; a sink failed, the rest stays queued "
                        "in the store's outbox for the daemon",
                        err=True,
                    )
            finally:
                close_sinks(sinks)
            _print_run(result, Console())
            return
        from monitor.service.daemon import MonitorDaemon

        daemon = MonitorDaemon(cfg, store, ingest=not no_ingest)
        typer.echo("vlm-monitor daemon running; Ctrl-C to stop")
        daemon.run_until_signal()
        typer.echo("daemon stopped")


def _print_run(run, console: Console) -> None:  # run: DetectionRun
    table = Table(title=f"drift run: {len(run.results)} results", title_justify="left")
    for col in ("subject", "detector", "statistic", "threshold", "p-value", "status"):
        table.add_column(col, justify="left" if col in ("subject", "detector") else "right")
    for item in run.results:
        r = item.result
        status = "insufficient data" if r.insufficient_data else ("DRIFT" if r.is_drift else "ok")
        table.add_row(
            item.name,
            r.detector,
            "–" if r.statistic is None else f"{r.statistic:.4f}",
            f"{r.threshold:.4g}",
            "–" if r.p_value is None else f"{r.p_value:.3g}",
            status,
        )
    console.print(table)
    for alert in run.errors + run.sent:
        console.print(alert.log_line())
    if not run.results and not run.errors:
        console.print("no events in the detection window")
