"""Opening the store from a command, with a readable error when it is held."""

from __future__ import annotations

import typer

from monitor.config.settings import Config


def open_store(cfg: Config, read_only: bool = False):  # -> monitor.store.database.Store
    """Open the configured store (path and archive) or exit 1 naming why (e.g. it is held).

    Every command opens the store here, with the whole ``store`` section of the
    config, so Parquet-archived rows are always read with the live ones.
    """
    from monitor.store.database import Store, StoreError

    try:
        return Store.from_config(cfg.reliability_monitor.store, read_only=read_only)
    except StoreError as exc:
        hint = ""
        if "lock" in str(exc).lower():
            hint = (
                "\n(DuckDB allows one process per file: stop `vlm-monitor run` first, "
                "or point -c at a config with another store)"
            )
        typer.echo(f"error: {exc}{hint}", err=True)
        raise typer.Exit(1) from None
