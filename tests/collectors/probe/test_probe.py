import pickle

import numpy as np
import pytest
import torch

from collectors.probe.linear import LinearProbe, ProbeFileError


def _probe() -> LinearProbe:
    return LinearProbe(
        weight=np.arange(4, dtype=np.float32),
        bias=-0.5,
        temperature=2.0,
        layer=3,
        version="v7",
        metadata={"auroc": 0.9},
    )


def test_confidence_is_temperature_scaled_sigmoid():
    states = np.array([[1.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 1.0]])
    z = np.array([-0.5, 2.5])
    np.testing.assert_allclose(_probe().logits(states), z)
    np.testing.assert_allclose(_probe().predict_proba(states), 1 / (1 + np.exp(-z / 2.0)))


def test_torch_and_numpy_logits_agree():
    states = np.random.default_rng(0).normal(size=(5, 4)).astype(np.float32)
    probe = _probe()
    np.testing.assert_allclose(
        probe.logits_torch(torch.from_numpy(states)).numpy(), probe.logits(states), rtol=1e-6
    )


def test_roundtrip(tmp_path):
    path = _probe().save(tmp_path)
    loaded = LinearProbe.load(path)
    np.testing.assert_array_equal(loaded.weight, _probe().weight)
    assert (loaded.bias, loaded.temperature, loaded.layer, loaded.version) == (-0.5, 2.0, 3, "v7")
    assert loaded.metadata == {"auroc": 0.9}


def test_pickle_payload_is_refused(tmp_path):
    path = _probe().save(tmp_path)
    path.with_suffix(".safetensors").write_bytes(pickle.dumps({"weight": np.zeros(4)}))
    with pytest.raises(ProbeFileError):
        LinearProbe.load(path)


def test_missing_file(tmp_path):
    with pytest.raises(ProbeFileError, match="cannot load probe"):
        LinearProbe.load(tmp_path / "nope.json")


def test_bad_temperature():
    with pytest.raises(ValueError, match="temperature"):
        LinearProbe(weight=np.ones(2), bias=0.0, temperature=0.0)
