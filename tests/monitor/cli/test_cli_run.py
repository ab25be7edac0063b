"""The drift run over a real store, the daemon end to end (Tansu -> DuckDB -> jobs -> /metrics),
and the ``run --once`` and ``alerts`` commands."""

from __future__ import annotations

import dataclasses
import json
import logging
import time
import urllib.request

import numpy as np
from typer.testing import CliRunner

from collectors.wire.codec import encode
from collectors.wire.events import LabelEvent, ScoredEvent
from monitor.alerts.dispatch import StoreAlertSink
from monitor.cli.app import app
from monitor.config.load import parse_config
from monitor.detection.run import run_detection
from monitor.service.daemon import MonitorDaemon
from monitor.store.database import Store

DAY = 86400.0
T0 = 1_700_006_400.0


def _traffic(rng, start, span, n, shift=0.0, prefix="e", state_dim=8, tag="t"):
    """n events over [start, start + span): confidence ~ Beta(6, 2) - shift, labels on half."""
    conf = np.clip(rng.beta(6, 2, n) - shift, 0.01, 0.99)
    ts = start + np.sort(rng.uniform(0, span, n))
    events, labels = [], []
    for i in range(n):
        state = None
        if state_dim:
            state = (rng.normal(size=state_dim) + 3 * shift).round(3).tolist()
        events.append(
            ScoredEvent(
                event_id=f"{prefix}{i}",
                ts=float(ts[i]),
                model_id="m",
                probe_version="v1",
                layer=3,
                pooling="last_prompt_token",
                raw_logit=float(np.log(conf[i] / (1 - conf[i]))),
                confidence=float(conf[i]),
                decision="serve",
                tag=tag,
                state=state,
            )
        )
        if i % 2 == 0:  # calibrated before a shift, overconfident after it
            correct = bool(rng.uniform() < conf[i] - shift)
            labels.append(LabelEvent(f"{prefix}{i}", correct, float(ts[i]) + 60, "test"))
    return events, labels


def _cfg(tmp_path, **monitoring):
    mon = {"bootstrap_resamples": 20, "mmd_permutations": 100, **monitoring}
    return parse_config(
        {
            "reliability_monitor": {
                "monitoring": mon,
                "store": {
                    "path": str(tmp_path / "m.duckdb"),
                    "reports_dir": str(tmp_path / "r"),
                },
                "alerts": {"sinks": ["log", "store"], "cooldown": "0"},
                "metrics": {"port": 0},
            }
        },
        base_dir=tmp_path,
    )


def test_drift_run_alerts_on_a_shift_and_stays_quiet_without_one(tmp_path, caplog):
    caplog.set_level("INFO", logger="monitor.detection.run")
    cfg = _cfg(tmp_path)
    rng = np.random.default_rng(1)
    with Store(tmp_path / "m.duckdb") as store:
        store.write_batch(*_traffic(rng, T0, 7 * DAY, 400, prefix="r"))
        store.write_batch(*_traffic(rng, T0 + 7 * DAY, 7 * DAY, 400, prefix="l"))
        quiet = run_detection(cfg, store, now=T0 + 14 * DAY, sinks=[StoreAlertSink(store)])
        assert quiet.errors == [] and len(quiet.results) == 12
        drifting = [(s.name, s.result.detector) for s in quiet.results if s.result.is_drift]
        assert len(drifting) <= 1, drifting  # 12 detectors: at most one false alarm
        store.write_batch(*_traffic(rng, T0 + 14 * DAY, 7 * DAY, 400, shift=0.2, prefix="s"))
        loud = run_detection(cfg, store, now=T0 + 21 * DAY, sinks=[StoreAlertSink(store)])
        kinds = {a.kind for a in loud.sent}
        assert kinds == {"score_drift", "calibration_drift", "accuracy_drop", "state_drift"}
        kl = loud.latest("kl_divergence", "m/v1/*/confidence")
        assert kl.is_drift and kl.window_start == T0 + 14 * DAY
        stored = store.execute(
            "SELECT count(*) FROM detector_runs WHERE subject = 'm/v1/*/state' AND is_drift"
        )[0][0]
        assert stored == 2  # MMD and the domain classifier
        assert {r["kind"] for r in store.alerts(limit=100)} >= kinds
    lines = [r.getMessage() for r in caplog.records if r.name == "monitor.detection.run"]
    assert any(line.startswith("drift run over [20") and " UTC: " in line for line in lines), lines


def test_a_detector_that_raises_is_alerted_and_the_next_run_still_happens(tmp_path):
    cfg = _cfg(tmp_path)
    rng = np.random.default_rng(2)
    with Store(tmp_path / "m.duckdb") as store:
        store.write_batch(*_traffic(rng, T0, 7 * DAY, 300, prefix="r"))
        # A collector reconfigured to another layer width: states of two widths in one window.
        store.write_batch(*_traffic(rng, T0 + 7 * DAY, DAY, 200, prefix="a", state_dim=8))
        store.write_batch(*_traffic(rng, T0 + 8 * DAY, DAY, 200, prefix="b", state_dim=5))
        runs = [
            run_detection(cfg, store, now=T0 + 9 * DAY + k, sinks=[StoreAlertSink(store)])
            for k in (0, 3600)
        ]
        for run in runs:
            assert {e.detector for e in run.errors} == {"mmd", "domain_classifier_auroc"}
            assert "several widths [5, 8]" in run.errors[0].message
            assert len(run.results) == 10  # every other detector still ran and was stored
        errors = [a for a in store.alerts(limit=100) if a["kind"] == "detector_error"]
        assert len(errors) == 4 and all(a["severity"] == "critical" for a in errors)


def _scrape(port):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        return resp.read().decode()


def _metric(text, name):
    for line in text.splitlines():
        if line.startswith(name):
            return float(line.rsplit(" ", 1)[1])
    return None


def test_daemon_ingests_runs_jobs_and_serves_metrics(broker, topic_prefix, tmp_path):
    from kafka import KafkaProducer

    from monitor.ingest.admin import ensure_topics

    topics = {k: f"{topic_prefix}.{k}" for k in ("events", "labels", "alerts", "control")}
    cfg = parse_config(
        {
            "reliability_monitor": {
                "monitoring": {
                    "drift_detection_interval": "1s",
                    "detection_window": "1h",
                    "reference_window": "30m",
                    "bootstrap_resamples": 20,
                    "mmd_permutations": 100,
                },
                "kafka": {"bootstrap_servers": broker.bootstrap_servers, "topics": topics},
                "store": {
                    "path": str(tmp_path / "m.duckdb"),
                    "reports_dir": str(tmp_path / "r"),
                    "archive_dir": str(tmp_path / "archive"),
                    "retention_days": 30,
                    "ingest_batch_size": 64,
                    "max_lateness": "60d",  # the "old" model's events are 40 days old
                },
                "alerts": {"sinks": ["log", "store", "kafka"]},
                "metrics": {"port": 0},
            }
        },
        base_dir=tmp_path,
    )
    now = time.time()
    rng = np.random.default_rng(3)
    old_ev, _ = _traffic(rng, now - 40 * DAY, 600, 5, prefix="old", state_dim=0)
    old_ev = [dataclasses.replace(e, model_id="old") for e in old_ev]  # its own reference
    ref_ev, ref_lab = _traffic(rng, now - 3 * 3600, 1200, 150, prefix="r", state_dim=0)
    cur_ev, cur_lab = _traffic(rng, now - 1200, 600, 220, shift=0.3, prefix="c", state_dim=0)
    kafka = cfg.reliability_monitor.kafka
    ensure_topics(kafka.client_kwargs(), list(topics.values()))
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap_servers, linger_ms=20)
    for e in ref_ev + cur_ev:
        producer.send(topics["events"], encode(e))
    producer.flush(30)
    for e in old_ev:  # last: retention must archive them while the daemon runs
        producer.send(topics["events"], encode(e))
    for lab in ref_lab + cur_lab:
        producer.send(topics["labels"], encode(lab))
    producer.send(topics["events"], b"{not json")  # a dead letter, counted in the metrics
    producer.flush(30)
    producer.close()

    with Store.from_config(cfg.reliability_monitor.store) as store:
        daemon = MonitorDaemon(cfg, store)
        daemon.metrics_interval = "1s"
        daemon.retention_every_s = 1.0
        with daemon:
            assert daemon._ingester.batch_size == 64  # store.ingest_batch_size, as `ingest`
            deadline = time.monotonic() + 90
            kl = None
            while time.monotonic() < deadline:
                run = daemon.last_run
                kl = run and run.latest("kl_divergence", "m/v1/*/confidence")
                if kl is not None and kl.n_current == 220 and kl.n_reference == 150:
                    break
                time.sleep(0.5)
            assert kl is not None and kl.is_drift, kl
            time.sleep(1.5)  # one more metrics tick
            text = _scrape(daemon.metrics_port)
    # the daemon does what `vlm-monitor ingest` does: retention and the live status snapshot
    snapshot = json.loads((tmp_path / "m.duckdb.status.json").read_text())
    assert snapshot["counts"]["events"] == 375 and snapshot["ingest"]["running"] is False
    assert list((tmp_path / "archive" / "events").glob("day=*/*.parquet"))
    assert _metric(text, "vlm_monitor_ingest_events_total") == 375
    assert _metric(text, "vlm_monitor_ingest_dead_letters_total") == 1
    assert 0 <= _metric(text, "vlm_monitor_ingest_lag_seconds") < 900
    assert _metric(text, 'vlm_monitor_kl_divergence_nats{model="m",probe="v1",signal="confidence"')
    assert _metric(text, 'vlm_monitor_alerts_total{kind="score_drift",severity="critical"}') >= 1
    assert _metric(text, 'vlm_monitor_estimated_accuracy{model="m",probe="v1",tag="*"}') < 0.6
    assert _metric(text, "vlm_monitor_ingest_up") == 1
    assert (
        _metric(
            text, f'vlm_monitor_consumer_lag_messages{{partition="0",topic="{topics["events"]}"}}'
        )
        == 0
    )
    assert _metric(text, "vlm_monitor_broker_up") == 1
    with Store.from_config(cfg.reliability_monitor.store) as store:
        assert store.counts()["events"] == 375
        assert any(a["kind"] == "calibration_drift" for a in store.alerts(limit=200))


def test_cli_run_once_and_alerts(tmp_path):
    cfg_path = tmp_path / "config.yaml"
    cfg_path.write_text(
        "reliability_monitor:\n"
        "  monitoring: {detection_window: '3650d', bootstrap_resamples: 10,"
        " mmd_permutations: 100}\n"
        f"  store: {{path: '{tmp_path / 'm.duckdb'}', reports_dir: '{tmp_path / 'r'}'}}\n"
        "  alerts: {sinks: [store]}\n",
        encoding="utf-8",
    )
    rng = np.random.default_rng(4)
    start = time.time() - 20 * DAY
    with Store(tmp_path / "m.duckdb") as store:
        store.write_batch(*_traffic(rng, start, 7 * DAY, 300, prefix="r", state_dim=0))
        store.write_batch(*_traffic(rng, start + 7 * DAY, 7 * DAY, 300, 0.3, "s", state_dim=0))
    runner = CliRunner()
    out = runner.invoke(app, ["run", "--once", "-c", str(cfg_path)])
    assert out.exit_code == 0, out.output
    assert logging.getLogger("apscheduler").getEffectiveLevel() == logging.WARNING
    assert "m/v1/*/confidence" in out.output and "kl_divergence" in out.output
    listed = runner.invoke(app, ["alerts", "-c", str(cfg_path), "--kind", "calibration_drift"])
    assert listed.exit_code == 0, listed.output
    assert "calibration_drift" in listed.output and "score_drift" not in listed.output
    as_json = runner.invoke(app, ["alerts", "-c", str(cfg_path), "--json", "--limit", "2"])
    assert len(as_json.output.strip().splitlines()) == 2
    bad = runner.invoke(app, ["alerts", "-c", str(cfg_path), "--kind", "nope"])
    assert bad.exit_code == 2 and "must be one of" in bad.output


def test_cli_run_once_reads_the_member_stores_as_one(tmp_path):
    """A detection host with no events of its own scores the ingesters' files together."""
    rng = np.random.default_rng(4)
    start = time.time() - 20 * DAY
    reference = _traffic(rng, start, 7 * DAY, 300, prefix="r", state_dim=0)
    shifted = _traffic(rng, start + 7 * DAY, 7 * DAY, 300, 0.3, "s", state_dim=0)
    members = [tmp_path / "ingest-0.duckdb", tmp_path / "ingest-1.duckdb"]
    for k, path in enumerate(members):  # alternate events (with their labels) between stores
        with Store(path) as store:
            for events, labels in (reference, shifted):
                mine = {e.event_id for e in events[k::2]}
                store.write_batch(events[k::2], [lb for lb in labels if lb.event_id in mine])
    cfg_path = tmp_path / "config.yaml"
    listed = ", ".join(f"'{p}'" for p in members)
    cfg_path.write_text(
        "reliability_monitor:\n"
        "  monitoring: {detection_window: '3650d', bootstrap_resamples: 10,"
        " mmd_permutations: 100}\n"
        f"  store: {{path: '{tmp_path / 'home.duckdb'}', reports_dir: '{tmp_path / 'r'}',"
        f" members: [{listed}]}}\n"
        "  alerts: {sinks: [store]}\n",
        encoding="utf-8",
    )
    out = CliRunner().invoke(app, ["run", "--once", "-c", str(cfg_path)])
    assert out.exit_code == 0, out.output
    assert "m/v1/*/confidence" in out.output and "calibration_error" in out.output
    with Store(tmp_path / "home.duckdb", read_only=True) as home:
        assert home.execute("SELECT count(*) FROM events")[0][0] == 0  # nothing copied
        n = home.execute("SELECT max(n_current) FROM detector_runs")[0][0]
        assert n == 600  # every event of both members (the window spans all of them)
    missing = cfg_path.read_text().replace("ingest-1.duckdb", "nope.duckdb")
    cfg_path.write_text(missing, encoding="utf-8")
    bad = CliRunner().invoke(app, ["run", "--once", "-c", str(cfg_path)])
    assert bad.exit_code == 1 and "nope.duckdb does not exist" in bad.output
