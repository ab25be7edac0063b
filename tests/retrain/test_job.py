"""Champion/challenger job on labelled states read back from a real DuckDB store."""

import dataclasses
import functools

import duckdb
import numpy as np
import pytest
from retrain_synth import DIM, T0, fill, synth
from sklearn.metrics import roc_auc_score

from collectors.probe.linear import LinearProbe
from collectors.probe.projection import Projection
from monitor.retraining.job import run_retrain
from monitor.store.labelled import read_labelled_states
from retrain.challenger import chance_p_value, decide, fit_challenger, split_indices
from retrain.job import RetrainSettings
from retrain.registry import ProbeRegistry


def settings(**kw) -> RetrainSettings:
    base = dict(layer=1, min_samples=200, n_resamples=200, model_id="m")
    return RetrainSettings(**{**base, **kw})


@functools.cache
def _champion_base() -> LinearProbe:
    x, y = synth(2000, 1)
    tr, cal, _ = split_indices(y, 0.6, 0.2, 0)
    probe, _, _ = fit_challenger(
        x[tr], y[tr], x[cal], y[cal], kind="l2", layer=1, layers=None,
        pooling="last_prompt_token", version="v1", calibration="temperature",
    )  # fmt: skip
    return probe


def champion_probe(temperature: float = 1.0) -> LinearProbe:
    """A good champion (fitted on fresh data of the same law) with the given temperature."""
    return dataclasses.replace(_champion_base(), temperature=temperature, projection=None)


def test_reads_fp16_blob_states_from_the_store(tmp_store):
    x, y = synth(50, 0)
    fill(tmp_store, x, y)
    data = read_labelled_states(tmp_store, T0, T0 + 25, model_id="m")
    assert len(data) == 25 and data.states.shape == (25, DIM)
    np.testing.assert_allclose(data.states, x[:25], atol=2e-3)  # fp16 round trip
    np.testing.assert_array_equal(data.correct, y[:25])


class _LegacyStore:
    """The walking skeleton's layout: ``state FLOAT[]`` on the events, hence on the view."""

    def __init__(self, x, y):
        self.con = duckdb.connect()
        self.con.execute(
            "CREATE TABLE events (event_id VARCHAR, ts DOUBLE, model_id VARCHAR, "
            "probe_version VARCHAR, confidence DOUBLE, state FLOAT[])"
        )
        self.con.execute("CREATE TABLE labels (event_id VARCHAR, correct BOOLEAN)")
        for i, (s, c) in enumerate(zip(x, y)):
            self.con.execute(
                "INSERT INTO events VALUES (?, ?, 'm', 'v1', 0.5, ?)", [f"e{i}", T0 + i, s.tolist()]
            )
            self.con.execute("INSERT INTO labels VALUES (?, ?)", [f"e{i}", bool(c)])
        self.con.execute(
            "CREATE VIEW labelled_events AS SELECT * FROM labels JOIN events USING (event_id)"
        )

    def execute(self, sql, params=None):
        return self.con.execute(sql, params or []).fetchall()


def test_reads_float_list_states_of_the_legacy_layout():
    x, y = synth(30, 0)
    data = read_labelled_states(_LegacyStore(x, y), None, None)
    np.testing.assert_allclose(data.states, x, rtol=1e-6)
    np.testing.assert_array_equal(data.correct, y)


def test_miscalibrated_champion_is_replaced_and_announced(tmp_store, tmp_path):
    reg = ProbeRegistry(tmp_path / "reg")
    reg.publish(champion_probe(temperature=0.25))  # same ranking, overconfident
    reg.promote("v1")
    window = fill(tmp_store, *synth(1500, 2))
    sent = []
    outcome = run_retrain(tmp_store, reg, window, settings(), announce=sent.append)
    assert outcome.status == "promoted", outcome.summary()
    d = outcome.decision
    assert d.challenger.ece < d.champion.ece and d.rules == {
        "above_chance": True, "auroc_not_worse": True, "ece_better": True,
    }  # fmt: skip
    assert reg.champion_version() == outcome.version == "v2"
    assert sent and sent[0]["version"] == "v2" and sent[0]["previous"] == "v1"
    assert outcome.split_sizes == (900, 300, 300)
    meta = reg.champion().metadata
    assert (
        meta["training_window"] == list(window) and meta["evaluation"]["champion_version"] == "v1"
    )
    rows = {r["version"]: r for r in tmp_store.probes()}
    assert rows["v2"]["status"] == "champion"


@pytest.mark.parametrize("seed", range(5))
def test_challenger_fitted_on_shuffled_labels_is_never_promoted(seed):
    x, y = synth(1500, 10 + seed)
    tr, cal, te = split_indices(y, 0.6, 0.2, seed)
    shuffled = np.random.default_rng(seed).permutation(y)
    probe, choice, fitted = fit_challenger(
        x[tr], shuffled[tr], x[cal], shuffled[cal], kind="l2", layer=1, layers=None,
        pooling="last_prompt_token", version="v2", seed=seed,
    )  # fmt: skip
    for champion in (champion_probe(1.0), champion_probe(0.25)):
        d = decide(probe.predict_proba(x[te]), champion.predict_proba(x[te]), y[te], seed=seed)
        assert not d.promote, d
    assert not decide(probe.predict_proba(x[te]), None, y[te], seed=seed).promote


def test_no_challenger_on_shuffled_labels_is_promoted_across_forty_seeds():
    """The false-promotion rate of rule 1: each seed fits a probe on shuffled labels and is
    judged with no champion (rule 1 alone). The bootstrap-interval rule it replaced passed
    about one in ten."""
    promoted, p_values = [], []
    for seed in range(40):
        x, y = synth(1000, 100 + seed)
        tr, cal, te = split_indices(y, 0.6, 0.2, seed)
        shuffled = np.random.default_rng(seed).permutation(y)
        probe, _, _ = fit_challenger(
            x[tr], shuffled[tr], x[cal], shuffled[cal], kind="l2", layer=1, layers=None,
            pooling="last_prompt_token", version="v2", seed=seed,
        )  # fmt: skip
        d = decide(probe.predict_proba(x[te]), None, shuffled[te], n_resamples=50, seed=seed)
        promoted.append(d.promote)
        p_values.append(d.chance_p_value)
    assert sum(promoted) == 0, [i for i, p in enumerate(promoted) if p]
    assert np.mean(np.array(p_values) < 0.5) < 0.8  # the test is not vacuous: p spreads out


def test_rule_one_test_is_exact_under_the_null_and_passes_real_signal():
    rng = np.random.default_rng(0)
    y = rng.random(300) < 0.6
    null_p = [chance_p_value(rng.random(300), y) for _ in range(400)]
    assert 0.02 < np.mean(np.array(null_p) < 0.05) < 0.09  # about alpha
    signal = np.clip(0.5 + 0.2 * (y - 0.5) + 0.15 * rng.standard_normal(300), 0, 1)
    d = decide(signal, None, y, n_resamples=50)
    assert d.promote and d.chance_p_value < 1e-6 and d.challenger.auroc > 0.7
    with pytest.raises(ValueError, match="min_auroc"):
        decide(signal, None, y, min_auroc=0.4)


@pytest.mark.parametrize("with_champion", [True, False])
def test_job_on_shuffled_labels_in_the_store_promotes_nothing(tmp_store, tmp_path, with_champion):
    reg = ProbeRegistry(tmp_path / "reg")
    if with_champion:
        reg.publish(champion_probe(temperature=0.25))
        reg.promote("v1")
    x, y = synth(1500, 3)
    window = fill(tmp_store, x, np.random.default_rng(0).permutation(y))
    outcome = run_retrain(tmp_store, reg, window, settings())
    assert outcome.status == "rejected", outcome.summary()
    assert reg.champion_version() == ("v1" if with_champion else None)


def test_too_few_labelled_states_skip_the_job(tmp_store, tmp_path):
    window = fill(tmp_store, *synth(100, 4))
    outcome = run_retrain(tmp_store, ProbeRegistry(tmp_path), window, settings())
    assert outcome.status == "skipped" and "min_labelled_samples" in outcome.reason
    assert ProbeRegistry(tmp_path).versions() == []


def test_projected_states_fold_into_a_raw_state_probe(tmp_store, tmp_path):
    raw, y = synth(1500, 5)
    proj = Projection.pca(raw, 8)
    champion = champion_probe(0.25)
    champion.projection = proj
    reg = ProbeRegistry(tmp_path)
    reg.publish(champion)
    reg.promote("v1")
    window = fill(tmp_store, proj.apply(raw), y)
    outcome = run_retrain(tmp_store, reg, window, settings())
    assert outcome.status in ("promoted", "rejected")
    challenger = reg.load(outcome.version)
    assert challenger.hidden_dim == DIM and challenger.projection.k == 8
    # folded: the raw-state weights lie in the span of the projection basis, and rank well
    w_proj = np.linalg.lstsq(proj.basis, challenger.weight, rcond=None)[0]
    np.testing.assert_allclose(proj.basis @ w_proj, challenger.weight, atol=1e-4)
    assert roc_auc_score(y, challenger.logits(raw)) > 0.8
