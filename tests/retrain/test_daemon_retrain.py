"""The daemon wires alerts to the retrain trigger: a KL or calibration alert refits the probe."""

import time

from retrain_synth import fill, synth
from test_triggers import alert, config

from monitor.service.daemon import MonitorDaemon
from retrain.registry import ProbeRegistry


def test_drift_alert_retrains_once_per_run(tmp_store, tmp_path):
    cfg = config(tmp_path)
    fill(tmp_store, *synth(800, 0), t0=time.time() - 3600)  # inside the last retrain.window
    daemon = MonitorDaemon(cfg, tmp_store, ingest=False, serve_metrics=False)
    other = alert("accuracy_drop", "estimated_accuracy")
    outcome = daemon.retrain_on_alerts([other, alert(), alert("score_drift", "kl_divergence")])
    assert outcome is not None and outcome.status == "promoted", outcome
    assert ProbeRegistry(tmp_path / "reg").versions() == ["v1"]  # one retrain, not two
    assert daemon.retrain_on_alerts([alert()]) is None  # cooldown


def test_scheduled_job_is_registered(tmp_store, tmp_path):
    daemon = MonitorDaemon(config(tmp_path), tmp_store, ingest=False, serve_metrics=False)
    assert "retrain" in [job.name for job in daemon.jobs()]
    assert daemon.retrain_job() is None  # trigger is "auto": the schedule does nothing
