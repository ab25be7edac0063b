"""The store's probes table follows the registry: every version, one champion, why and when."""

import numpy as np
from retrain_synth import DIM, T0, fill, synth
from test_triggers import config

from monitor.retraining.lifecycle import sync_probes
from monitor.retraining.triggers import retrain_now
from retrain.registry import ProbeRegistry

HOUR = 3600.0


def _by_version(store):
    return {row["version"]: row for row in store.probes()}


def test_two_promotions_and_a_rejection_leave_one_champion(tmp_store, tmp_path):
    cfg = config(tmp_path)
    first = fill(tmp_store, *synth(800, 0), t0=T0, prefix="a")
    second = fill(tmp_store, *synth(800, 1, shift=1.5), t0=T0 + HOUR, prefix="b")
    rng = np.random.default_rng(2)  # labels independent of the states: no probe can be fitted
    noise = rng.normal(size=(800, DIM)).astype(np.float32), rng.random(800) < 0.5
    third = fill(tmp_store, *noise, t0=T0 + 2 * HOUR, prefix="c")

    outcomes = [retrain_now(cfg, tmp_store, window=w, now=w[1]) for w in (first, second, third)]
    assert [o.status for o in outcomes] == ["promoted", "promoted", "rejected"], outcomes

    rows = _by_version(tmp_store)
    assert {v: r["status"] for v, r in rows.items()} == {
        "v1": "retired", "v2": "champion", "v3": "rejected",
    }  # fmt: skip
    assert rows["v1"]["reason"].startswith("replaced by v2")
    assert rows["v3"]["reason"] == "failed: above_chance"
    assert rows["v1"]["status_ts"] == rows["v2"]["status_ts"]  # retired when v2 was promoted
    for row in rows.values():  # held-out figures of each version, from its own metadata
        assert 0.0 <= row["metrics"]["challenger"]["auroc"] <= 1.0
        assert row["model_id"] == "m" and row["hidden_dim"] == DIM
    assert rows["v2"]["metrics"]["champion"] is not None  # v2 was judged against v1

    # By hand, outside the daemon: the next sync (daemon start) catches the store up.
    registry = ProbeRegistry(tmp_path / "reg")
    registry.promote("v1", reason="rolled back by hand")
    sync_probes(tmp_store, registry, "m")
    rows = _by_version(tmp_store)
    assert [v for v, r in rows.items() if r["status"] == "champion"] == ["v1"]
    assert rows["v1"]["reason"] == "rolled back by hand"
    assert rows["v2"]["status"] == "retired" and rows["v2"]["reason"].startswith("replaced by v1")


def test_a_registry_without_history_yields_its_pointer(tmp_store, tmp_path):
    cfg = config(tmp_path)
    window = fill(tmp_store, *synth(800, 0), t0=T0)
    assert retrain_now(cfg, tmp_store, window=window, now=window[1]).status == "promoted"
    registry = ProbeRegistry(tmp_path / "reg")
    registry.history_path.unlink()  # a registry written before the history was kept
    assert [h["version"] for h in registry.history()] == ["v1"]
    (registry.history_path).write_text('{"version": "v1", "ts": 1.0}\n{torn')
    assert [h["version"] for h in registry.history()] == ["v1"]  # the torn line is skipped
    sync_probes(tmp_store, registry, "m")
    assert _by_version(tmp_store)["v1"]["status"] == "champion"
