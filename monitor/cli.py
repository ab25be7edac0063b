"""The ``vlm-monitor`` command line (typer)."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Annotated

import typer

from monitor.config import Config, ConfigError, load_config

app = typer.Typer(
    name="vlm-monitor",
    help="Monitoring and drift detection for deployed vision-language models.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        "-c",
        help="config.yaml to use (default: ./config.yaml, else built-in defaults).",
    ),
]


def _load(path: Path | None) -> Config:
    """Load the config or exit 2 with one readable line naming the bad key."""
    try:
        cfg = load_config(path)
    except ConfigError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    logging.basicConfig(
        level=cfg.reliability_monitor.logging.level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    return cfg


@app.command("check-config")
def check_config(config: ConfigOption = None) -> None:
    """Validate the configuration and print the resolved paths."""
    cfg = _load(config).reliability_monitor
    typer.echo(
        f"ok: model {cfg.model.id} at {cfg.model.path}; store {cfg.store.path}; "
        f"kafka {','.join(cfg.kafka.bootstrap_servers)}"
    )


@app.command()
def broker(
    port: Annotated[int, typer.Option(help="TCP port on 127.0.0.1 (0 picks a free one).")] = 9092,
) -> None:
    """Run the embedded Kafka-protocol broker (Tansu) on 127.0.0.1 until Ctrl-C / SIGTERM."""
    from monitor.broker import EmbeddedBroker

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
    from monitor.demo import run_demo

    cfg = _load(config)
    run_demo(cfg, events_per_window=events_per_window, seed=seed)


if __name__ == "__main__":  # pragma: no cover
    app()
