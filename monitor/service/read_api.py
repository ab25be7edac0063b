"""The daemon's HTTP endpoint: Prometheus ``/metrics`` and a small read API beside it.

DuckDB lets one process hold the store for writing and no other process open it
meanwhile, so while ``vlm-monitor run`` holds the store the read-only commands
(``status``, ``alerts``, ``probes``, ``report``) ask the daemon instead
(:mod:`monitor.cli.daemon_client`). Bound to ``metrics.host`` (127.0.0.1 by
default): it serves whoever can reach that address.

Routes (JSON unless said otherwise):

- ``GET /metrics``: Prometheus text format;
- ``GET /api/health``: the daemon's threads, ingest progress and last drift run;
- ``GET /api/status``: what ``vlm-monitor status`` shows (:func:`monitor.service.status.collect`);
- ``GET /api/alerts?limit=&kind=&since=&subject=``: stored alerts, newest first
  (``since`` in seconds since the Unix epoch);
- ``GET /api/probes``: the probe lifecycle table;
- ``GET /api/collectors``: the newest heartbeat of each collector;
- ``GET /api/review?model=&probe=&tag=&limit=``: labelling budget and review queue;
- ``POST /api/report?week=2026-W48``: the daemon writes that week's report and
  returns the paths it wrote.

A bad parameter is a 400 and a failure a 500, both ``{"error": "..."}``.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

log = logging.getLogger(__name__)

Handler = Callable[[dict[str, str]], Any]


class BadRequest(ValueError):
    """A request parameter is missing or malformed (answered with 400)."""


class ReadAPI:
    """Serves ``/metrics`` from ``registry`` and the routes in ``get`` and ``post``.

    Parameters
    ----------
    registry : prometheus_client.CollectorRegistry
    get, post : dict of str -> callable
        Path (``"/api/status"``) to a function of the query parameters (the last
        value of each) returning a JSON-serialisable answer.
    """

    def __init__(
        self, registry: Any, get: dict[str, Handler], post: dict[str, Handler] | None = None
    ) -> None:
        self.registry = registry
        self.routes = {"GET": dict(get), "POST": dict(post or {})}
        self._server: ThreadingHTTPServer | None = None

    def serve(self, host: str = "127.0.0.1", port: int = 9464) -> int:
        """Serve on a daemon thread; return the bound port (``port=0`` picks a free one).

        Raises
        ------
        OSError
            The address is taken.
        """
        api = self

        class Request(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                api._answer(self, "GET")

            def do_POST(self) -> None:  # noqa: N802
                api._answer(self, "POST")

            def log_message(self, fmt: str, *args: Any) -> None:
                log.debug("read API: " + fmt, *args)

        self._server = ThreadingHTTPServer((host, port), Request)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, name="read-api", daemon=True).start()
        return int(self._server.server_address[1])

    def _answer(self, request: BaseHTTPRequestHandler, method: str) -> None:
        url = urlsplit(request.path)
        if method == "GET" and url.path == "/metrics":
            self._send(request, 200, generate_latest(self.registry), CONTENT_TYPE_LATEST)
            return
        handler = self.routes[method].get(url.path)
        if handler is None:
            known = sorted(p for routes in self.routes.values() for p in routes) + ["/metrics"]
            self._json(request, 404, {"error": f"no {method} {url.path}; routes: {known}"})
            return
        params = {k: v[-1] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
        try:
            self._json(request, 200, handler(params))
        except BadRequest as exc:
            self._json(request, 400, {"error": str(exc)})
        except Exception as exc:  # noqa: BLE001 - the answer names it; the daemon goes on
            log.warning("read API %s %s failed: %r", method, url.path, exc)
            self._json(request, 500, {"error": f"{type(exc).__name__}: {exc}"})

    def _json(self, request: BaseHTTPRequestHandler, code: int, body: Any) -> None:
        data = json.dumps(body, default=str, allow_nan=False).encode()
        self._send(request, code, data, "application/json")

    @staticmethod
    def _send(request: BaseHTTPRequestHandler, code: int, data: bytes, kind: str) -> None:
        request.send_response(code)
        request.send_header("Content-Type", kind)
        request.send_header("Content-Length", str(len(data)))
        request.end_headers()
        request.wfile.write(data)

    def close(self) -> None:
        """Stop serving (idempotent)."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


def int_param(params: dict[str, str], name: str, default: int, minimum: int = 0) -> int:
    """``params[name]`` as an int >= ``minimum``, else ``default``; BadRequest names it."""
    if name not in params:
        return default
    try:
        value = int(params[name])
    except ValueError:
        raise BadRequest(f"{name} must be an integer, got {params[name]!r}") from None
    if value < minimum:
        raise BadRequest(f"{name} must be >= {minimum}, got {value}")
    return value


def float_param(params: dict[str, str], name: str) -> float | None:
    """``params[name]`` as a finite float, or None when absent; BadRequest names it."""
    if name not in params:
        return None
    try:
        value = float(params[name])
    except ValueError:
        raise BadRequest(f"{name} must be a number, got {params[name]!r}") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise BadRequest(f"{name} must be finite, got {params[name]!r}")
    return value
