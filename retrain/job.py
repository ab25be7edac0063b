"""The champion/challenger retrain job, on arrays.

1. take the labelled states of a window (:class:`retrain.dataset.LabelledStates`;
   the daemon reads them from DuckDB in :mod:`monitor.retraining.job`);
2. when the champion's loss changed inside the window (:mod:`retrain.change_point`),
   keep only the events after the change; then a stratified train / calibrate /
   test split (disjoint);
3. fit the challenger on train, its calibration on calibrate (:mod:`retrain.challenger`);
4. score challenger and champion on the same test rows, decide (AUROC, ECE,
   Brier, bootstrap intervals);
5. publish the challenger in the registry (atomically), promote it if the rule
   holds, and announce it on the control topic; collectors switch at their next request
   boundary (:mod:`collectors.probe.reload`). The daemon then writes the registry's
   lifecycle into its ``probes`` table (:mod:`monitor.retraining.lifecycle`).

Where the stored states are projected (``logging.projection_dims``), the
challenger is fitted in the projected space and the projection is folded into
its weights; the champion is then judged by the confidences it produced at
serving time on the test rows it scored.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from collectors.probe.linear import LinearProbe, ProbeFileError
from collectors.probe.registry import PROMOTED
from retrain.challenger import Decision, decide, fit_challenger, split_indices
from retrain.change_point import find_change, log_loss
from retrain.dataset import LabelledStates
from retrain.registry import ProbeRegistry

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RetrainSettings:
    """What and how to fit; see ``reliability_monitor.retrain`` in ``config.yaml``."""

    kind: str = "l2"
    layer: int = -1
    layers: tuple[int, ...] | None = None
    pooling: str = "last_prompt_token"
    calibration: str = "auto"
    train_fraction: float = 0.6
    calibration_fraction: float = 0.2
    min_samples: int = 500
    n_resamples: int = 500
    n_bins: int = 15
    seed: int = 0
    model_id: str | None = None
    dropout: float = 0.1
    alpha: float = 0.001  # promotion rule 1 (retrain.challenger.decide)
    min_auroc: float = 0.6
    change_alpha: float | None = 0.01  # fit after a change in the window (retrain.change_point)


@dataclass(frozen=True)
class RetrainOutcome:
    """Result of one retrain attempt.

    Attributes
    ----------
    status : {"promoted", "rejected", "skipped"}
    reason : str
    window : (float, float)
        Event-time bounds read, seconds since the Unix epoch.
    n_samples : int
        Labelled states in the window.
    version, champion_version : str or None
        The challenger's version (None when skipped) and the champion before the job.
    decision : Decision or None
    calibration_method : str or None
    """

    status: str
    reason: str
    window: tuple[float, float]
    n_samples: int
    version: str | None = None
    champion_version: str | None = None
    decision: Decision | None = None
    calibration_method: str | None = None
    split_sizes: tuple[int, int, int] | None = None

    @property
    def promoted(self) -> bool:
        return self.status == "promoted"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        """One readable line."""
        if self.decision is None:
            return f"retrain {self.status}: {self.reason} ({self.n_samples} labelled states)"
        d = self.decision
        champ = (
            f"champion {self.champion_version} AUROC {d.champion.auroc:.3f} "
            f"ECE {d.champion.ece:.3f}"
            if d.champion
            else "no champion"
        )
        return (
            f"retrain {self.status}: challenger {self.version} AUROC {d.challenger.auroc:.3f} "
            f"[{d.challenger.auroc_ci[0]:.3f}, {d.challenger.auroc_ci[1]:.3f}] ECE "
            f"{d.challenger.ece:.3f} ({self.calibration_method}) vs {champ}; {d.reason}"
        )


def _champion_scores(
    champion: LinearProbe, data: Any, test: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Champion confidences on the test rows, and the rows they cover."""
    dim = data.states.shape[1]
    if champion.hidden_dim == dim:
        return champion.predict_proba(data.states[test]), test
    proj = champion.projection
    if proj is not None and proj.k == dim:
        rows = test[data.probe_version[test] == champion.version]
        return data.confidence[rows], rows
    raise ValueError(
        f"champion {champion.version} reads {champion.hidden_dim} features but the stored "
        f"states have {dim} and are not its projection"
    )


def champion_challenger(
    data: LabelledStates,
    registry: ProbeRegistry,
    window: tuple[float, float],
    settings: RetrainSettings,
    *,
    announce: Callable[[dict[str, Any]], object] | None = None,
) -> RetrainOutcome:
    """Run one champion/challenger round on the labelled states of ``window``.

    Parameters
    ----------
    data : LabelledStates
        The window's labelled states, in time order.
    registry : ProbeRegistry
    window : (float, float)
        ``start <= ts < end``, seconds since the Unix epoch (recorded in the probe).
    settings : RetrainSettings
    announce : callable, optional
        Called with the promotion message (see :mod:`retrain.announce`).

    Returns
    -------
    RetrainOutcome
        ``"skipped"`` (too few samples, unreadable champion), ``"rejected"``
        (challenger published, not promoted) or ``"promoted"``.
    """
    with registry.exclusive() as held:
        if not held:  # another daemon or a `vlm-monitor retrain` by hand: skip, do not race
            why = f"another retrain holds the registry {registry.root}"
            return RetrainOutcome("skipped", why, tuple(window), len(data))
        return _round(data, registry, window, settings, announce)


def _round(
    data: LabelledStates,
    registry: ProbeRegistry,
    window: tuple[float, float],
    settings: RetrainSettings,
    announce: Callable[[dict[str, Any]], object] | None,
) -> RetrainOutcome:
    n = len(data)
    base = {"window": window, "n_samples": n}
    if n < settings.min_samples:
        why = f"{n} labelled states in the window < min_labelled_samples {settings.min_samples}"
        return RetrainOutcome("skipped", why, **base)
    change = None
    if settings.change_alpha is not None:  # a shift inside the window: fit on what follows it
        loss = log_loss(data.confidence, data.correct)
        segment = max(20, settings.min_samples // 10)
        change = find_change(loss, data.ts, settings.change_alpha, segment)
    if change is not None:
        after = n - change.index
        if after < settings.min_samples:
            why = (f"the champion's loss changed at {_utc(change.ts)} (p={change.p_value:.1e}); "
                   f"{after} labelled states after it < min_labelled_samples "
                   f"{settings.min_samples}: waiting for labels of the new traffic")  # fmt: skip
            return RetrainOutcome("skipped", why, **base)
        log.info(
            "retrain fits after the change at %s (p=%.1e, log loss %.3f -> %.3f nats)",
            _utc(change.ts), change.p_value, change.loss_before, change.loss_after,
        )  # fmt: skip
        data, window = data.since(change.index), (change.ts, window[1])
        n, base = len(data), {"window": (change.ts, window[1]), "n_samples": len(data)}
    try:
        champion = registry.champion()
    except ProbeFileError as exc:
        return RetrainOutcome("skipped", f"champion unreadable, not replaced: {exc}", **base)
    layer, layers, pooling = settings.layer, settings.layers, settings.pooling
    projection = None
    if champion is not None:  # the challenger must read what the collectors capture
        layer, layers, pooling = champion.layer, champion.layers, champion.pooling
        if champion.projection is not None and champion.projection.k == data.states.shape[1]:
            projection = champion.projection
    try:
        train, cal, test = split_indices(
            data.correct, settings.train_fraction, settings.calibration_fraction, settings.seed
        )
    except ValueError as exc:
        return RetrainOutcome("skipped", str(exc), **base)
    version = registry.next_version()
    x, y = data.states, data.correct
    probe, choice, fitted = fit_challenger(
        x[train], y[train], x[cal], y[cal],
        kind=settings.kind, layer=layer, layers=layers, pooling=pooling, version=version,
        calibration=settings.calibration, projection=projection, seed=settings.seed,
        dropout=settings.dropout,
        metadata={
            "training_window": list(window),
            "n_train": int(len(train)),
            "n_calibration": int(len(cal)),
            "n_test": int(len(test)),
            "model_id": settings.model_id,
            "change_point": None if change is None else change.as_dict(),
        },
    )  # fmt: skip
    rows, champ_conf = test, None
    if champion is not None:
        champ_conf, rows = _champion_scores(champion, data, test)
    chall_conf = choice.calibration.apply(fitted.decision_function(x[rows]))
    decision = decide(
        chall_conf, champ_conf, y[rows],
        n_resamples=settings.n_resamples, n_bins=settings.n_bins, seed=settings.seed,
        alpha=settings.alpha, min_auroc=settings.min_auroc,
    )  # fmt: skip
    probe.metadata["evaluation"] = {
        "challenger": decision.challenger.as_dict(),
        "champion": None if decision.champion is None else decision.champion.as_dict(),
        "champion_version": None if champion is None else champion.version,
        "rules": decision.rules,
        "chance_p_value": decision.chance_p_value,
    }
    registry.publish(probe)
    status = "promoted" if decision.promote else "rejected"
    if decision.promote:
        registry.promote(version, reason=decision.reason)
    if decision.promote and announce is not None:
        announce({
            "type": PROMOTED,
            "version": version,
            "previous": None if champion is None else champion.version,
            "registry": str(registry.root),
            "model_id": settings.model_id,
            "ts": time.time(),
            "auroc": decision.challenger.auroc,
            "ece": decision.challenger.ece,
        })  # fmt: skip
    outcome = RetrainOutcome(
        status, decision.reason, window, n, version,
        None if champion is None else champion.version, decision, choice.method,
        (len(train), len(cal), len(test)),
    )  # fmt: skip
    log.info(outcome.summary())
    return outcome


def _utc(ts: float) -> str:
    from datetime import datetime, timezone

    return datetime.fromtimestamp(ts, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
