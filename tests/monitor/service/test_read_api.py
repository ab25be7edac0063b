"""While the daemon holds the store, the read-only commands ask its read API: no lock error."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.error
import urllib.request

import numpy as np
import pytest
import yaml

from collectors.probe.linear import LinearProbe
from monitor.config.load import load_config
from monitor.service.daemon import MonitorDaemon
from monitor.service.daemon_api import address_path
from monitor.store.database import Store
from retrain.registry import ProbeRegistry

T0 = 1_700_000_000.0  # 2023-11-14, ISO week 2023-W46
WEEK = "2023-W46"


def _cli(cfg_path, *args, timeout=300):
    return subprocess.run(
        [sys.executable, "-m", "monitor.cli", *args, "-c", str(cfg_path)],
        capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip


def _get(port, path, method="GET"):
    data = b"" if method == "POST" else None
    try:
        url = f"http://127.0.0.1:{port}{path}"
        with urllib.request.urlopen(url, data=data, timeout=30) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


@pytest.fixture
def running(tmp_path, make_event):
    """A daemon (no ingest) holding a store with a few hours of events, an alert and a probe."""
    cfg_path = tmp_path / "config.yaml"
    cfg_path.write_text(yaml.safe_dump({"reliability_monitor": {
        "model": {"id": "m"},
        "store": {"path": str(tmp_path / "m.duckdb"), "reports_dir": str(tmp_path / "r")},
        "retrain": {"registry_dir": str(tmp_path / "reg")},
        "alerts": {"sinks": ["log", "store"]},
        "metrics": {"port": 0},
        "monitoring": {"drift_detection_interval": "1h"},
    }}))  # fmt: skip
    cfg = load_config(cfg_path)
    registry = ProbeRegistry(tmp_path / "reg")
    registry.publish(LinearProbe(weight=np.ones(8), bias=0.0, layer=3, version="v1"))
    registry.promote("v1", reason="first probe")
    store = Store.from_config(cfg.reliability_monitor.store)
    store.write_batch([make_event(i, ts=T0 + 60.0 * i) for i in range(300)], [])
    store.record_alert("score_drift", "kl_divergence", "m/p1/*/confidence", "warning",
                       "kl_divergence=0.2 nats > 0.15", 0.2, 0.15, ts=T0 + 3600)  # fmt: skip
    daemon = MonitorDaemon(cfg, store, ingest=False)
    with daemon:
        yield cfg_path, daemon
    store.close()


def test_read_only_commands_are_answered_by_the_daemon(running):
    cfg_path, daemon = running
    assert address_path(daemon.store.path).exists()

    status = _cli(cfg_path, "status", "--broker-timeout", "0")
    assert status.returncode == 0, status.stderr
    assert "held by the running daemon" in status.stdout and "300" in status.stdout
    assert "lock" not in status.stdout + status.stderr

    alerts = _cli(cfg_path, "alerts", "--json")
    assert alerts.returncode == 0, alerts.stderr
    rows = [json.loads(line) for line in alerts.stdout.splitlines()]
    assert [r["detector"] for r in rows] == ["kl_divergence"]

    probes = _cli(cfg_path, "probes", "--json")
    assert probes.returncode == 0, probes.stderr
    rows = [json.loads(line) for line in probes.stdout.splitlines()]
    assert [(r["version"], r["status"], r["reason"]) for r in rows] == [
        ("v1", "champion", "first probe")
    ]

    report = _cli(cfg_path, "report", "--week", WEEK)
    assert report.returncode == 0, report.stderr
    assert "written by the running daemon" in report.stdout
    html = report.stdout.split("report: ")[1].split(" (")[0]
    assert html.endswith(f"{WEEK}.html") and "<html" in open(html).read().lower()

    refused = _cli(cfg_path, "report", "--week", WEEK, "--out", "elsewhere")
    assert refused.returncode == 2 and "--out is not available" in refused.stderr


def test_the_api_names_bad_parameters_and_unknown_routes(running):
    _, daemon = running
    port = daemon.metrics_port
    code, body = _get(port, "/api/alerts?limit=many")
    assert code == 400 and body["error"] == "limit must be an integer, got 'many'"
    code, body = _get(port, "/api/alerts?kind=weather")
    assert code == 400 and "kind must be one of" in body["error"]
    code, body = _get(port, "/api/nothing")
    assert code == 404 and "/api/status" in body["error"]
    code, body = _get(port, "/api/health")
    assert code == 200 and body["ingest"]["enabled"] is False
    code, body = _get(port, "/api/report?week=2023-W99", "POST")
    assert code == 400 and body["error"].startswith("week: ")
    code, body = _get(port, "/api/report?week=2020-W02", "POST")
    assert code == 400 and "no events in week 2020-W02" in body["error"]


def test_no_daemon_recorded_says_what_holds_the_store(tmp_path, running):
    """A stale address file (its process gone) is ignored; the lock error says what to do."""
    cfg_path, daemon = running
    path = address_path(daemon.store.path)
    path.write_text(json.dumps({"pid": 2**22 + 12345, "host": "127.0.0.1", "port": 1}))
    out = _cli(cfg_path, "alerts")
    assert out.returncode == 1
    assert "no running `vlm-monitor run` recorded itself" in out.stderr
