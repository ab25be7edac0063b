import numpy as np
import pytest
import torch
from sklearn.isotonic import IsotonicRegression

from collectors.probe.calibration import IsotonicTable, TemperatureScaling
from collectors.probe.linear import LinearProbe, ProbeFileError
from collectors.probe.projection import Projection


def _data(n: int = 400, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    z = rng.normal(scale=2.0, size=n)
    correct = rng.random(n) < 1 / (1 + np.exp(-1.7 * z))  # miscalibrated w.r.t. sigmoid(z)
    return z, correct


def test_isotonic_table_matches_sklearn_in_numpy_and_torch():
    z, correct = _data()
    table = IsotonicTable.fit(z, correct)
    sk = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(z, correct)
    grid = np.linspace(-8, 8, 1001)  # includes points beyond the fitted range (clipped)
    np.testing.assert_allclose(table.apply(grid), sk.predict(grid), atol=1e-12)
    on_device = table.apply_torch(torch.tensor(grid, dtype=torch.bfloat16))
    assert on_device.dtype == torch.float32
    expected = sk.predict(torch.tensor(grid, dtype=torch.bfloat16).double().numpy())
    np.testing.assert_allclose(on_device.numpy(), expected, atol=1e-6)
    assert np.all(np.diff(table.apply(grid)) >= 0)


def test_isotonic_single_point_and_validation():
    assert IsotonicTable([0.0], [0.3]).apply_torch(
        torch.tensor([-5.0, 5.0])
    ).tolist() == pytest.approx([0.3, 0.3])
    with pytest.raises(ValueError, match="strictly increasing"):
        IsotonicTable([0.0, 0.0], [0.1, 0.2])
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        IsotonicTable([0.0, 1.0], [0.1, 1.2])


def test_temperature_torch_equals_numpy():
    t = TemperatureScaling(1.7)
    z = np.linspace(-6, 6, 13)
    np.testing.assert_allclose(t.apply_torch(torch.tensor(z)).numpy(), t.apply(z), rtol=1e-6)
    with pytest.raises(ValueError, match="temperature"):
        TemperatureScaling(0.0)


def test_probe_roundtrip_with_isotonic_projection_and_layers(tmp_path):
    z, correct = _data()
    rng = np.random.default_rng(3)
    probe = LinearProbe(
        weight=rng.normal(size=16),
        bias=0.3,
        layers=(5, 2),
        pooling="mean_image_tokens",
        version="v9",
        isotonic=IsotonicTable.fit(z, correct),
        projection=Projection.random(16, 4, seed=11),
    )
    loaded = LinearProbe.load(probe.save(tmp_path))
    assert loaded.read_layers == (5, 2) and loaded.layer == 5
    assert loaded.calibration.method == "isotonic" and loaded.projection.to_meta() == {
        "kind": "random",
        "k": 4,
        "seed": 11,
    }
    states = rng.normal(size=(20, 16)).astype(np.float32)
    np.testing.assert_allclose(loaded.predict_proba(states), probe.predict_proba(states))
    np.testing.assert_array_equal(loaded.projection.basis, probe.projection.basis)
    # corrupt metadata: says isotonic, tensors missing
    meta = tmp_path / "v9.json"
    plain = LinearProbe(weight=np.ones(16), bias=0.0, version="v9")
    plain.save(tmp_path)
    meta.write_text(meta.read_text().replace('"temperature",', '"isotonic",'))
    with pytest.raises(ProbeFileError, match="inconsistent"):
        LinearProbe.load(meta)


def test_projection_random_is_seeded_and_pca_keeps_variance():
    a, b = Projection.random(32, 8, seed=1), Projection.random(32, 8, seed=1)
    np.testing.assert_array_equal(a.basis, b.basis)
    assert not np.array_equal(a.basis, Projection.random(32, 8, seed=2).basis)
    rng = np.random.default_rng(0)
    low_rank = rng.normal(size=(500, 3)) @ rng.normal(size=(3, 32)) + 5.0
    pca = Projection.pca(low_rank, 3)
    np.testing.assert_allclose(pca.basis.T @ pca.basis, np.eye(3), atol=1e-5)
    projected = pca.apply(low_rank)
    # a rank-3 cloud keeps all its variance in 3 principal directions
    assert projected.var(axis=0).sum() == pytest.approx(low_rank.var(axis=0).sum(), rel=1e-4)
    np.testing.assert_allclose(
        pca.apply_torch(torch.tensor(low_rank[:5], dtype=torch.bfloat16)).numpy(),
        pca.apply(torch.tensor(low_rank[:5], dtype=torch.bfloat16).float().numpy()),
        rtol=1e-4,
        atol=1e-3,
    )
    with pytest.raises(ValueError, match="k must be"):
        Projection.pca(low_rank, 40)
