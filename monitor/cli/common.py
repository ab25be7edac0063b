"""The typer app and helpers shared by every ``vlm-monitor`` command module.

Commands live in :mod:`monitor.cli.app` and in :mod:`monitor.cli`'s other modules (one module per
area); each registers itself on :data:`app` with ``@app.command()``.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Annotated

import typer

from monitor.config import secrets
from monitor.config.load import ConfigError, load_config
from monitor.config.settings import Config

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


def load_or_exit(path: Path | None) -> Config:
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
    secrets.install(cfg)  # SASL password, webhook URL: never in a log line, at any level
    # kafka-python logs every connection attempt at INFO and every refused one at ERROR
    debug = cfg.reliability_monitor.logging.level == "DEBUG"
    logging.getLogger("kafka").setLevel(logging.DEBUG if debug else logging.WARNING)
    # APScheduler logs every job start and finish at INFO: the daemon logs its own outcomes
    logging.getLogger("apscheduler").setLevel(logging.DEBUG if debug else logging.WARNING)
    return cfg
