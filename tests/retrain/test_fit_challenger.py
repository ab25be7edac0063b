import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from retrain.calibrate import fit_temperature
from retrain.challenger import fit_challenger, split_indices


def fit_linear_probe(states, correct, *, layer, seed=0):
    """The one fitting path (the demo's first probe and every challenger): L2, temperature."""
    states, correct = np.asarray(states), np.asarray(correct)
    kw = dict(kind="l2", layer=layer, layers=None, pooling="last_prompt_token", version="v1")
    kw.update(calibration="temperature", seed=seed)
    if not (
        states.ndim == 2 and correct.shape == (len(states),) and 0 < correct.sum() < len(correct)
    ):
        return fit_challenger(states, correct, states, correct, **kw)[0]  # names what is wrong
    train, cal, _ = split_indices(correct, 0.6, 0.3, seed)
    return fit_challenger(states[train], correct[train], states[cal], correct[cal], **kw)[0]


def test_temperature_recovers_the_generating_value():
    rng = np.random.default_rng(0)
    z = rng.normal(0, 4, size=20_000)
    true_t = 2.5
    y = rng.random(z.size) < 1 / (1 + np.exp(-z / true_t))
    assert fit_temperature(z, y) == pytest.approx(true_t, rel=0.05)


def test_probe_separates_and_folds_standardisation():
    rng = np.random.default_rng(1)
    n, d = 2_000, 32
    direction = rng.normal(size=d)
    states = rng.normal(size=(n, d)) * rng.uniform(0.1, 10, size=d) + 5.0
    y = (states - 5.0) @ direction + rng.normal(0, 2, size=n) > 0
    probe = fit_linear_probe(states, y, layer=3, seed=0)
    assert probe.hidden_dim == d and probe.layer == 3
    assert roc_auc_score(y, probe.predict_proba(states)) > 0.95


def test_shuffled_labels_give_chance_auroc_on_fresh_data():
    rng = np.random.default_rng(2)
    states = rng.normal(size=(1_000, 16))
    probe = fit_linear_probe(states, rng.random(1_000) < 0.5, layer=0, seed=0)
    fresh = rng.normal(size=(4_000, 16))
    assert abs(roc_auc_score(rng.random(4_000) < 0.5, probe.predict_proba(fresh)) - 0.5) < 0.05


@pytest.mark.parametrize(
    ("states", "correct", "match"),
    [
        (np.zeros(10), np.zeros(10), "2-D"),
        (np.zeros((10, 2)), np.zeros(9), "shape"),
        (np.zeros((10, 2)), np.ones(10), "both right and wrong"),
    ],
)
def test_bad_input_names_the_problem(states, correct, match):
    with pytest.raises(ValueError, match=match):
        fit_linear_probe(states, correct, layer=0)
