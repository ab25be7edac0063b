"""`vlm-monitor broker` starts Tansu on 127.0.0.1 and stops it cleanly on SIGTERM / Ctrl-C."""

import signal
import socket
import subprocess
import sys
import time

import pytest

from monitor.ingest.admin import is_reachable


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_broker_command_serves_then_stops_on_signal(sig):
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "monitor.cli", "broker", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = proc.stdout.readline()
        assert f"127.0.0.1:{port}" in line, line + proc.stderr.read()
        assert is_reachable([f"127.0.0.1:{port}"], timeout_s=5.0)
        proc.send_signal(sig)
        assert proc.wait(timeout=20) == 0
        assert "broker stopped" in proc.stdout.read()
    finally:
        if proc.poll() is None:
            proc.kill()
    deadline = time.time() + 5
    while time.time() < deadline:  # the port is free again: nothing left listening
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) != 0:
                break
        time.sleep(0.1)
    else:
        pytest.fail(f"port {port} still accepts connections after the broker stopped")
