"""``vlm-monitor ingest``, ``vlm-monitor status`` and ``vlm-monitor archive``."""

from __future__ import annotations

import json
import logging
import os
import signal
import threading
import time
from contextlib import ExitStack
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.live import Live

from monitor.cli._store import open_store
from monitor.cli.common import ConfigOption, app, load_or_exit

log = logging.getLogger(__name__)


@app.command()
def ingest(
    config: ConfigOption = None,
    batch_size: Annotated[
        int | None, typer.Option(help="Max messages per transaction (default: config).", min=1)
    ] = None,
    max_seconds: Annotated[
        float, typer.Option(help="Stop after this many seconds (0: run until stopped).", min=0)
    ] = 0.0,
    idle_exit: Annotated[
        float, typer.Option(help="Stop after this many seconds without messages (0: never).", min=0)
    ] = 0.0,
    live: Annotated[
        bool | None,
        typer.Option("--live/--no-live", help="Live display (default: when on a terminal)."),
    ] = None,
) -> None:
    """Ingest the events and labels topics into DuckDB until Ctrl-C / SIGTERM.

    A stop signal takes effect after the current transaction. Events and states
    older than ``store.retention_days`` move to the Parquet archive once an hour.
    """
    from monitor.ingest.clock import EventClock
    from monitor.ingest.consumer import Ingester
    from monitor.ingest.progress import IngestProgress
    from monitor.service.housekeeping import Housekeeping
    from monitor.store.database import StoreError

    cfg = load_or_exit(config)
    rm = cfg.reliability_monitor
    console = Console()
    use_live = console.is_terminal if live is None else live
    stop = threading.Event()

    def _on_signal(signum: int, frame: Any) -> None:
        stop.set()

    previous = {s: signal.signal(s, _on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    progress = IngestProgress()
    with ExitStack() as stack:
        stack.callback(lambda: [signal.signal(s, h) for s, h in previous.items()])
        store = stack.enter_context(open_store(cfg, members=False))
        ingester = stack.enter_context(
            Ingester(
                rm.kafka,
                store,
                batch_size=batch_size or rm.store.ingest_batch_size,
                linger_s=rm.store.ingest_linger_s,
                clock=EventClock.from_config(rm.store),
            )
        )
        clock = {"line": time.monotonic()}
        housekeeping = Housekeeping(store, rm.store, progress)

        def on_poll(stats: Any) -> None:
            progress.update(stats, ingester.lag())
            housekeeping.tick()
            if max_seconds and time.monotonic() - progress.started >= max_seconds:
                stop.set()
            if idle_exit and progress.idle_s() >= idle_exit:
                stop.set()
            if display is not None:
                display.update(progress.table())
            elif time.monotonic() - clock["line"] >= 5.0 or (
                stats.n_messages and progress.totals.n_messages == stats.n_messages
            ):  # a line at the first stored batch, then every 5 s
                clock["line"] = time.monotonic()
                console.print(progress.line(), highlight=False, soft_wrap=True)

        console.print(
            f"ingesting {rm.kafka.topics.events} and {rm.kafka.topics.labels} from "
            f"{','.join(rm.kafka.bootstrap_servers)} into {rm.store.path}; Ctrl-C to stop",
            highlight=False,
            soft_wrap=True,
        )
        display = None
        if use_live:
            display = stack.enter_context(Live(progress.table(), console=console))
        housekeeping.tick()
        try:
            ingester.run(stop, poll_timeout_s=0.5, on_poll=on_poll)
        except StoreError as exc:  # the store cannot take writes: say why, lose nothing
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(1) from None
        housekeeping.snapshot(running=False)
    console.print(
        f"stopped cleanly after the last transaction: {progress.line()}",
        highlight=False,
        soft_wrap=True,
    )


@app.command()
def status(
    config: ConfigOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")] = False,
    broker_timeout: Annotated[
        float, typer.Option(help="Seconds to wait for the broker (lag).", min=0)
    ] = 2.0,
) -> None:
    """Show store counts, dead letters by error, and offsets with lag.

    While `vlm-monitor run` holds the store, its read API answers; while
    `vlm-monitor ingest` does, its status snapshot.
    """
    from monitor.cli.daemon_client import DaemonError, find_daemon
    from monitor.service.status import add_lag, broker_end_offsets, collect, read_snapshot, render
    from monitor.service.status import snapshot_path as snap_path
    from monitor.store.database import Store, StoreError

    cfg = load_or_exit(config)
    rm = cfg.reliability_monitor
    console = Console()
    note = ""
    try:
        with Store.from_config(rm.store, read_only=True) as store:
            result = collect(store, detailed=True)
    except StoreError as exc:
        daemon = find_daemon(cfg)
        result = None
        if daemon is not None:
            try:
                result = daemon.call("GET", "/api/status")
                note = f"store held by the running daemon (pid {daemon.pid}): live from its API"
            except DaemonError as err:
                note = f"{err}; "
        if result is None:
            result = read_snapshot(snap_path(rm.store.path))
            if result is None:
                typer.echo(f"error: {exc}", err=True)
                raise typer.Exit(1) from None
            age = time.time() - float(result["ts"])
            pid = result.get("ingest", {}).get("pid")
            alive = pid is not None and _pid_alive(int(pid))
            who = f"held by the running ingester (pid {pid})" if alive else "not readable"
            note += f"store {who}: snapshot from {age:.0f} s ago"
    if not any("lag" in row for row in result["offsets"]):
        ends = broker_end_offsets(rm.kafka, [rm.kafka.topics.events, rm.kafka.topics.labels],
                                  timeout_s=broker_timeout)  # fmt: skip
        if ends is None:
            note = (note + "; " if note else "") + "broker unreachable: lag unknown"
        else:
            add_lag(result, ends)
    if as_json:
        typer.echo(json.dumps({**result, "note": note}, default=str))
        return
    console.print(render(result))
    if note:
        console.print(note, highlight=False, soft_wrap=True)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@app.command()
def archive(
    config: ConfigOption = None,
    days: Annotated[
        float | None, typer.Option(help="Archive older than this (default: config).", min=0)
    ] = None,
) -> None:
    """Move events and states older than N days to the Parquet archive now."""
    cfg = load_or_exit(config)
    rm = cfg.reliability_monitor
    with open_store(cfg) as store:
        result = store.archive(rm.store.retention_days if days is None else days)
    typer.echo(
        f"archived {result.n_events} events and {result.n_states} states "
        f"(ts before {result.cutoff:.0f}) to {store.archive_dir}"
        + (f", days {result.days[0]} .. {result.days[-1]}" if result.days else "")
    )
