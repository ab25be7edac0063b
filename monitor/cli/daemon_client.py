"""Read-only commands while ``vlm-monitor run`` holds the store: ask the daemon.

:func:`read` opens the store read-only and runs the command's local query; when
another process holds the file it finds the daemon through ``<store>.daemon.json``
(:mod:`monitor.service.daemon_api`) and asks its read API instead, so ``status``,
``alerts``, ``probes`` and ``report`` never stop at DuckDB's lock.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from typing import Any, TypeVar

import typer

from monitor.config.settings import Config
from monitor.service.daemon_api import address_path

T = TypeVar("T")


class DaemonError(RuntimeError):
    """The daemon answered with an error, or could not be reached; the message says which."""


class DaemonClient:
    """The read API of a running daemon at ``http://host:port``."""

    def __init__(self, host: str, port: int, pid: int | None = None, timeout_s: float = 120.0):
        self.base = f"http://{host}:{int(port)}"
        self.pid = pid
        self.timeout_s = timeout_s

    def call(self, method: str, path: str, **params: Any) -> Any:
        """JSON answer of ``method path?params`` (None values left out).

        Raises
        ------
        DaemonError
            An HTTP error (with the daemon's message) or no answer.
        """
        query = urllib.parse.urlencode({k: v for k, v in params.items() if v is not None})
        url = f"{self.base}{path}" + (f"?{query}" if query else "")
        request = urllib.request.Request(url, method=method, data=b"" if method == "POST" else None)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as answer:
                return json.loads(answer.read())
        except urllib.error.HTTPError as exc:
            try:
                message = json.loads(exc.read()).get("error", exc.reason)
            except ValueError:
                message = exc.reason
            raise DaemonError(f"daemon at {self.base}: {message}") from None
        except (urllib.error.URLError, OSError) as exc:
            raise DaemonError(f"daemon at {self.base} did not answer: {exc}") from None


def find_daemon(cfg: Config) -> DaemonClient | None:
    """The daemon that recorded itself for the configured store, if its process is alive."""
    path = address_path(cfg.reliability_monitor.store.path)
    try:
        body = json.loads(path.read_text())
        pid, host, port = int(body["pid"]), str(body["host"]), int(body["port"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass
    return DaemonClient("127.0.0.1" if host in ("0.0.0.0", "::") else host, port, pid)


def read(cfg: Config, local: Callable[[Any], T], remote: Callable[[DaemonClient], T]) -> T:
    """``local(store)`` on the store opened read-only, else ``remote(daemon)``.

    Exits 1 naming both reasons when the store is held and no daemon answers.
    """
    from monitor.cli._store import open_store
    from monitor.store.database import Store, StoreError

    path = cfg.reliability_monitor.store.path
    if str(path) == ":memory:" or not os.path.exists(path):
        with open_store(cfg) as store:  # a new store: created, empty
            return local(store)
    try:
        store = Store.from_config(cfg.reliability_monitor.store, read_only=True)
    except StoreError as exc:
        daemon = find_daemon(cfg)
        if daemon is None:
            typer.echo(
                f"error: {exc}\n(no running `vlm-monitor run` recorded itself for this store "
                "to answer instead; stop the process that holds it, or point -c at a config "
                "with another store)",
                err=True,
            )
            raise typer.Exit(1) from None
        try:
            return remote(daemon)
        except DaemonError as err:
            typer.echo(f"error: {err}", err=True)
            raise typer.Exit(1) from None
    with store:
        return local(store)
