"""Retrain on the right data: a shift that starts mid-window is found, and the challenger is
fitted on the traffic after it."""

import json

import numpy as np
import pytest
from retrain_synth import DIM, DIRECTION, T0, synth
from test_triggers import config

from collectors.wire.events import LabelEvent, ScoredEvent
from detectors.calibration.reliability import expected_calibration_error
from monitor.retraining.triggers import retrain_now
from retrain.change_point import find_change, log_loss
from retrain.registry import ProbeRegistry


def test_a_change_in_the_loss_is_found_where_it_is():
    rng = np.random.default_rng(0)
    p = rng.uniform(0.6, 0.95, 1000)
    y = rng.random(1000) < p
    y[700:] = rng.random(300) < p[700:] - 0.3  # overconfident from row 700 on
    change = find_change(log_loss(p, y), np.arange(1000.0))
    assert change is not None and abs(change.index - 700) <= 15 and change.p_value < 1e-6
    assert change.loss_after > change.loss_before
    quiet = [find_change(log_loss(p, rng.random(1000) < p), np.arange(1000.0)) for _ in range(200)]
    assert sum(c is not None for c in quiet) <= 6  # alpha 0.01: about 2 of 200
    assert find_change(np.full(500, np.log(2.0)), np.arange(500.0)) is None  # constant loss
    assert find_change(log_loss(p[:60], y[:60]), np.arange(60.0)) is None  # too short to split
    with pytest.raises(ValueError, match="one length"):
        find_change(np.zeros(5), np.zeros(4))
    with pytest.raises(ValueError, match="alpha"):
        find_change(np.zeros(200), np.arange(200.0), alpha=0.0)


def _serve(store, states, correct, probe, t0, prefix):
    """Events as the champion served them (its confidences), with their labels."""
    conf = probe.predict_proba(states)
    events = [
        ScoredEvent(f"{prefix}{i}", t0 + i, "m", probe.version, 1, "last_prompt_token", 0.0,
                    float(c), "serve", state=s.tolist())
        for i, (s, c) in enumerate(zip(states, conf))
    ]  # fmt: skip
    labels = [LabelEvent(f"{prefix}{i}", bool(y), t0 + i + 1, "t") for i, y in enumerate(correct)]
    store.write_batch(events, labels)


def test_the_challenger_is_fitted_after_a_mid_window_shift(tmp_store, tmp_path):
    cfg = config(tmp_path, min_labelled_samples=300)
    first = synth(1200, 0)
    _serve(tmp_store, *first, _plain_probe(), T0, "a")  # anything served; v1 is fitted on it
    assert retrain_now(cfg, tmp_store, window=(T0, T0 + 1200), now=T0 + 1200).status == "promoted"
    v1 = ProbeRegistry(tmp_path / "reg").champion()
    t1 = T0 + 10_000  # the next window: 900 as before, then 1,100 after a change
    _serve(tmp_store, *synth(900, 1), v1, t1, "b")
    _serve(tmp_store, *_harder(1100, 2), v1, t1 + 900, "c")

    outcome = retrain_now(cfg, tmp_store, window=(t1, t1 + 2000), now=t1 + 2000)
    meta = json.loads((tmp_path / "reg" / "versions" / outcome.version / "probe.json").read_text())
    change = meta["metadata"]["change_point"]
    assert abs(change["ts"] - (t1 + 900)) <= 60 and change["p_value"] < 1e-6
    assert meta["metadata"]["training_window"][0] == change["ts"]
    assert outcome.n_samples == sum(meta["metadata"][k] for k in ("n_train", "n_calibration",
                                                                   "n_test"))  # fmt: skip
    assert outcome.n_samples <= 1100 + 60

    # Against a challenger fitted across the change: better calibrated on the new traffic.
    across = config(tmp_path / "across", min_labelled_samples=300, change_alpha=None)
    ProbeRegistry(tmp_path / "across" / "reg").publish(v1)
    ProbeRegistry(tmp_path / "across" / "reg").promote("v1")
    straddled = retrain_now(across, tmp_store, window=(t1, t1 + 2000), now=t1 + 2000)
    assert straddled.n_samples == 2000
    x, y = _harder(4000, 3)
    ece = {
        name: expected_calibration_error(reg.load(version).predict_proba(x), y)
        for name, reg, version in (
            ("after", ProbeRegistry(tmp_path / "reg"), outcome.version),
            ("across", ProbeRegistry(tmp_path / "across" / "reg"), straddled.version),
        )
    }
    assert ece["after"] < ece["across"], ece


def _harder(n, seed):
    """The same states, but answers right 35 points less often: the probe turns overconfident."""
    x, _ = synth(n, seed)
    p = 1 / (1 + np.exp(-(x @ DIRECTION)))
    return x, np.random.default_rng(seed + 100).random(n) < np.clip(p - 0.35, 0.0, 1.0)


def _plain_probe():
    from collectors.probe.linear import LinearProbe

    return LinearProbe(weight=np.zeros(DIM), bias=0.0, layer=1, version="v0")
