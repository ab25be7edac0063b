"""The four probes share one interface and export exactly to the serving LinearProbe."""

import numpy as np
import pytest
from sklearn.exceptions import NotFittedError

from collectors.probe.calibration import IsotonicTable, TemperatureScaling
from collectors.probe.linear import LinearProbe
from retrain.calibrate import choose_calibration
from retrain.evaluate import auroc
from retrain.probes.estimators import L1SparseProbe, L2LogisticProbe
from retrain.probes.stacked import StackedProbe, last_layers
from retrain.probes.torch_probe import NormLinearProbe

rng = np.random.default_rng(0)
N, D = 1500, 24
X = (rng.normal(size=(N, D)) * rng.uniform(0.2, 5, D) + 2).astype(np.float32)
SUPPORT = [0, 3, 7]
Y = (X[:, SUPPORT] - 2).sum(1) + rng.normal(0, 1.5, N) > 0

PROBES = {
    "l2": lambda: L2LogisticProbe(),
    "l1": lambda: L1SparseProbe(),
    "layernorm_linear": lambda: NormLinearProbe(lr=1e-2, max_epochs=200),
    "stacked": lambda: StackedProbe((1, 2), L2LogisticProbe()),
}


@pytest.mark.parametrize("kind", PROBES)
def test_interface_and_exact_export(kind, tmp_path):
    probe = PROBES[kind]()
    with pytest.raises(NotFittedError):
        probe.predict_proba(X)
    assert probe.fit(X[:1000], Y[:1000]) is probe
    p = probe.predict_proba(X[1000:])
    assert p.shape == (500,) and ((p >= 0) & (p <= 1)).all()
    assert auroc(p, Y[1000:]) > 0.85
    served = probe.to_linear_probe(layer=1, pooling="last_prompt_token", version="v3")
    loaded = LinearProbe.load(served.save(tmp_path))
    np.testing.assert_allclose(
        loaded.logits(X[1000:]), probe.decision_function(X[1000:]), rtol=1e-4, atol=1e-4
    )
    assert loaded.metadata["probe_kind"].endswith(probe.kind.split("_")[-1])
    if kind == "stacked":
        assert loaded.layers == (1, 2)
    if kind == "layernorm_linear":
        assert loaded.input_norm is not None and loaded.metadata["probe_kind"] == "layernorm_linear"


def test_l1_probe_selects_the_informative_units():
    probe = L1SparseProbe().fit(X, Y)
    assert set(SUPPORT) <= set(probe.selected_units_.tolist())
    assert len(probe.selected_units_) < D


def test_l2_chooses_C_by_cross_validation():
    probe = L2LogisticProbe(Cs=(1e-4, 1.0)).fit(X, Y)
    assert set(probe.cv_auroc_) == {1e-4, 1.0} and probe.C_ in probe.cv_auroc_


def test_early_stopping_stops_before_max_epochs_on_noise():
    probe = NormLinearProbe(max_epochs=200, patience=3, lr=1e-2).fit(X, rng.permutation(Y))
    assert probe.epochs_ < 200 and probe.best_epoch_ <= probe.epochs_


def test_stacked_probe_reads_a_mapping_in_layer_order():
    probe = StackedProbe((2, 3)).fit({3: X[:, 12:], 2: X[:, :12]}, Y)
    np.testing.assert_allclose(
        probe.decision_function({2: X[:, :12], 3: X[:, 12:]}), probe.decision_function(X), rtol=1e-5
    )
    with pytest.raises(ValueError, match="no states for decoder layers"):
        probe.stack({2: X[:, :12]})
    assert last_layers(4, 2) == (2, 3)


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="both right and wrong"):
        L2LogisticProbe().fit(X, np.ones(N))
    with pytest.raises(ValueError, match="2-D"):
        L1SparseProbe().fit(X[:, 0], Y)


def test_calibration_choice_by_heldout_ece():
    z = rng.normal(0, 3, 4000)
    logistic = rng.random(4000) < 1 / (1 + np.exp(-z / 2.0))
    choice = choose_calibration(z, logistic)
    assert set(choice.heldout_ece) == {"temperature", "isotonic"}
    assert choice.method == min(choice.heldout_ece, key=choice.heldout_ece.get)
    assert isinstance(choice.calibration, (TemperatureScaling, IsotonicTable))
    # a step-shaped truth that no sigmoid fits: isotonic must win
    step = rng.random(4000) < np.where(z > 1.0, 0.95, 0.3)
    assert choose_calibration(z, step).method == "isotonic"
    assert choose_calibration(z, step, method="temperature").method == "temperature"
    with pytest.raises(ValueError, match="calibration method"):
        choose_calibration(z, step, method="platt")
