"""The pooled-state reference stays put across probe versions; scores stay per version."""

from __future__ import annotations

import numpy as np
import pytest

from collectors.wire.events import ScoredEvent
from monitor.config.load import parse_config
from monitor.detection.reference import state_reference
from monitor.detection.run import run_detection
from monitor.store.database import Store
from monitor.store.queries import Subject

DAY = 86400.0
T0 = 1_700_006_400.0


def _week(rng, start, version, shift, n=300, prefix="e"):
    ts = start + np.sort(rng.uniform(0, 7 * DAY, n))
    conf = rng.beta(6, 2, n)
    return [
        ScoredEvent(f"{prefix}{i}", float(ts[i]), "m", version, 3, "last_prompt_token",
                    float(np.log(conf[i] / (1 - conf[i]))), float(conf[i]), "serve",
                    state=(rng.normal(size=8) + shift).round(3).tolist())
        for i in range(n)
    ]  # fmt: skip


def _cfg(tmp_path, **monitoring):
    return parse_config({"reliability_monitor": {
        "monitoring": {"bootstrap_resamples": 20, "mmd_permutations": 100, **monitoring},
        "store": {"path": str(tmp_path / "m.duckdb")},
        "alerts": {"sinks": ["store"]},
    }}, base_dir=tmp_path)  # fmt: skip


@pytest.fixture
def promoted_after_a_shift(tmp_path):
    """v1 for two weeks; the states shift and v2 is promoted; v2 serves two more weeks."""
    rng = np.random.default_rng(4)
    store = Store(tmp_path / "m.duckdb")
    store.write_batch(_week(rng, T0, "v1", 0.0, prefix="a") + _week(rng, T0 + 7 * DAY, "v1", 0.0,
                                                                      prefix="b"))  # fmt: skip
    store.write_batch(_week(rng, T0 + 14 * DAY, "v2", 0.6, prefix="c")
                      + _week(rng, T0 + 21 * DAY, "v2", 0.6, prefix="d"))  # fmt: skip
    yield store
    store.close()


def _state_drift(run):
    return {s.result.detector: s.result for s in run.results if s.signal == "state"}


def test_state_drift_is_measured_against_the_models_reference(tmp_path, promoted_after_a_shift):
    store, now = promoted_after_a_shift, T0 + 28 * DAY
    pinned = run_detection(_cfg(tmp_path), store, now=now)
    v2 = {k: r for k, r in _state_drift(pinned).items()}
    assert v2["mmd"].is_drift and v2["domain_classifier_auroc"].is_drift
    # each version its own reference: v2's starts after the shift, and sees nothing
    own = run_detection(_cfg(tmp_path, state_reference="probe"), store, now=now)
    assert not any(r.is_drift for r in _state_drift(own).values())
    # the score drift of v2 is still against v2's own first week (same confidences: quiet)
    kl = pinned.latest("kl_divergence", "m/v2/*/confidence")
    assert kl is not None and not kl.is_drift


def test_a_pinned_range_takes_precedence(tmp_path, promoted_after_a_shift):
    cfg = _cfg(tmp_path, pinned_references={"m": {"start": "2023-11-15T00:00:00Z",
                                                  "end": "2023-11-22T00:00:00Z"}})  # fmt: skip
    subject, window = state_reference(cfg, promoted_after_a_shift, Subject("m", "v2"))
    assert subject == Subject("m", None) and window == (1_700_006_400.0, 1_700_611_200.0)
    with pytest.raises(Exception, match="before end"):
        _cfg(tmp_path, pinned_references={"m": {"start": "2023-11-22", "end": "2023-11-15"}})
    with pytest.raises(Exception, match="ISO 8601"):
        _cfg(tmp_path, pinned_references={"m": {"start": "last week", "end": "2023-11-15"}})
