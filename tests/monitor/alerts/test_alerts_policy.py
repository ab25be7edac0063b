"""Deduplication, cooldown, escalation and persistence of alerts (state in a real DuckDB)."""

from __future__ import annotations

import pytest

from monitor.alerts.dispatch import Alert, StoreAlertSink, error_alert, send_alerts
from monitor.alerts.policy import AlertPolicy

SUBJECT = "m/v1/*/confidence"


def _alert(ts: float, severity: str = "warning", detector: str = "psi") -> Alert:
    return Alert("score_drift", detector, SUBJECT, severity, "psi=0.3 > 0.2", 0.3, 0.2, ts)


def _run(store, ts: float, drift: bool, detector: str = "psi") -> None:
    store.record_detector_run(detector, SUBJECT, 0.3 if drift else 0.1, 0.2, drift, 100, 100, ts=ts)


def _deliver(policy, store, alerts):
    decision = policy.decide(alerts)
    send_alerts(decision.send, [StoreAlertSink(store)])
    return decision


def test_cooldown_holds_repeats_and_lets_escalations_through(tmp_store):
    policy = AlertPolicy(tmp_store, cooldown_s=3600.0)
    assert len(_deliver(policy, tmp_store, [_alert(1000.0)]).send) == 1
    held = _deliver(policy, tmp_store, [_alert(2000.0)])
    assert held.send == [] and held.suppressed[0][1] == "cooldown"
    escalated = _deliver(policy, tmp_store, [_alert(2500.0, "critical")])
    assert [a.severity for a in escalated.send] == ["critical"]
    assert _deliver(policy, tmp_store, [_alert(3000.0, "critical")]).send == []
    assert len(_deliver(policy, tmp_store, [_alert(2500.0 + 3600.0)]).send) == 1
    assert len(tmp_store.alerts()) == 3


def test_cooldown_survives_a_restart_through_the_store(tmp_store):
    _deliver(AlertPolicy(tmp_store, cooldown_s=600.0), tmp_store, [_alert(1000.0)])
    fresh = AlertPolicy(tmp_store, cooldown_s=600.0)  # a restarted daemon
    assert fresh.decide([_alert(1300.0)]).suppressed[0][1] == "cooldown"


def test_duplicates_are_dropped_without_cooldown(tmp_store):
    policy = AlertPolicy(tmp_store, cooldown_s=0.0)
    first = _deliver(policy, tmp_store, [_alert(1000.0), _alert(1000.0)])
    assert len(first.send) == 1 and first.suppressed[0][1] == "duplicate"
    again = AlertPolicy(tmp_store).decide([_alert(1000.0)])  # same window re-run
    assert again.send == [] and again.suppressed[0][1] == "duplicate"
    other = _alert(1000.0, detector="kl_divergence")  # another detector: its own key
    assert len(policy.decide([other]).send) == 1


def test_persistence_needs_n_consecutive_drifting_runs(tmp_store):
    policy = AlertPolicy(tmp_store, persistence_windows=3)
    _run(tmp_store, 100.0, True)
    assert policy.decide([_alert(100.0)]).suppressed[0][1] == "persistence 1/3"
    _run(tmp_store, 200.0, True)
    assert policy.decide([_alert(200.0)]).suppressed[0][1] == "persistence 2/3"
    tmp_store.record_detector_run("psi", SUBJECT, float("nan"), 0.2, False, 100, 5, ts=250.0)
    _run(tmp_store, 300.0, True)  # the insufficient-data run in between is skipped
    assert len(policy.decide([_alert(300.0)]).send) == 1
    _run(tmp_store, 400.0, False)
    _run(tmp_store, 500.0, True)
    assert policy.decide([_alert(500.0)]).suppressed[0][1] == "persistence 1/3"


def test_detector_errors_skip_persistence(tmp_store):
    policy = AlertPolicy(tmp_store, persistence_windows=5)
    err = error_alert("mmd", "m/v1/*/state", ValueError("states of several widths"), 10.0)
    assert err.kind == "detector_error" and err.severity == "critical"
    assert "ValueError: states of several widths" in err.message
    assert policy.decide([err]).send == [err]


def test_bad_parameters(tmp_store):
    with pytest.raises(ValueError, match="cooldown"):
        AlertPolicy(tmp_store, cooldown_s=-1)
    with pytest.raises(ValueError, match="persistence"):
        AlertPolicy(tmp_store, persistence_windows=0)
