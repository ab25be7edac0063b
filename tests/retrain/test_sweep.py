"""Layer sweep: AUROC per layer, the plateau, the PNG and the table, and the CLI on a .npz."""

import numpy as np
import pytest
from typer.testing import CliRunner

from monitor.cli.app import app
from retrain.sweep import layer_sweep, plateau_layer, plot_sweep

rng = np.random.default_rng(0)
N, D = 600, 12
Y = rng.random(N) < 0.6
SIGNAL = {0: 0.0, 1: 0.4, 2: 1.5, 3: 1.6}  # signal strength grows, then plateaus


def _states() -> dict[int, np.ndarray]:
    out = {}
    for layer, s in SIGNAL.items():
        x = rng.normal(size=(N, D))
        x[:, 0] += s * (2 * Y - 1)
        out[layer] = x.astype(np.float32)
    return out


def test_plateau_is_the_first_layer_near_the_best(tmp_path):
    result = layer_sweep(_states(), Y, tolerance=0.02)
    assert result.auroc_mean[0] < 0.6 < result.auroc_mean[2]
    assert result.plateau_layer == 2 and result.best_layer in (2, 3)
    png = plot_sweep(result, tmp_path / "s.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "| 2 |" in result.markdown() and "plateau" in result.markdown()


def test_plateau_rule():
    assert plateau_layer([0, 1, 2], [0.7, 0.895, 0.9], 0.01) == 1
    assert plateau_layer([0, 1, 2], [0.7, 0.895, 0.9], 0.0) == 2
    with pytest.raises(ValueError):
        plateau_layer([0, 1], [0.5], 0.01)


def test_cli_sweep_on_a_saved_dataset(tmp_path):
    states = _states()
    path = tmp_path / "d.npz"
    np.savez(path, states=np.stack([states[i] for i in sorted(states)]), correct=Y)
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["sweep", "--npz", str(path), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "plateau: layer" in result.output
    assert (out / "sweep.png").is_file() and (out / "sweep.md").is_file()
    bad = CliRunner().invoke(app, ["sweep", "--npz", str(tmp_path / "none.npz")])
    assert bad.exit_code == 2
