"""Benchmark: false-alarm rate on unshifted windows and detection delay on a shift, for the
fixed thresholds and for thresholds from a false-alarm rate (``monitoring.false_alarm_rate``).

The scalar drift statistics (KL divergence, PSI, Jensen-Shannon distance on the
calibrated confidence, the config's defaults as floors) and the domain classifier
on 16-d pooled states are scored on windows drawn from the reference distribution
(false alarms) and on a stream whose distribution moves at window 10 (detection
delay: windows from the change to the first alert, the change window counting 1).

Usage::

    python bench/false_alarms.py           # 400 unshifted windows per size
    python bench/false_alarms.py --quick   # 60 (a smoke run)

Printed: per detector and window size, the share of unshifted windows that alarm,
with the fixed threshold and with alpha = 0.01; then the delay on two shifts.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from detectors.scores.js import JensenShannonDistance  # noqa: E402
from detectors.scores.kl import KLDivergence  # noqa: E402
from detectors.scores.psi import PopulationStabilityIndex  # noqa: E402
from detectors.states.domain_classifier import DomainClassifierAUROC  # noqa: E402

SCALAR = {"kl_divergence": (KLDivergence, 0.15), "psi": (PopulationStabilityIndex, 0.2),
          "js_distance": (JensenShannonDistance, 0.1)}  # fmt: skip
ALPHA = 0.01


def _scalar(n_windows: int, sizes: list[int], rng: np.random.Generator) -> None:
    ref = rng.beta(6, 2, 5000)
    print(f"\nunshifted windows, Beta(6, 2) confidences, {n_windows} windows per size")
    print(f"{'detector':<16}{'events':>8}{'fixed':>10}{'alpha 0.01':>12}")
    for name, (cls, floor) in SCALAR.items():
        fixed = cls(threshold=floor).fit(ref)
        tested = cls(threshold=floor, alpha=ALPHA, null_resamples=1000).fit(ref)
        # the floor alone and the test alone, to show which one binds at each size
        test_only = cls(threshold=1e-9, alpha=ALPHA, null_resamples=1000).fit(ref)
        for n in sizes:
            windows = [rng.beta(6, 2, n) for _ in range(n_windows)]
            a = np.mean([fixed.score(w).is_drift for w in windows])
            b = np.mean([tested.score(w).is_drift for w in windows])
            c = np.mean([test_only.score(w).is_drift for w in windows])
            print(f"{name:<16}{n:>8}{a:>10.3f}{b:>12.3f}   (test alone {c:.3f})")


def _delay(rng: np.random.Generator, n: int = 300, change_at: int = 10) -> None:
    ref = rng.beta(6, 2, 5000)
    shifts = {"Beta(6,2) -> Beta(5,2)": (5, 2), "Beta(6,2) -> Beta(4,2)": (4, 2)}
    for label, (a, b) in shifts.items():
        stream = [rng.beta(6, 2, n) if i < change_at else rng.beta(a, b, n) for i in range(40)]
        for name, (cls, floor) in SCALAR.items():
            for mode, det in (("fixed", cls(threshold=floor)),
                              ("alpha", cls(threshold=floor, alpha=ALPHA))):  # fmt: skip
                det.fit(ref)
                flags = [det.score(w).is_drift for w in stream]
                before = sum(flags[:change_at])
                after = [i for i in range(change_at, len(stream)) if flags[i]]
                delay = "never" if not after else str(after[0] - change_at + 1)
                print(f"{label:<24}{name:<16}{mode:<7} false alarms before {before:>2}, "
                      f"delay {delay} windows of {n}")  # fmt: skip


def _states(n_windows: int, rng: np.random.Generator) -> None:
    ref = rng.normal(size=(2000, 16))
    floor = 0.65
    fixed = DomainClassifierAUROC(threshold=floor, n_components=8).fit(ref)
    tested = DomainClassifierAUROC(threshold=floor, n_components=8, alpha=ALPHA).fit(ref)
    old = DomainClassifierAUROC(threshold=0.75, n_components=8).fit(ref)
    print(f"\ndomain classifier, 16-d states, 300 per window, {n_windows} windows each")
    for shift in (0.0, 0.1, 0.2):
        rows = [rng.normal(size=(300, 16)) + shift for _ in range(n_windows)]
        res = [(old.score(x), fixed.score(x), tested.score(x)) for x in rows]
        auroc = np.mean([r[0].statistic for r in res])
        rates = [np.mean([r[i].is_drift for r in res]) for i in range(3)]
        print(f"  mean shift {shift:.1f}: AUROC {auroc:.3f}; alarms: fixed 0.75 {rates[0]:.2f}, "
              f"fixed 0.65 {rates[1]:.2f}, 0.65 + p < 0.01 {rates[2]:.2f}")  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    n_windows = 60 if args.quick else 400
    start = time.perf_counter()
    _scalar(n_windows, [100, 300, 1000], rng)
    print("\ndetection delay (windows of 300 events, the change at window 10 of 40)")
    _delay(rng)
    _states(10 if args.quick else 40, rng)
    print(f"\n{time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
