"""Opening the store from a command, with a readable error when it is held."""

from __future__ import annotations

import typer

from monitor.config.settings import Config


def open_store(
    cfg: Config, read_only: bool = False, members: bool = True
):  # -> monitor.store.database.Store
    """Open the configured store (path and archive) or exit 1 naming why (e.g. it is held).

    Every command opens the store here, with the whole ``store`` section of the
    config, so Parquet-archived rows are always read with the live ones, and the
    files in ``store.members`` with this one (:mod:`monitor.store.union`; not for
    ``members=False``, the ingest command's own file).
    """
    from monitor.store.database import Store, StoreError
    from monitor.store.union import attach_members

    store = None
    try:
        store = Store.from_config(cfg.reliability_monitor.store, read_only=read_only)
        if members and cfg.reliability_monitor.store.members:
            attach_members(store, cfg.reliability_monitor.store.members)
        return store
    except StoreError as exc:
        if store is not None:
            store.close()
        hint = ""
        if "lock" in str(exc).lower():
            hint = (
                "\n(DuckDB allows one process per file: stop `vlm-monitor run` first, "
                "or point -c at a config with another store)"
            )
        typer.echo(f"error: {exc}{hint}", err=True)
        raise typer.Exit(1) from None
