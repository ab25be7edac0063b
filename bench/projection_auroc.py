"""How much probe AUROC a k-dimensional projection of captured states costs, on the reference model.

Captured pooled states can be projected to ``k`` dimensions before they leave
the serving process (``logging.projection_dims``; :mod:`collectors.probe.projection`).
A probe refitted from projected states then sees less. This measures the cost:

1. the bundled reference VLM answers ``--n`` labelled POPE-style requests;
   the collector's hook captures the pooled state of the configured layer
   (``monitor.demo.traffic.capture_states``, the same code path as serving);
2. a stratified, seeded split: logistic regression (L2, ``C=1``) fitted on the
   training part of the full states gives the reference AUROC on the test part;
3. the same for each ``k`` with a seeded random basis (mean over ``--seeds``
   seeds) and with a PCA basis fitted on the training states only.

Printed: AUROC of each variant and its difference from the full-state probe
(negative = cost). Needs ``monitor/reference_vlm/checkpoint`` (exit status 2 and
a message when it is missing). About a minute on 2 CPU cores with the defaults.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from collectors.probe.projection import Projection  # noqa: E402


def probe_auroc(
    train: np.ndarray, y_train: np.ndarray, test: np.ndarray, y_test: np.ndarray
) -> float:
    """Test AUROC of an L2 logistic-regression probe (standardised features) fitted on ``train``."""
    mean, std = train.mean(0), train.std(0) + 1e-6
    clf = LogisticRegression(C=1.0, max_iter=2000)
    clf.fit((train - mean) / std, y_train)
    return float(roc_auc_score(y_test, clf.decision_function((test - mean) / std)))


def projection_table(
    states: np.ndarray, correct: np.ndarray, dims: list[int], seeds: int = 3, seed: int = 0
) -> list[tuple[str, int, float]]:
    """Rows ``(basis, k, AUROC)``: the full state first, then random and PCA bases per ``k``.

    Parameters
    ----------
    states : ndarray of shape (n_samples, hidden_dim)
    correct : ndarray of shape (n_samples,), bool
    dims : list of int
        Projection sizes; those >= hidden_dim are skipped.
    """
    x_tr, x_te, y_tr, y_te = train_test_split(
        states, correct, test_size=0.4, stratify=correct, random_state=seed
    )
    rows = [("full", states.shape[1], probe_auroc(x_tr, y_tr, x_te, y_te))]
    for k in dims:
        if k >= states.shape[1]:
            continue
        aucs = []
        for s in range(seeds):
            proj = Projection.random(states.shape[1], k, seed=s)
            aucs.append(probe_auroc(proj.apply(x_tr), y_tr, proj.apply(x_te), y_te))
        rows.append(("random", k, float(np.mean(aucs))))
        pca = Projection.pca(x_tr, k)
        rows.append(("pca", k, probe_auroc(pca.apply(x_tr), y_tr, pca.apply(x_te), y_te)))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=2000, help="labelled requests")
    parser.add_argument("--dims", type=int, nargs="+", default=[4, 8, 16, 32, 64])
    parser.add_argument("--seeds", type=int, default=3, help="random bases averaged per k")
    parser.add_argument("--checkpoint", type=Path, default=None)
    parser.add_argument("--layer", type=int, default=None, help="default: config target_layer")
    args = parser.parse_args(argv)

    from monitor.config.load import load_config
    from monitor.demo.traffic import capture_states
    from monitor.reference_vlm.model import load_reference_model
    from monitor.reference_vlm.shapes import make_samples

    rm = load_config(Path(__file__).resolve().parent.parent / "config.yaml").reliability_monitor
    try:
        model, processor = load_reference_model(args.checkpoint)
    except FileNotFoundError as exc:
        print(f"cannot run: {exc}", file=sys.stderr)
        return 2
    layer = rm.target_layer if args.layer is None else args.layer
    states, correct = capture_states(
        model,
        processor,
        make_samples(args.n, seed=7, shift=None),
        layer=layer,
        pooling=rm.probe.pooling,
    )
    print(
        f"reference model, layer {layer} ({rm.probe.pooling}), {len(states)} requests, "
        f"accuracy {correct.mean():.1%}, hidden_dim {states.shape[1]}"
    )
    if correct.all() or not correct.any():
        print("cannot measure AUROC: every answer is right (or wrong)", file=sys.stderr)
        return 2
    rows = projection_table(states, correct, args.dims, seeds=args.seeds)
    full = rows[0][2]
    print(f"{'basis':<8}{'k':>6}{'AUROC':>9}{'vs full':>10}")
    for basis, k, auc in rows:
        print(f"{basis:<8}{k:>6}{auc:>9.3f}{auc - full:>+10.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
