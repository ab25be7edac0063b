"""Fit a challenger probe and decide champion/challenger on one shared test split.

Promotion rule (all must hold, on the same held-out test split):

1. the challenger carries signal (``above_chance``): the one-sided Mann-Whitney U
   test of its confidence on right against wrong answers rejects AUROC = 0.5 at
   ``alpha`` (default 0.001; U / (n_right n_wrong) is the AUROC, Mann & Whitney
   1947; on a test split disjoint from training this is the exact null of a probe
   fitted on noise, so at most ``alpha`` of such probes pass), **and** its AUROC
   is at least ``min_auroc`` (default 0.6: a ranking barely above chance is not
   worth serving even when the test split is large enough to tell);
2. it is not worse beyond the interval: the upper bound of the paired bootstrap
   interval of ``AUROC(challenger) - AUROC(champion)`` is >= 0;
3. its ECE (Guo et al. 2017, Eq. 3) is lower than the champion's.

Without a champion only rule 1 applies. Rule 1 is what keeps a challenger
fitted on noise (e.g. shuffled labels) from being promoted on ECE alone; the
bootstrap interval's lower bound above 0.5, used before, passed about one such
challenger in ten (its coverage is below nominal on a few hundred rows).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.stats import mannwhitneyu
from sklearn.model_selection import train_test_split

from collectors.probe.linear import LinearProbe
from collectors.probe.projection import Projection
from detectors.bootstrap import resample_indices
from retrain.calibrate import CalibrationChoice, choose_calibration
from retrain.evaluate import Evaluation, evaluate, paired_auroc_difference
from retrain.probes.estimators import L1SparseProbe, L2LogisticProbe, Probe
from retrain.probes.stacked import StackedProbe
from retrain.probes.torch_probe import NormLinearProbe

PROBE_KINDS = ("l2", "l1", "layernorm_linear")


def make_probe(
    kind: str, layers: tuple[int, ...] | None = None, seed: int = 0, dropout: float = 0.1
) -> Probe:
    """A fresh probe of ``kind`` (stacked over ``layers`` when more than one).

    ``dropout`` is the LayerNorm+Linear probe's (``kind="layernorm_linear"``).

    Raises
    ------
    ValueError
        Unknown kind.
    """
    if kind == "l2":
        base: Probe = L2LogisticProbe(seed=seed)
    elif kind == "l1":
        base = L1SparseProbe(seed=seed)
    elif kind == "layernorm_linear":
        base = NormLinearProbe(dropout=dropout, seed=seed)
    else:
        raise ValueError(f"unknown probe kind {kind!r}; expected one of {PROBE_KINDS}")
    return StackedProbe(layers, base) if layers is not None and len(layers) > 1 else base


def split_indices(
    correct: np.ndarray, train_fraction: float, calibration_fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Stratified, disjoint train / calibrate / test row indices.

    Raises
    ------
    ValueError
        A split would hold fewer than 2 rows of a class.
    """
    y = np.asarray(correct, dtype=bool)
    idx = np.arange(len(y))
    if min(int(y.sum()), int((~y).sum())) < 6:
        raise ValueError(
            f"need >= 6 right and 6 wrong answers to split, got {int(y.sum())}/{int((~y).sum())}"
        )
    rest = 1.0 - train_fraction
    train, other = train_test_split(idx, test_size=rest, stratify=y, random_state=seed)
    cal, test = train_test_split(
        other, test_size=1.0 - calibration_fraction / rest, stratify=y[other], random_state=seed
    )
    return np.sort(train), np.sort(cal), np.sort(test)


def fit_challenger(
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_cal: np.ndarray,
    y_cal: np.ndarray,
    *,
    kind: str,
    layer: int,
    layers: tuple[int, ...] | None,
    pooling: str,
    version: str,
    calibration: str = "auto",
    projection: Projection | None = None,
    seed: int = 0,
    metadata: dict | None = None,
    dropout: float = 0.1,
) -> tuple[LinearProbe, CalibrationChoice, Probe]:
    """Fit a probe on the train split and its calibration on the disjoint calibration split.

    Parameters
    ----------
    x_train, x_cal : ndarray of shape (n, dim)
        Pooled states (projected by ``projection`` when given).
    y_train, y_cal : ndarray of shape (n,), bool

    Returns
    -------
    probe : LinearProbe
        Serving format, reading raw hidden states (projection folded in).
    choice : CalibrationChoice
    fitted : Probe
        The fitted probe in the states' own space.
    """
    fitted = make_probe(kind, layers, seed, dropout).fit(x_train, y_train)
    choice = choose_calibration(
        fitted.decision_function(x_cal), y_cal, method=calibration, seed=seed
    )
    meta = {"calibration_heldout_ece": choice.heldout_ece, **(metadata or {})}
    units = getattr(getattr(fitted, "base", fitted), "selected_units_", None)
    if units is not None:
        meta["selected_units"] = [int(u) for u in units]
    probe = fitted.to_linear_probe(
        layer=layer,
        pooling=pooling,
        version=version,
        calibration=choice.calibration,
        projection=projection,
        metadata=meta,
        **({} if isinstance(fitted, StackedProbe) else {"layers": layers}),
    )
    return probe, choice, fitted


@dataclass(frozen=True)
class Decision:
    """Outcome of a champion/challenger comparison on one test split."""

    promote: bool
    reason: str
    challenger: Evaluation
    champion: Evaluation | None = None
    auroc_diff: float | None = None
    auroc_diff_ci: tuple[float, float] | None = None
    rules: dict[str, bool] = field(default_factory=dict)
    chance_p_value: float | None = None  # rule 1's test (:func:`chance_p_value`)


def decide(
    challenger_conf: np.ndarray,
    champion_conf: np.ndarray | None,
    correct: np.ndarray,
    *,
    n_resamples: int = 500,
    n_bins: int = 15,
    seed: int = 0,
    alpha: float = 0.001,
    min_auroc: float = 0.6,
) -> Decision:
    """Apply the promotion rule (module docstring) to confidences on the same test rows.

    Parameters
    ----------
    challenger_conf, champion_conf : ndarray of shape (n_test,)
        Calibrated probabilities; ``champion_conf`` None when there is no champion.
    correct : ndarray of shape (n_test,), bool
    alpha : float
        Significance level of rule 1's test, in (0, 1).
    min_auroc : float
        Rule 1's floor on the challenger's AUROC, in [0.5, 1].

    Raises
    ------
    ValueError
        ``alpha`` or ``min_auroc`` outside its range.
    """
    if not (0.0 < alpha < 1.0):
        raise ValueError(f"alpha must be in (0, 1), got {alpha!r}")
    if not (0.5 <= min_auroc <= 1.0):
        raise ValueError(f"min_auroc must be in [0.5, 1], got {min_auroc!r}")
    y = np.asarray(correct, dtype=bool)
    boot = resample_indices(len(y), n_resamples, seed)
    chall = evaluate(challenger_conf, y, n_bins=n_bins, resamples=boot)
    p_value = chance_p_value(challenger_conf, y)
    rules = {"above_chance": bool(p_value < alpha and chall.auroc >= min_auroc)}
    if champion_conf is None:
        ok = rules["above_chance"]
        why = "no champion; challenger above chance" if ok else "challenger AUROC not above chance"
        return Decision(ok, why, chall, rules=rules, chance_p_value=p_value)
    champ = evaluate(champion_conf, y, n_bins=n_bins, resamples=boot)
    diff, diff_ci = paired_auroc_difference(challenger_conf, champion_conf, y, boot)
    rules["auroc_not_worse"] = bool(diff_ci[1] >= 0.0)
    rules["ece_better"] = bool(chall.ece < champ.ece)
    ok = all(rules.values())
    failed = [k for k, v in rules.items() if not v]
    why = "all rules hold" if ok else "failed: " + ", ".join(failed)
    return Decision(ok, why, chall, champ, diff, diff_ci, rules, p_value)


def chance_p_value(confidence: np.ndarray, correct: np.ndarray) -> float:
    """One-sided p-value of AUROC > 0.5: Mann-Whitney U of right above wrong answers.

    Parameters
    ----------
    confidence : ndarray of shape (n,)
    correct : ndarray of shape (n,), bool

    Returns
    -------
    float
        In [0, 1]; 1.0 when only one class is present.
    """
    y = np.asarray(correct, dtype=bool)
    conf = np.asarray(confidence, dtype=np.float64)
    if y.all() or not y.any():
        return 1.0
    return float(mannwhitneyu(conf[y], conf[~y], alternative="greater").pvalue)
