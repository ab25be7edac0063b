"""Alerts from detector results, and the log and store sinks (real DuckDB store)."""

from __future__ import annotations

import dataclasses
import logging

import numpy as np
import pytest

from detectors.calibration.calibration_error import CalibrationError
from detectors.scores.kl import KLDivergence
from monitor.alerts.dispatch import (
    Alert,
    LogAlertSink,
    StoreAlertSink,
    alerts_from_results,
    send_alerts,
    severity_of,
)
from monitor.store.database import Store


@pytest.fixture(scope="module")
def results():
    rng = np.random.default_rng(5)
    ref = rng.beta(5, 2, 2000)
    kl = KLDivergence()
    kl.fit(ref)
    conf = rng.uniform(0.5, 1.0, 1000)
    cal = CalibrationError().fit()
    return {
        "kl_drift": kl.score(rng.beta(2, 3, 1000), window=(100.0, 700.0)),
        "kl_ok": kl.score(rng.beta(5, 2, 1000)),
        "kl_small": kl.score(rng.beta(2, 3, 10)),
        "ece_drift": cal.score(conf, rng.uniform(size=1000) < conf - 0.15),
    }


def test_only_drifting_results_raise_alerts_with_their_kind(results):
    alerts = alerts_from_results(list(results.values()), subject="shapes-llava/w1", now=42.0)
    assert [(a.kind, a.detector) for a in alerts] == [
        ("score_drift", "kl_divergence"),
        ("calibration_drift", "calibration_error"),
    ]
    kl, ece = alerts
    r = results["kl_drift"]
    assert kl.statistic == r.statistic and kl.threshold == 0.15
    assert kl.message == f"kl_divergence={r.statistic:.3g} nats > 0.15"
    assert kl.ts == 700.0  # window end
    assert ece.ts == 42.0  # no window: `now`
    assert ece.message == f"calibration_error={results['ece_drift'].statistic:.3g} > 0.1"
    assert all(a.subject == "shapes-llava/w1" for a in alerts)


def test_no_alerts_without_drift(results):
    assert alerts_from_results([results["kl_ok"], results["kl_small"]], subject="s") == []


def test_severity():
    assert severity_of(0.2, 0.15) == "warning"
    assert severity_of(0.3, 0.15) == "critical"
    assert severity_of(0.29, 0.15) == "warning"


def test_bad_arguments(results):
    with pytest.raises(ValueError, match="subject"):
        alerts_from_results([results["kl_drift"]], subject="")
    with pytest.raises(TypeError, match="DetectorResult"):
        alerts_from_results([{"detector": "kl"}], subject="s")  # type: ignore[list-item]
    with pytest.raises(ValueError, match="kind"):
        Alert("drift", "kl", "s", "warning", "m", 1.0, 0.5, 0.0)  # type: ignore[arg-type]


def _alert(severity: str = "warning") -> Alert:
    return Alert(
        kind="score_drift",
        detector="kl_divergence",
        subject="shapes-llava/w2",
        severity=severity,
        message="kl_divergence=0.412 nats > 0.15",  # type: ignore[arg-type]
        statistic=0.412,
        threshold=0.15,
        ts=1_700_000_000.0,
    )


def test_alert_is_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        _alert().statistic = 0.0  # type: ignore[misc]


def test_log_sink_writes_one_readable_line(caplog):
    caplog.set_level(logging.INFO, logger="monitor.alerts.dispatch")
    sink = LogAlertSink()
    sink.send(_alert())
    sink.send(_alert("critical"))
    assert [r.getMessage() for r in caplog.records] == [
        "ALERT score_drift kl_divergence=0.412 nats > 0.15 "
        "(subject=shapes-llava/w2, severity=warning)",
        "ALERT score_drift kl_divergence=0.412 nats > 0.15 "
        "(subject=shapes-llava/w2, severity=critical)",
    ]
    assert [r.levelno for r in caplog.records] == [logging.WARNING, logging.ERROR]


def test_store_sink_records_the_alert_in_duckdb(results):
    with Store(":memory:") as store:
        sink = StoreAlertSink(store)
        for alert in alerts_from_results(list(results.values()), subject="w3", now=50.0):
            sink.send(alert)
        rows = store.alerts()
    by_kind = {row["kind"]: row for row in rows}
    assert set(by_kind) == {"score_drift", "calibration_drift"}
    kl = by_kind["score_drift"]
    assert kl["detector"] == "kl_divergence" and kl["subject"] == "w3"
    assert kl["statistic"] == pytest.approx(results["kl_drift"].statistic)
    assert kl["threshold"] == pytest.approx(0.15) and kl["ts"] == pytest.approx(700.0)
    assert kl["message"].startswith("kl_divergence=")


def test_store_sink_rejects_objects_without_record_alert():
    with pytest.raises(TypeError, match="record_alert"):
        StoreAlertSink(object())


def test_send_alerts_continues_past_a_failing_sink(caplog):
    class Broken:
        def send(self, alert: Alert) -> None:
            raise RuntimeError("sink down")

    caplog.set_level(logging.WARNING, logger="monitor.alerts.dispatch")
    failures = send_alerts([_alert(), _alert()], [Broken(), LogAlertSink()])
    assert failures == 2
    assert (
        sum("ALERT score_drift" in r.getMessage() and r.exc_info is None for r in caplog.records)
        == 2
    )
    assert sum(r.exc_info is not None for r in caplog.records) == 2
