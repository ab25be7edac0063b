"""When to retrain: by hand, on a schedule, or automatically on a drift alert.

``monitoring.retrain_trigger`` selects the automatic path:

- ``"auto"``: :func:`maybe_retrain_on_alert` retrains on a calibration-drift
  alert (ECE) or a KL score-drift alert;
- ``"scheduled"``: the daemon's scheduler calls :func:`maybe_retrain_scheduled`
  on ``retrain.schedule``;
- ``"manual"``: only ``vlm-monitor retrain`` (:func:`retrain_now`).

Automatic and scheduled retrains respect ``retrain.cooldown`` (since the last
fitted challenger, promoted or not, recorded in the registry's ``state.json``)
and ``retrain.min_labelled_samples``; a manual retrain ignores the cooldown.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from monitor.config.durations import parse_cooldown, parse_duration
from monitor.config.settings import Config
from monitor.retraining.job import run_retrain
from retrain.announce import announce_promotion
from retrain.job import RetrainOutcome, RetrainSettings
from retrain.registry import ProbeRegistry

log = logging.getLogger(__name__)
TRIGGER_ALERTS = {("calibration_drift", None), ("score_drift", "kl_divergence")}


def settings_from_config(cfg: Config) -> RetrainSettings:
    """:class:`RetrainSettings` from ``reliability_monitor.retrain`` and the probe section."""
    rm = cfg.reliability_monitor
    r = rm.retrain
    return RetrainSettings(
        kind=r.probe,
        layer=rm.target_layer,
        layers=None if r.layers is None else tuple(r.layers),
        pooling=rm.probe.pooling,
        calibration=r.calibration,
        train_fraction=r.train_fraction,
        calibration_fraction=r.calibration_fraction,
        min_samples=r.min_labelled_samples,
        n_resamples=r.bootstrap_resamples,
        n_bins=rm.monitoring.ece_bins,
        seed=r.seed,
        model_id=rm.model.id,
        dropout=rm.probe.dropout,
        alpha=r.promotion_alpha,
        min_auroc=r.min_auroc,
        change_alpha=r.change_alpha,
    )


def _announcer(cfg: Config):
    rm = cfg.reliability_monitor
    if not rm.retrain.announce:
        return None
    kwargs, topic = rm.kafka.client_kwargs(), rm.kafka.topics.control
    return lambda message: announce_promotion(kwargs, topic, message)


def retrain_now(
    cfg: Config,
    store: Any,
    *,
    reason: str = "manual",
    window: tuple[float, float] | None = None,
    now: float | None = None,
    settings: RetrainSettings | None = None,
) -> RetrainOutcome:
    """Run the retrain job now, whatever the cooldown.

    Parameters
    ----------
    cfg : Config
    store : monitor.store.database.Store
    reason : str
        Recorded in the registry state and the log.
    window : (float, float), optional
        Event-time bounds; default the last ``retrain.window`` before ``now``.
    now : float, optional
        Seconds since the Unix epoch; default the current time.
    settings : RetrainSettings, optional
        Default :func:`settings_from_config`.
    """
    now = time.time() if now is None else now
    r = cfg.reliability_monitor.retrain
    window = window or (now - parse_duration(r.window), now)
    registry = ProbeRegistry(r.registry_dir)
    outcome = run_retrain(
        store, registry, window, settings or settings_from_config(cfg), announce=_announcer(cfg)
    )
    if outcome.status != "skipped":
        registry.write_state(
            last_retrain_ts=now, last_reason=reason, last_status=outcome.status,
            last_version=outcome.version,
        )  # fmt: skip
    log.info("retrain (%s): %s", reason, outcome.summary())
    return outcome


def in_cooldown(cfg: Config, now: float | None = None) -> float:
    """Seconds left of the retrain cooldown (0.0 when a retrain may run)."""
    r = cfg.reliability_monitor.retrain
    last = ProbeRegistry(r.registry_dir).read_state().get("last_retrain_ts")
    if not isinstance(last, (int, float)):
        return 0.0
    now = time.time() if now is None else now
    return max(0.0, float(last) + parse_cooldown(r.cooldown) - now)


def is_trigger_alert(alert: Any) -> bool:
    """Whether an alert (``kind``, ``detector``) is a calibration-drift or KL alert."""
    kind, detector = getattr(alert, "kind", None), getattr(alert, "detector", None)
    return (kind, None) in TRIGGER_ALERTS or (kind, detector) in TRIGGER_ALERTS


def maybe_retrain_on_alert(
    cfg: Config,
    store: Any,
    alert: Any,
    *,
    now: float | None = None,
    window: tuple[float, float] | None = None,
) -> RetrainOutcome | None:
    """Retrain on a calibration-drift or KL alert when ``retrain_trigger`` is ``"auto"``.

    Parameters
    ----------
    cfg : Config
    store : monitor.store.database.Store
    alert : monitor.alerts.dispatch.Alert
        Any object with ``kind`` and ``detector``.
    now : float, optional
    window : (float, float), optional
        Default the last ``retrain.window``.

    Returns
    -------
    RetrainOutcome or None
        ``None`` when nothing was attempted (trigger not "auto", another alert
        kind, or inside the cooldown); an outcome with status ``"skipped"``
        when there were too few labelled states.
    """
    if cfg.reliability_monitor.monitoring.retrain_trigger != "auto":
        return None
    if not is_trigger_alert(alert):
        return None
    left = in_cooldown(cfg, now)
    if left > 0:
        log.info("auto-retrain on %s alert skipped: cooldown, %.0f s left", alert.kind, left)
        return None
    return retrain_now(cfg, store, reason=f"alert:{alert.kind}", window=window, now=now)


def maybe_retrain_scheduled(
    cfg: Config, store: Any, *, now: float | None = None
) -> RetrainOutcome | None:
    """The scheduler's job for ``retrain.schedule``; ``None`` unless the trigger is
    ``"scheduled"`` and the cooldown has passed."""
    if cfg.reliability_monitor.monitoring.retrain_trigger != "scheduled":
        return None
    if in_cooldown(cfg, now) > 0:
        return None
    return retrain_now(cfg, store, reason="scheduled", now=now)
