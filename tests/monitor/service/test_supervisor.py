"""A dead ingest thread is alerted, counted and restarted with backoff."""

from __future__ import annotations

import threading
import time

from monitor.config.load import parse_config
from monitor.ingest.consumer import Ingester
from monitor.service.daemon import MonitorDaemon
from monitor.service.supervisor import supervise
from monitor.store.database import Store


def test_supervise_restarts_with_doubling_backoff_until_stopped():
    stop, calls, waits = threading.Event(), [], []

    def work():
        calls.append(time.monotonic())
        if len(calls) == 4:
            stop.set()
            return
        raise ValueError(f"boom {len(calls)}")

    supervise("w", work, stop, lambda exc, wait: waits.append((str(exc), wait)), (0.01, 0.03))
    assert [w for _, w in waits] == [0.01, 0.02, 0.03] and waits[0][0] == "boom 1"
    assert len(calls) == 4


def test_daemon_alerts_counts_and_restarts_a_dead_ingest_thread(
    broker, topic_prefix, tmp_path, monkeypatch
):
    real_run, runs = Ingester.run, []

    def flaky(self, *args, **kwargs):
        runs.append(1)
        if len(runs) == 1:
            raise RuntimeError("store went away")
        return real_run(self, *args, **kwargs)

    monkeypatch.setattr(Ingester, "run", flaky)
    topics = {k: f"{topic_prefix}.{k}" for k in ("events", "labels", "alerts", "control")}
    cfg = parse_config(
        {
            "reliability_monitor": {
                "monitoring": {"drift_detection_interval": "1h"},
                "kafka": {"bootstrap_servers": broker.bootstrap_servers, "topics": topics},
                "store": {"path": str(tmp_path / "m.duckdb")},
                "alerts": {"sinks": ["store"]},
                "metrics": {"port": 0},
            }
        },
        base_dir=tmp_path,
    )
    with Store.from_config(cfg.reliability_monitor.store) as store:
        daemon = MonitorDaemon(cfg, store)
        daemon.ingest_backoff_s = (0.2, 1.0)
        with daemon:
            deadline = time.monotonic() + 30
            while len(runs) < 2 and time.monotonic() < deadline:
                time.sleep(0.1)
            assert len(runs) >= 2 and daemon._thread.is_alive()
            assert daemon.metrics.ingest_restarts._value.get() == 1
        alerts = [a for a in store.alerts(limit=50) if a["detector"] == "thread:ingest"]
    assert alerts and "store went away" in alerts[0]["message"]
    assert "restarting in" in alerts[0]["message"]
