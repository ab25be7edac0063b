"""Retrain cost and the AUROC a projection of captured states costs the retrained probe.

Part 1, refit + calibrate (goal: <= 60 s for 100,000 x 4,096 states on
2 cores). Synthetic states shaped like a 7B model's residual stream: a rank-64
latent factor model ``x = z A + 0.5 e`` of width 4,096 (float32, 1.6 GB), with
correctness drawn from a logistic model on two latent directions. Timed in one
run: the L2 probe with ``C`` chosen by 3-fold CV (on a 10,000-row subsample)
and the final L-BFGS fit on all rows (:class:`retrain.probes.estimators.L2LogisticProbe`),
then the calibration choice on 20,000 further rows (:mod:`retrain.calibrate`).
Printed: seconds per stage, the total and its ratio to the 60 s goal, and the
test AUROC / ECE.

Part 2, projection cost. A challenger fitted on states projected to ``k``
dimensions (seeded random basis, folded back into raw-state weights, exactly as
:mod:`retrain.job` does) against one fitted on the full states; test AUROC and
its difference (negative = cost). Run on the synthetic 4,096-wide states for
k = 256, 512, and on the bundled reference VLM's states (``--reference``;
the reference model is only 128 wide, so k = 256 and 512 are expansions that
lose nothing by construction; smaller k are added to show where loss begins).

Run: ``python bench/retrain.py`` (full size, a few minutes with the data
generation); ``--quick`` for 20,000 x 1,024. ``--threads`` sets torch threads.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from collectors.probe.projection import Projection  # noqa: E402
from detectors.calibration.reliability import expected_calibration_error as ece  # noqa: E402
from retrain.calibrate import choose_calibration  # noqa: E402
from retrain.challenger import fit_challenger  # noqa: E402
from retrain.evaluate import auroc  # noqa: E402
from retrain.probes.estimators import L2LogisticProbe  # noqa: E402

GOAL_S = 60.0


def synthetic(n: int, d: int, seed: int, rank: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """``(n, d)`` float32 factor-model states and bool correctness (chunked, low memory)."""
    rng = np.random.default_rng(seed)
    basis = np.random.default_rng(1234).standard_normal((rank, d), dtype=np.float32) / np.sqrt(rank)
    w = np.zeros(rank)
    w[:2] = (2.0, -1.0)
    x = np.empty((n, d), dtype=np.float32)
    y = np.empty(n, dtype=bool)
    for i in range(0, n, 10_000):
        z = rng.standard_normal((min(10_000, n - i), rank), dtype=np.float32)
        x[i : i + len(z)] = z @ basis + 0.5 * rng.standard_normal((len(z), d), dtype=np.float32)
        y[i : i + len(z)] = rng.random(len(z)) < 1 / (1 + np.exp(-(z @ w)))
    return x, y


def part1(n: int, d: int) -> None:
    print(f"part 1: refit + calibrate on {n:,} x {d:,} states, {torch.get_num_threads()} thread(s)")
    t = time.perf_counter()
    x, y = synthetic(n, d, seed=0)
    x_cal, y_cal = synthetic(n // 5, d, seed=1)
    x_test, y_test = synthetic(20_000, d, seed=2)
    print(f"  data generated in {time.perf_counter() - t:.1f} s (not timed below)")
    t0 = time.perf_counter()
    probe = L2LogisticProbe().fit(x, y)
    t1 = time.perf_counter()
    choice = choose_calibration(probe.decision_function(x_cal), y_cal)
    t2 = time.perf_counter()
    total = t2 - t0
    conf = choice.calibration.apply(probe.decision_function(x_test))
    print(f"  fit (C by 3-fold CV on 10,000 rows + final L-BFGS): {t1 - t0:6.1f} s  (C={probe.C_})")
    print(
        f"  calibrate (temperature vs isotonic, 5-fold ECE):    {t2 - t1:6.1f} s  ({choice.method})"
    )
    print(f"  total {total:.1f} s; ratio to the {GOAL_S:.0f} s goal: {total / GOAL_S:.2f}")
    print(f"  test AUROC {auroc(conf, y_test):.4f}, ECE {ece(conf, y_test):.4f}")


def projection_cost(x: np.ndarray, y: np.ndarray, dims: list[int], label: str) -> None:
    n = len(y)
    tr, cal, te = (
        np.arange(0, int(0.6 * n)),
        np.arange(int(0.6 * n), int(0.8 * n)),
        np.arange(int(0.8 * n), n),
    )

    def fit(proj: Projection | None) -> float:
        xs = x if proj is None else proj.apply(x)
        probe, _, _ = fit_challenger(
            xs[tr], y[tr], xs[cal], y[cal], kind="l2", layer=0, layers=None,
            pooling="last_prompt_token", version="v1", projection=proj,
        )  # fmt: skip
        return auroc(probe.predict_proba(x[te]), y[te])  # the folded probe reads raw states

    full = fit(None)
    print(f"part 2 ({label}, width {x.shape[1]}, n={n}): full-state AUROC {full:.4f}")
    for k in dims:
        a = fit(Projection.random(x.shape[1], k, seed=0))
        print(f"  k={k:4d}: AUROC {a:.4f}  difference {a - full:+.4f}")


def reference_states(n: int) -> tuple[np.ndarray, np.ndarray]:
    from monitor.config.load import load_config
    from monitor.demo.traffic import capture_states
    from monitor.reference_vlm.model import load_reference_model
    from monitor.reference_vlm.shapes import make_samples

    rm = load_config().reliability_monitor
    model, processor = load_reference_model()
    return capture_states(
        model, processor, make_samples(n, seed=7), layer=rm.target_layer, pooling=rm.probe.pooling
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="20,000 x 1,024 instead")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--skip-fit", action="store_true", help="part 2 only")
    parser.add_argument("--reference", type=int, default=0, help="requests of the reference VLM")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    n, d = (20_000, 1_024) if args.quick else (100_000, 4_096)
    if not args.skip_fit:
        part1(n, d)
    x, y = synthetic(10_000 if args.quick else 30_000, d, seed=3)
    projection_cost(x, y, [256, 512], "synthetic")
    if args.reference:
        xr, yr = reference_states(args.reference)
        projection_cost(xr, yr, [16, 32, 64, 256, 512], "reference VLM")


if __name__ == "__main__":
    main()
