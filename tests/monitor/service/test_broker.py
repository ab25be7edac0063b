import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from monitor.ingest.admin import ensure_topics, is_reachable
from monitor.service.broker import BrokerError, EmbeddedBroker

ROOT = Path(__file__).resolve().parents[3]


def _can_bind(port: int) -> bool:
    """Whether a server could listen on ``port`` (SO_REUSEADDR, as servers do: connections
    the broker closed may linger in TIME_WAIT)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_session_broker_answers_metadata(broker):
    assert broker.running
    assert broker.bootstrap_servers == [f"127.0.0.1:{broker.port}"] and broker.port > 0
    assert is_reachable(broker.bootstrap_servers, client_id="probe", linger_ms=5)  # extras ignored


def test_is_reachable_false_quickly_when_nothing_listens():
    t0 = time.monotonic()
    assert not is_reachable([f"127.0.0.1:{_closed_port()}"], timeout_s=0.5)
    assert time.monotonic() - t0 < 3.0


def test_ensure_topics_is_idempotent(broker, topic_prefix):
    from kafka import KafkaConsumer

    kwargs = {"bootstrap_servers": broker.bootstrap_servers}
    a, b = f"{topic_prefix}-a", f"{topic_prefix}-b"
    assert ensure_topics(kwargs, [a, b], partitions=3) == [a, b]
    assert ensure_topics(kwargs, [a, b], partitions=3) == []
    consumer = KafkaConsumer(**kwargs)
    try:
        assert consumer.partitions_for_topic(a) == {0, 1, 2}
    finally:
        consumer.close()
    with pytest.raises(ValueError, match="partitions must be >= 1"):
        ensure_topics(kwargs, [a], partitions=0)
    with pytest.raises(ValueError, match="non-empty"):
        ensure_topics(kwargs, [""])


def test_start_stop_frees_the_port(tmp_path):
    from kafka import KafkaProducer

    log_path = tmp_path / "tansu.log"
    with EmbeddedBroker(port=0, log_path=log_path) as b:
        port = b.port
        assert b.running and not _can_bind(port)
        assert is_reachable(b.bootstrap_servers)
        producer = KafkaProducer(bootstrap_servers=b.bootstrap_servers)  # a connected client
        producer.send("stop-test", b"x").get(timeout=5)
        t0 = time.monotonic()
    assert time.monotonic() - t0 < 2.0, "stop waited for the connected client"
    producer.close(timeout=0.5)
    assert not b.running
    assert b._proc.returncode == 0  # clean exit, no SIGKILL needed
    assert _can_bind(port)
    assert not is_reachable([f"127.0.0.1:{port}"], timeout_s=0.3)
    assert "listening on" in log_path.read_text()
    b.stop()  # idempotent
    with EmbeddedBroker(port=port, log_path=log_path) as again:  # the same port, at once
        assert is_reachable(again.bootstrap_servers)


def test_start_refuses_a_port_in_use(tmp_path):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        with pytest.raises(BrokerError, match=f"port 127.0.0.1:{port} is already in use"):
            EmbeddedBroker(port=port, log_path=tmp_path / "x.log").start()


def test_start_reports_a_binary_that_exits(tmp_path):
    b = EmbeddedBroker(port=0, log_path=tmp_path / "x.log", binary="/bin/false")
    with pytest.raises(BrokerError, match="exited with code 1"):
        b.start(timeout_s=5.0)
    assert not b.running


def test_bad_port_rejected():
    with pytest.raises(ValueError, match="port must be in"):
        EmbeddedBroker(port=70000)


def test_run_until_signal_stops_broker_on_sigterm(tmp_path):
    port = _closed_port()
    code = (
        "from monitor.service.broker import EmbeddedBroker; "
        f"EmbeddedBroker(port={port}, log_path={str(tmp_path / 'b.log')!r})"
        ".run_until_signal(); "
        "print('clean exit')"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        deadline = time.monotonic() + 30
        while not is_reachable([f"127.0.0.1:{port}"], timeout_s=0.3):
            assert proc.poll() is None, proc.stdout.read().decode()
            assert time.monotonic() < deadline, "broker never came up"
            time.sleep(0.1)
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, out.decode()
    assert "clean exit" in out.decode()
    assert _can_bind(port)


def test_failed_attempts_leak_no_kafka_threads():
    import threading

    def io_threads():
        return sum(t.name.startswith("kafka-io") for t in threading.enumerate())

    before = io_threads()
    servers = [f"127.0.0.1:{_closed_port()}"]
    for _ in range(5):
        assert not is_reachable(servers, timeout_s=0.05)
    with pytest.raises(Exception, match="Unable to bootstrap"):
        ensure_topics({"bootstrap_servers": servers, "bootstrap_timeout_ms": 50}, ["x"])
    time.sleep(0.2)
    assert io_threads() == before
