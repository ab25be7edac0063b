"""Prometheus /metrics, scraped over HTTP from the real prometheus_client server."""

from __future__ import annotations

import urllib.request
from types import SimpleNamespace

import pytest
from prometheus_client.parser import text_string_to_metric_families

from detectors.calibration.calibration_error import CalibrationError
from detectors.calibration.label_free import EstimatedAccuracyDrop
from detectors.scores.kl import KLDivergence
from monitor.alerts.dispatch import Alert
from monitor.detection.run import DetectionRun, Scored
from monitor.service.metrics import MonitorMetrics
from monitor.service.read_api import ReadAPI
from monitor.store.queries import Subject


def _scrape(port: int) -> dict[tuple[str, tuple], float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        assert resp.status == 200
        text = resp.read().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for fam in text_string_to_metric_families(text)
        for s in fam.samples
    }


@pytest.fixture
def metrics():
    m = MonitorMetrics()
    api = ReadAPI(m.registry, {})
    port = api.serve("127.0.0.1", 0)
    yield m, port
    api.close()


def test_ingest_rate_lag_and_counters(metrics):
    m, port = metrics
    m.observe_ingest(SimpleNamespace(n_messages=10, n_events=8, n_labels=2, n_dead=0), None, 100.0)
    m.observe_ingest(
        SimpleNamespace(n_messages=60, n_events=48, n_labels=10, n_dead=2), 150.0, 110.0 + 0
    )
    got = _scrape(port)
    assert got[("vlm_monitor_ingest_events_total", ())] == 48
    assert got[("vlm_monitor_ingest_dead_letters_total", ())] == 2
    assert got[("vlm_monitor_ingest_rate_events_per_second", ())] == pytest.approx(40 / 10)
    assert got[("vlm_monitor_ingest_lag_seconds", ())] == 0.0  # newest event is "ahead"
    m.observe_ingest(SimpleNamespace(n_messages=60, n_events=48, n_labels=10, n_dead=2), 150.0, 200)
    assert _scrape(port)[("vlm_monitor_ingest_lag_seconds", ())] == pytest.approx(50.0)


def test_detector_gauges_and_alert_counters(metrics):
    m, port = metrics
    import numpy as np

    rng = np.random.default_rng(0)
    ref, cur = rng.beta(5, 2, 1000), rng.beta(2, 3, 500)
    subject = Subject("m", "v1", None)
    kl = KLDivergence().fit(ref).score(cur)
    ece = CalibrationError(n_bootstrap=0).fit().score(cur, rng.uniform(size=500) < cur)
    acc = EstimatedAccuracyDrop().fit(ref).score(cur, labelled_confidence=cur, correct=cur > 0.4)
    run = DetectionRun(now=123.0, start=0.0, end=123.0, seconds=0.5)
    run.results = [Scored(subject, "confidence", r) for r in (kl, ece, acc)]
    alert = Alert("score_drift", "kl_divergence", "m/v1/*/confidence", "critical", "x", 1, 0.15, 1)
    run.sent = [alert, alert]
    m.observe_run(run)
    got = _scrape(port)
    labels = (("model", "m"), ("probe", "v1"), ("tag", "*"))
    assert got[
        ("vlm_monitor_kl_divergence_nats", tuple(sorted(labels + (("signal", "confidence"),))))
    ] == (pytest.approx(kl.statistic))
    assert got[("vlm_monitor_ece", labels)] == pytest.approx(ece.statistic)
    assert got[("vlm_monitor_estimated_accuracy", labels)] == pytest.approx(cur.mean())
    assert got[("vlm_monitor_labelled_accuracy", labels)] == pytest.approx((cur > 0.4).mean())
    kind = (("kind", "score_drift"), ("severity", "critical"))
    assert got[("vlm_monitor_alerts_total", kind)] == 2
    assert got[("vlm_monitor_last_drift_run_timestamp_seconds", ())] == 123.0


def test_series_of_a_subject_no_longer_scored_are_removed(metrics):
    m, port = metrics
    import numpy as np

    rng = np.random.default_rng(1)
    ref, cur = rng.beta(5, 2, 500), rng.beta(5, 2, 300)
    kl = KLDivergence().fit(ref).score(cur)
    ece = CalibrationError(n_bootstrap=0).fit().score(cur, rng.uniform(size=300) < cur)

    def run_for(*versions):
        run = DetectionRun(now=1.0, start=0.0, end=1.0, seconds=0.1)
        run.results = [
            Scored(Subject("m", v, None), "confidence", r) for v in versions for r in (kl, ece)
        ]
        m.observe_run(run)
        return _scrape(port)

    labels = lambda v: (("model", "m"), ("probe", v), ("tag", "*"))  # noqa: E731
    got = run_for("v1", "v2")
    assert ("vlm_monitor_ece", labels("v1")) in got and ("vlm_monitor_ece", labels("v2")) in got
    got = run_for("v2")  # v1 retired: its series go, v2's stay
    assert ("vlm_monitor_ece", labels("v1")) not in got
    assert not any(dict(k[1]).get("probe") == "v1" for k in got if k[0].startswith("vlm_monitor_"))
    assert got[("vlm_monitor_ece", labels("v2"))] == pytest.approx(ece.statistic)
