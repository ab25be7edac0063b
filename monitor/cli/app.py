"""The ``vlm-monitor`` command line (typer): entry point and the core commands."""

from __future__ import annotations

from typing import Annotated

import typer

from monitor.cli import (  # noqa: F401 - importing a command module registers its commands
    alerts,  # vlm-monitor alerts
    ingest,  # vlm-monitor ingest, status, archive
    report,  # vlm-monitor report --week
    retrain,  # vlm-monitor retrain, sweep
    run,  # vlm-monitor run (the daemon)
    study,  # vlm-monitor study (reliability comparison)
)
from monitor.cli.common import ConfigOption, app, load_or_exit

__all__ = ["app"]


@app.command("check-config")
def check_config(config: ConfigOption = None) -> None:
    """Validate the configuration and print the resolved paths."""
    cfg = load_or_exit(config).reliability_monitor
    typer.echo(
        f"ok: model {cfg.model.id} at {cfg.model.path}; store {cfg.store.path}; "
        f"kafka {','.join(cfg.kafka.bootstrap_servers)}"
    )


@app.command()
def broker(
    port: Annotated[int, typer.Option(help="TCP port on 127.0.0.1 (0 picks a free one).")] = 9092,
) -> None:
    """Run the embedded Kafka-protocol broker (Tansu) on 127.0.0.1 until Ctrl-C / SIGTERM."""
    from monitor.service.broker import EmbeddedBroker

    embedded = EmbeddedBroker(port=port)
    embedded.start()
    typer.echo(
        f"embedded Kafka broker (Tansu, in-memory) listening on {embedded.bootstrap_servers[0]}; "
        "Ctrl-C to stop"
    )
    embedded.run_until_signal()
    typer.echo("broker stopped")


@app.command()
def demo(
    config: ConfigOption = None,
    events_per_window: Annotated[int, typer.Option(help="Requests per traffic window.")] = 600,
    seed: Annotated[int, typer.Option(help="Seed for the generated traffic.")] = 0,
) -> None:
    """Run the bundled reference VLM under monitoring: reference, live and shifted traffic."""
    from monitor.demo.run import run_demo

    cfg = load_or_exit(config)
    run_demo(cfg, events_per_window=events_per_window, seed=seed)


if __name__ == "__main__":  # pragma: no cover
    app()
