"""deploy/: the Prometheus alert rules and the Grafana dashboard, checked with the real tools.

``promtool`` checks and unit-tests the rules; a real Prometheus server scrapes a running
daemon (ingesting from the embedded broker, with a collector sending heartbeats) and
evaluates every rule and every dashboard query against what the daemon exposes.
The tools come from Debian's ``prometheus`` package: CI installs it and sets
``VLM_MONITOR_REQUIRE_TOOLS=1``, so there a missing tool fails instead of skipping.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
RULES = ROOT / "deploy" / "prometheus" / "vlm-monitor-rules.yml"
DASHBOARD = ROOT / "deploy" / "grafana" / "vlm-monitor-dashboard.json"


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        if os.environ.get("VLM_MONITOR_REQUIRE_TOOLS") == "1":
            pytest.fail(f"{name} is not installed (Debian package prometheus)")
        pytest.skip(f"{name} is not installed (apt-get install prometheus)")
    return path


def _dashboard_queries() -> list[tuple[str, str]]:
    panels = json.loads(DASHBOARD.read_text())["panels"]
    return [
        (p["title"], t["expr"].replace("$model", ".*"))
        for p in panels
        for t in p.get("targets", [])
    ]


def _metric_names(text: str) -> set[str]:
    return set(re.findall(r"\bvlm_monitor_[a-z_]+", text))


def test_rules_parse_and_their_unit_tests_pass():
    promtool = _tool("promtool")
    check = subprocess.run([promtool, "check", "rules", str(RULES)], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    assert "SUCCESS: 16 rules found" in check.stdout
    unit = subprocess.run(
        [promtool, "test", "rules", "vlm-monitor-rules.test.yml"],
        cwd=RULES.parent, capture_output=True, text=True,
    )  # fmt: skip
    assert unit.returncode == 0, unit.stdout + unit.stderr
    config = subprocess.run(
        [promtool, "check", "config", str(RULES.parent / "prometheus.yml")],
        capture_output=True, text=True,
    )  # fmt: skip
    assert config.returncode == 0, config.stdout + config.stderr


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _api(base: str, path: str, **params: str) -> dict:
    url = f"{base}{path}" + (f"?{urllib.parse.urlencode(params)}" if params else "")
    with urllib.request.urlopen(url, timeout=10) as answer:
        return json.loads(answer.read())


def _traffic(topics, emitter):
    from collectors.wire.events import LabelEvent, ScoredEvent

    rng, now = np.random.default_rng(5), time.time()
    for i in range(370):
        shifted = i >= 150
        ts = now - (3 * 3600 - 8 * i if not shifted else 1200 - 5 * (i - 150))
        conf = float(np.clip(rng.beta(6, 2) - (0.3 if shifted else 0.0), 0.01, 0.99))
        emitter.emit(ScoredEvent(
            f"e{i}", ts, "m", "v1", 3, "last_prompt_token", float(np.log(conf / (1 - conf))),
            conf, "serve", tag="t",
        ))  # fmt: skip
        if i % 2 == 0:
            correct = bool(rng.uniform() < conf - (0.3 if shifted else 0.0))
            emitter.emit(LabelEvent(f"e{i}", correct, ts + 60, "test"), topic=topics["labels"])


def test_prometheus_evaluates_the_rules_and_dashboard_on_a_running_daemon(
    broker, topic_prefix, tmp_path
):
    prometheus = _tool("prometheus")
    from collectors.transport.emitter import KafkaEmitter
    from monitor.config.load import parse_config
    from monitor.service.daemon import MonitorDaemon
    from monitor.store.database import Store

    names = ("events", "labels", "alerts", "control", "heartbeats")
    topics = {k: f"{topic_prefix}.{k}" for k in names}
    cfg = parse_config({"reliability_monitor": {
        "monitoring": {"drift_detection_interval": "1s", "detection_window": "1h",
                       "reference_window": "30m", "bootstrap_resamples": 20,
                       "mmd_permutations": 100},
        "kafka": {"bootstrap_servers": broker.bootstrap_servers, "topics": topics},
        "store": {"path": str(tmp_path / "m.duckdb"), "reports_dir": str(tmp_path / "r")},
        "alerts": {"sinks": ["log", "store"]},
        "metrics": {"port": 0},
    }}, base_dir=tmp_path)  # fmt: skip
    emitter = KafkaEmitter(
        topics["events"], bootstrap_servers=broker.bootstrap_servers,
        heartbeat_topic=topics["heartbeats"], heartbeat_interval_s=0.5, collector_id="pod-a",
        model_id="m",
    )  # fmt: skip
    _traffic(topics, emitter)
    assert emitter.flush(timeout_s=30)
    web = f"127.0.0.1:{_free_port()}"
    base = f"http://{web}"
    with Store.from_config(cfg.reliability_monitor.store) as store:
        daemon = MonitorDaemon(cfg, store)
        daemon.metrics_interval = "1s"
        with daemon:
            (tmp_path / "prometheus.yml").write_text(
                "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
                f"rule_files: ['{RULES}']\n"
                "scrape_configs:\n"
                "  - job_name: vlm-monitor\n"
                f"    static_configs: [{{targets: ['127.0.0.1:{daemon.metrics_port}']}}]\n"
            )
            server = subprocess.Popen(
                [prometheus, f"--config.file={tmp_path / 'prometheus.yml'}",
                 f"--storage.tsdb.path={tmp_path / 'tsdb'}", f"--web.listen-address={web}"],
                stdout=subprocess.DEVNULL, stderr=open(tmp_path / "prometheus.log", "w"),
            )  # fmt: skip
            try:
                _wait_for_data(base, daemon)
                exposed = _metric_names(_scrape(daemon.metrics_port))
                rules = _api(base, "/api/v1/rules")["data"]["groups"]
                evaluated = [r for g in rules for r in g["rules"]]
                assert len(evaluated) == 16
                assert all(r["health"] == "ok" for r in evaluated), [
                    (r["name"], r.get("lastError")) for r in evaluated if r["health"] != "ok"
                ]
                firing = {r["name"] for r in evaluated if r["state"] == "firing"}
                assert "VlmMonitorIngestDown" not in firing and "VlmMonitorDown" not in firing
                used = _metric_names(RULES.read_text() + DASHBOARD.read_text())
                assert used <= exposed, f"not exposed by the daemon: {sorted(used - exposed)}"
                empty = []
                for title, expr in _dashboard_queries():
                    answer = _api(base, "/api/v1/query", query=expr)
                    assert answer["status"] == "success", (title, expr, answer)
                    if not answer["data"]["result"]:
                        empty.append(title)
                # only what this run never produced: no retrain, no restart, no lost event
                assert set(empty) <= {"Retrains (1 d)", "Alert deliveries (15 min)"}, empty
            finally:
                server.terminate()
                server.wait(10)
    emitter.close(timeout_s=5)


def _scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
        return answer.read().decode()


def _wait_for_data(base: str, daemon, timeout_s: float = 90.0) -> None:
    """Until Prometheus holds a few scrapes of a daemon that has scored the shifted window."""
    deadline = time.monotonic() + timeout_s
    ready_since = None
    while time.monotonic() < deadline:
        time.sleep(0.5)
        try:
            up = _api(base, "/api/v1/query", query='vlm_monitor_ece{model="m"}')
            beats = _api(base, "/api/v1/query", query="vlm_monitor_collector_connected")
        except OSError:
            continue  # not listening yet
        if up["data"]["result"] and beats["data"]["result"]:
            ready_since = ready_since or time.monotonic()
            if time.monotonic() - ready_since > 4:  # rate() needs two samples
                return
    pytest.fail(f"no drift results or heartbeats in Prometheus within {timeout_s} s")
