"""Layer sweep: probe AUROC at every decoder layer, the plateau, a PNG curve and a table.

For each decoder layer, a probe (L2 logistic on standardised states, fixed ``C``)
is scored by stratified K-fold cross-validated AUROC on the pooled states of that
layer. The *plateau* layer is the first layer whose mean AUROC is within
``tolerance`` of the best: the earliest layer that reads almost as well as the
best one (the paper's layer-wise probing, Sec. 4, "reliability lives in the
middle layers"), which is cheaper to hook and less tied to the output head.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from retrain.evaluate import auroc
from retrain.probes.estimators import check_xy


@dataclass(frozen=True)
class SweepResult:
    """Cross-validated probe AUROC per decoder layer.

    Attributes
    ----------
    layers : tuple of int
    auroc_mean, auroc_std : tuple of float
        Over the folds, per layer.
    best_layer, plateau_layer : int
    tolerance : float
        AUROC units.
    n_samples : int
    """

    layers: tuple[int, ...]
    auroc_mean: tuple[float, ...]
    auroc_std: tuple[float, ...]
    best_layer: int
    plateau_layer: int
    tolerance: float
    n_samples: int

    def rows(self) -> list[tuple[int, float, float, str]]:
        """``(layer, mean AUROC, std, mark)`` with mark ``"best"``, ``"plateau"`` or ``""``."""
        out = []
        for layer, m, s in zip(self.layers, self.auroc_mean, self.auroc_std):
            marks = [
                n
                for n, v in (("plateau", self.plateau_layer), ("best", self.best_layer))
                if v == layer
            ]
            out.append((layer, m, s, "+".join(marks)))
        return out

    def markdown(self) -> str:
        """The table as Markdown."""
        lines = ["| layer | AUROC | std | |", "|---:|---:|---:|---|"]
        lines += [f"| {i} | {m:.4f} | {s:.4f} | {k} |" for i, m, s, k in self.rows()]
        return "\n".join(lines)


def plateau_layer(layers: Sequence[int], scores: Sequence[float], tolerance: float) -> int:
    """First layer whose score is within ``tolerance`` of the best.

    Raises
    ------
    ValueError
        Empty input, lengths differ, or ``tolerance < 0``.
    """
    if not layers or len(layers) != len(scores):
        raise ValueError("layers and scores must be non-empty and of equal length")
    if tolerance < 0:
        raise ValueError(f"tolerance must be >= 0, got {tolerance}")
    best = np.nanmax(scores)
    return next(i for i, s in zip(layers, scores) if s >= best - tolerance)


def layer_sweep(
    states: Mapping[int, np.ndarray],
    correct: np.ndarray,
    *,
    tolerance: float = 0.01,
    folds: int = 5,
    C: float = 0.1,
    seed: int = 0,
) -> SweepResult:
    """Cross-validated probe AUROC for every layer in ``states``.

    Parameters
    ----------
    states : mapping of int to ndarray of shape (n_samples, hidden_dim)
        Pooled hidden states per decoder layer (same rows for every layer).
    correct : ndarray of shape (n_samples,)
    tolerance : float
        Plateau tolerance, AUROC units.
    folds : int
    C : float
        Inverse L2 strength of the probe.
    seed : int

    Raises
    ------
    ValueError
        No layers, mismatched rows, or a single class.
    """
    if not states:
        raise ValueError("no layers to sweep")
    layers = tuple(sorted(states))
    y = check_xy(states[layers[0]], correct)[1]
    k = max(2, min(folds, int(y.sum()), int((~y).sum())))
    splits = list(StratifiedKFold(k, shuffle=True, random_state=seed).split(np.zeros(len(y)), y))
    means, stds = [], []
    for layer in layers:
        x = check_xy(states[layer], y)[0]
        per = []
        for fit_idx, held_idx in splits:
            model = make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=1000))
            model.fit(x[fit_idx], y[fit_idx])
            per.append(auroc(model.decision_function(x[held_idx]), y[held_idx]))
        means.append(float(np.mean(per)))
        stds.append(float(np.std(per)))
    best = layers[int(np.nanargmax(means))]
    return SweepResult(
        layers, tuple(means), tuple(stds), best, plateau_layer(layers, means, tolerance),
        tolerance, int(len(y)),
    )  # fmt: skip


def plot_sweep(result: SweepResult, path: str | Path, title: str = "Probe AUROC per layer") -> Path:
    """Write the AUROC-per-layer curve (mean +- std, plateau and best marked) as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    m, s = np.array(result.auroc_mean), np.array(result.auroc_std)
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot(result.layers, m, marker="o", label="probe AUROC (CV mean)")
    ax.fill_between(result.layers, m - s, m + s, alpha=0.2, label="+- 1 std over folds")
    ax.axhline(max(m) - result.tolerance, ls=":", c="grey", label=f"best - {result.tolerance}")
    ax.axvline(
        result.plateau_layer, ls="--", c="C2", label=f"plateau: layer {result.plateau_layer}"
    )
    ax.set_xlabel("decoder layer")
    ax.set_ylabel("AUROC")
    ax.set_xticks(result.layers)
    ax.set_title(f"{title} (n={result.n_samples})")
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
