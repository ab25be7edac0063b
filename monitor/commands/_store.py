"""Opening the store from a command, with a readable error when it is held."""

from __future__ import annotations

import typer

from monitor.config import Config


def open_store(cfg: Config):  # -> monitor.store.Store
    """Open the configured DuckDB store or exit 1 naming why (e.g. the daemon holds it)."""
    from monitor.store import Store, StoreError

    path = cfg.reliability_monitor.store.path
    try:
        return Store(path)
    except StoreError as exc:
        typer.echo(
            f"error: {exc}\n(DuckDB allows one process per file: stop `vlm-monitor run` first, "
            "or point -c at a config with another store)",
            err=True,
        )
        raise typer.Exit(1) from None
