"""`vlm-monitor ingest`, `status` and `archive` on a real broker and DuckDB file."""

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from kafka import KafkaProducer
from typer.testing import CliRunner

from collectors.wire.codec import encode
from monitor.cli.app import app
from monitor.ingest.admin import ensure_topics
from monitor.service.status import snapshot_path
from monitor.store.database import Store

ROOT = Path(__file__).resolve().parents[3]


def _config(tmp_path, broker, prefix, **store):
    cfg = {
        "reliability_monitor": {
            "logging": {"level": "WARNING"},
            "kafka": {
                "bootstrap_servers": broker.bootstrap_servers,
                "topics": {"events": f"{prefix}-events", "labels": f"{prefix}-labels"},
            },
            "store": {
                "path": str(tmp_path / "m.duckdb"),
                "retention_days": 0,
                "max_lateness": "100000d",  # the fixture events are stamped in 2023, sent now
                **store,
            },
        }
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path, cfg["reliability_monitor"]["kafka"]["topics"]


def _produce(broker, topic, values):
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap_servers, linger_ms=5)
    for v in values:
        producer.send(topic, value=v)
    producer.flush(timeout=30)
    producer.close()


def _ingest_process(cfg_path, *args):
    proc = subprocess.Popen(
        [sys.executable, "-m", "monitor.cli", "ingest", "-c", str(cfg_path), "--no-live", *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    line = proc.stdout.readline()
    if not line.startswith("ingesting"):
        proc.kill()
        proc.wait()
        raise AssertionError(f"ingest did not start: {line!r}")
    return proc


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_ingest_stops_cleanly_on_signal_and_status_reports(
    sig, broker, topic_prefix, tmp_path, make_event, make_label
):
    cfg_path, topics = _config(tmp_path, broker, topic_prefix, ingest_batch_size=50)
    ensure_topics({"bootstrap_servers": broker.bootstrap_servers}, [topics["events"]], 2)
    values = [encode(make_event(i)) for i in range(3000)] + [b"{oops", b"\xff"]
    _produce(broker, topics["events"], values)
    _produce(broker, topics["labels"], [encode(make_label(i)) for i in range(0, 10)])
    proc = _ingest_process(cfg_path)
    try:
        assert "msg/s" in proc.stdout.readline()  # the first batch is stored
        proc.send_signal(sig)  # mid-stream: the current transaction finishes, then it exits
        out, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0 and "stopped cleanly after the last transaction" in out, out
    with Store(tmp_path / "m.duckdb") as store:  # rows match the stored offsets exactly
        offsets = store.stored_offsets()
        consumed = sum(o for (t, _), o in offsets.items() if t == topics["events"])
        counts = store.counts()
        assert counts["events"] + counts["dead_letters"] == consumed > 0

    result = CliRunner().invoke(app, ["status", "-c", str(cfg_path), "--json"])
    assert result.exit_code == 0, result.output
    status = json.loads(result.stdout)
    assert status["counts"]["events"] == counts["events"]
    lags = {(r["topic"], r["partition"]): r["lag"] for r in status["offsets"]}
    assert sum(lags.values()) >= 0 and (topics["events"], 0) in lags

    # run to the end, then the tables: counts, dead letters by error, offsets with lag 0
    proc = _ingest_process(cfg_path, "--idle-exit", "1.5")
    try:
        proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    result = CliRunner().invoke(app, ["status", "-c", str(cfg_path)], terminal_width=150)
    assert result.exit_code == 0, result.output
    text = result.output
    assert "3,000" in text and "not UTF-8 JSON" in text and "labelled events" in text
    status = json.loads(CliRunner().invoke(app, ["status", "-c", str(cfg_path), "--json"]).stdout)
    assert status["counts"]["dead_letters"] == 2
    assert status["dead_letters_by_error"] == [["not UTF-8 JSON", 2]]


def test_status_reads_the_snapshot_while_the_ingester_holds_the_store(
    broker, topic_prefix, tmp_path, make_event
):
    cfg_path, topics = _config(tmp_path, broker, topic_prefix)
    _produce(broker, topics["events"], [encode(make_event(i)) for i in range(200)])
    proc = _ingest_process(cfg_path)
    try:
        snap = snapshot_path(tmp_path / "m.duckdb")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if snap.exists() and json.loads(snap.read_text())["counts"]["events"] == 200:
                break
            time.sleep(0.2)
        result = CliRunner().invoke(app, ["status", "-c", str(cfg_path)], terminal_width=150)
        assert result.exit_code == 0, result.output
        assert f"held by the running ingester (pid {proc.pid})" in result.output
        assert "200" in result.output
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=30)
    assert proc.returncode == 0
    assert json.loads(snap.read_text())["ingest"]["running"] is False


def test_live_display_and_archive_command(broker, topic_prefix, tmp_path, make_event):
    cfg_path, topics = _config(tmp_path, broker, topic_prefix)
    old = time.time() - 10 * 86_400
    _produce(
        broker,
        topics["events"],
        [encode(make_event(i, ts=old + i)) for i in range(100)]
        + [encode(make_event(i, ts=time.time())) for i in range(100, 150)],
    )
    runner = CliRunner()
    result = runner.invoke(
        app,
        ["ingest", "-c", str(cfg_path), "--live", "--idle-exit", "1.5", "--max-seconds", "60"],
        terminal_width=120,
    )
    assert result.exit_code == 0, result.output
    assert "throughput" in result.output and "messages/s" in result.output
    assert "stopped cleanly" in result.output
    result = runner.invoke(app, ["archive", "-c", str(cfg_path), "--days", "5"])
    assert result.exit_code == 0, result.output
    assert "archived 100 events and 0 states" in result.output
    with Store(tmp_path / "m.duckdb") as store:
        assert store.counts()["events"] == 150
        assert store.execute("SELECT count(*) FROM events")[0][0] == 50


def test_status_without_a_store_fails_clearly(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump({"reliability_monitor": {"store": {"path": "none.duckdb"}}}))
    result = CliRunner().invoke(app, ["status", "-c", str(cfg)])
    assert result.exit_code == 1
    assert "cannot open store" in result.output


@pytest.mark.parametrize("limit", [["--max-seconds", "2"], ["--idle-exit", "2"]])
def test_time_limits_hold_while_the_broker_is_down(tmp_path, limit):
    cfg_path = tmp_path / "config.yaml"
    cfg_path.write_text(
        yaml.safe_dump(
            {
                "reliability_monitor": {
                    "kafka": {"bootstrap_servers": ["127.0.0.1:1"]},  # nothing listens
                    "store": {"path": str(tmp_path / "m.duckdb")},
                }
            }
        )
    )
    t0 = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "monitor.cli", "ingest", "-c", str(cfg_path), "--no-live", *limit],
        cwd=ROOT, capture_output=True, text=True, timeout=90,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    assert "stopped cleanly" in result.stdout and time.monotonic() - t0 < 45


def test_ingest_stops_with_the_reason_when_its_store_file_is_deleted(
    broker, topic_prefix, tmp_path, make_event
):
    cfg_path, topics = _config(tmp_path, broker, topic_prefix, ingest_batch_size=50)
    ensure_topics({"bootstrap_servers": broker.bootstrap_servers}, [topics["events"]], 1)
    _produce(broker, topics["events"], [encode(make_event(i)) for i in range(100)])
    proc = subprocess.Popen(
        [sys.executable, "-m", "monitor.cli", "ingest", "-c", str(cfg_path), "--no-live"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout.readline().startswith("ingesting")
        assert "msg/s" in proc.stdout.readline()  # the first batch is stored
        (tmp_path / "m.duckdb").unlink()
        _produce(broker, topics["events"], [encode(make_event(i)) for i in range(100, 200)])
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 1, err
    assert "m.duckdb was deleted while open; nothing was written" in err, err
