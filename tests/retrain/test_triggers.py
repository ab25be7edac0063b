"""Triggers: manual, scheduled, and automatic on calibration-drift / KL alerts, with cooldown."""

import numpy as np
from retrain_synth import T0, fill, synth
from typer.testing import CliRunner

from monitor.alerts.dispatch import Alert
from monitor.cli.app import app
from monitor.config.load import parse_config
from monitor.retraining.triggers import maybe_retrain_on_alert, maybe_retrain_scheduled, retrain_now
from retrain.registry import ProbeRegistry

NOW = T0 + 10_000


def config(tmp_path, trigger="auto", **retrain):
    data = {
        "reliability_monitor": {
            "target_layer": 1,
            "monitoring": {"retrain_trigger": trigger},
            "model": {"id": "m"},
            "store": {"path": str(tmp_path / "m.duckdb")},
            "retrain": {
                "registry_dir": str(tmp_path / "reg"), "min_labelled_samples": 200,
                "bootstrap_resamples": 100, "cooldown": "1h", "window": "1d", "announce": False,
                **retrain,
            },
        }
    }  # fmt: skip
    return parse_config(data, base_dir=tmp_path)


def alert(kind="calibration_drift", detector="calibration_error"):
    return Alert(kind, detector, "m/probe", "warning", "ece=0.2 > 0.1", 0.2, 0.1, NOW)


def test_auto_retrain_on_alert_then_cooldown(tmp_store, tmp_path):
    cfg = config(tmp_path)
    fill(tmp_store, *synth(800, 0))
    first = maybe_retrain_on_alert(cfg, tmp_store, alert(), now=NOW)
    assert first is not None and first.status == "promoted", first
    assert ProbeRegistry(tmp_path / "reg").read_state()["last_reason"] == "alert:calibration_drift"
    assert maybe_retrain_on_alert(cfg, tmp_store, alert(), now=NOW + 60) is None  # cooldown
    later = maybe_retrain_on_alert(
        cfg, tmp_store, alert("score_drift", "kl_divergence"), now=NOW + 3601
    )
    assert later is not None and later.champion_version == "v1"


def test_other_alerts_and_modes_do_not_retrain(tmp_store, tmp_path):
    fill(tmp_store, *synth(800, 0))
    auto = config(tmp_path)
    assert maybe_retrain_on_alert(auto, tmp_store, alert("accuracy_drop", "x"), now=NOW) is None
    assert maybe_retrain_on_alert(auto, tmp_store, alert("score_drift", "psi"), now=NOW) is None
    manual = config(tmp_path, trigger="manual")
    assert maybe_retrain_on_alert(manual, tmp_store, alert(), now=NOW) is None
    assert maybe_retrain_scheduled(manual, tmp_store, now=NOW) is None
    assert ProbeRegistry(tmp_path / "reg").versions() == []
    scheduled = config(tmp_path, trigger="scheduled")
    assert maybe_retrain_scheduled(scheduled, tmp_store, now=NOW).status == "promoted"


def test_minimum_sample_size_skips_without_starting_the_cooldown(tmp_store, tmp_path):
    cfg = config(tmp_path, min_labelled_samples=1000)
    fill(tmp_store, *synth(300, 0))
    outcome = maybe_retrain_on_alert(cfg, tmp_store, alert(), now=NOW)
    assert outcome.status == "skipped" and "300" in outcome.reason
    assert ProbeRegistry(tmp_path / "reg").read_state() == {}
    assert retrain_now(cfg, tmp_store, now=NOW).status == "skipped"


def test_cli_retrain_reports_the_outcome(tmp_path):
    from monitor.store.database import Store

    with Store(tmp_path / "m.duckdb") as store:
        x, y = synth(800, 0)
        import time

        fill(store, x, y, t0=time.time() - 3600)
    cfg_path = tmp_path / "c.yaml"
    import yaml

    body = config(tmp_path).model_dump(mode="json")
    cfg_path.write_text(yaml.safe_dump(body))
    result = CliRunner().invoke(app, ["retrain", "-c", str(cfg_path), "--probe", "l1"])
    assert result.exit_code == 0, result.output
    assert "retrain promoted: challenger v1" in result.output
    assert ProbeRegistry(tmp_path / "reg").champion().metadata["selected_units"]
    bad = CliRunner().invoke(app, ["retrain", "-c", str(cfg_path), "--probe", "svm"])
    assert bad.exit_code == 2 and "--probe" in bad.output
    assert np.isfinite(ProbeRegistry(tmp_path / "reg").champion().bias)
