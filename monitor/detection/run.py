"""One drift-detection run: every detector on every subject, stored, alerted, counted.

For each subject (:class:`monitor.store.queries.Subject`: model, probe version and
request tag) seen in the current window ``[now - detection_window, now)``:

- the reference window is the subject's first ``reference_window`` of traffic, from
  the first time ``min_window_events`` fit in it (:func:`monitor.store.queries.reference_start`);
- **score drift** on the calibrated confidence and on the raw probe logit: KL
  divergence, PSI, Jensen-Shannon distance (bins fixed on the reference: [0, 1]
  for the confidence, the reference's range for the logit) and the KS test;
- **calibration** on the window's labelled events: ECE with adaptive ECE, MCE,
  Brier and their bootstrap intervals;
- **label-free accuracy**: the estimated accuracy's drop, with the labelled
  accuracy beside it;
- **pooled-state drift** (when the collector captured states): MMD and the
  domain-classifier AUROC, against a reference pinned per model across probe
  versions (:mod:`monitor.detection.reference`).

Each result is stored in ``detector_runs`` under the subject
``"<model>/<probe>/<tag or *>/<signal>"`` (signal: ``confidence``,
``raw_logit`` or ``state``). A detector that raises is logged with its
traceback and becomes a ``detector_error`` alert; the others still run. Alerts
then pass the :class:`monitor.alerts.policy.AlertPolicy` and go to the sinks.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from detectors.base import DetectorResult
from monitor.alerts.dispatch import (
    Alert,
    AlertSink,
    alerts_from_results,
    enabled,
    error_alert,
    send_alerts,
)
from monitor.alerts.policy import AlertPolicy
from monitor.config.durations import parse_cooldown, parse_duration
from monitor.config.settings import Config
from monitor.detection.reference import state_reference
from monitor.detection.scoring import Failure, Scored, score_window
from monitor.store import queries

__all__ = ["DetectionRun", "Failure", "Scored", "record_result", "run_detection", "score_window"]

log = logging.getLogger(__name__)


@dataclass
class DetectionRun:
    """What one run computed and sent.

    Attributes
    ----------
    now, start, end : float
        When it ran and the current window's bounds, epoch seconds.
    results : list of Scored
        Every result, in run order.
    errors : list of Alert
        ``detector_error`` alerts, one per detector that raised.
    sent, suppressed : list of Alert
        Alerts delivered, and held back by the policy.
    seconds : float
        Wall-clock duration of the run.
    """

    now: float
    start: float
    end: float
    results: list[Scored] = field(default_factory=list)
    errors: list[Alert] = field(default_factory=list)
    sent: list[Alert] = field(default_factory=list)
    suppressed: list[Alert] = field(default_factory=list)
    seconds: float = 0.0

    def latest(self, detector: str, subject: str) -> DetectorResult | None:
        """The result of ``detector`` on the stored subject string, if it ran."""
        found = (s.result for s in self.results if s.name == subject)
        return next((r for r in found if r.detector == detector), None)


def record_result(store: Any, subject: str, result: DetectorResult, ts: float | None = None) -> int:
    """Store one result in ``detector_runs`` (NaN statistic when data was insufficient)."""
    plain = result.as_dict()
    details = {
        **plain["details"],
        "p_value": result.p_value,
        "insufficient_data": result.insufficient_data,
    }
    return store.record_detector_run(
        result.detector,
        subject,
        result.statistic if result.statistic is not None else float("nan"),
        result.threshold,
        result.is_drift,
        result.n_reference,
        result.n_current,
        window_start=result.window_start,
        window_end=result.window_end,
        details=details,
        ts=ts,
    )


def run_detection(
    cfg: Config,
    store: Any,
    now: float | None = None,
    sinks: Sequence[AlertSink] = (),
    policy: AlertPolicy | None = None,
) -> DetectionRun:
    """Run every detector on every subject of the current window; store, alert.

    Parameters
    ----------
    cfg : Config
        Thresholds, windows and ``logging.alert_on_calibration_drift``.
    store : Store
        Events, labels, states; receives the detector runs.
    now : float, optional
        End of the current window, epoch seconds (default: the wall clock).
    sinks : sequence of AlertSink
        Where alerts that pass the policy go.
    policy : AlertPolicy, optional
        Defaults to one built from ``cfg.reliability_monitor.alerts``.

    Returns
    -------
    DetectionRun
    """
    t0 = time.perf_counter()
    rm = cfg.reliability_monitor
    mon = rm.monitoring
    now = time.time() if now is None else float(now)
    run = DetectionRun(now=now, start=now - parse_duration(mon.detection_window), end=now)
    if policy is None:
        policy = AlertPolicy(
            store, parse_cooldown(rm.alerts.cooldown), rm.alerts.persistence_windows
        )
    raised: list[Alert] = []
    for subject in queries.subjects(store, run.start, run.end):
        raised += _run_subject(cfg, store, subject, run)
    decision = policy.decide(enabled(raised, rm.logging))
    send_alerts(decision.send, sinks)
    run.sent = decision.send
    run.suppressed = [a for a, _ in decision.suppressed]
    run.seconds = time.perf_counter() - t0
    log.info(
        "drift run over [%s, %s) UTC: %d results, %d errors, %d alerts sent, %d held back (%.2f s)",
        _utc(run.start),
        _utc(run.end),
        len(run.results),
        len(run.errors),
        len(run.sent),
        len(run.suppressed),
        run.seconds,
    )
    return run


def _utc(ts: float) -> str:
    """``2026-12-02 03:27:23`` for seconds since the epoch (UTC)."""
    return datetime.fromtimestamp(ts, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def _run_subject(cfg: Config, store: Any, subject: queries.Subject, run: DetectionRun) -> list:
    """Score one subject over the run's window, store the results, return its alerts."""
    mon = cfg.reliability_monitor.monitoring
    span = parse_duration(mon.reference_window)
    first = queries.reference_start(store, subject, span, mon.min_window_events)
    ref = (first, first + span)
    alerts: list[Alert] = []
    state_ref = state_reference(cfg, store, subject)
    for item in score_window(cfg, store, subject, ref, (run.start, run.end), True, state_ref):
        if isinstance(item, Failure):
            err = error_alert(item.detector, item.name, item.error, run.now)
            run.errors.append(err)
            alerts.append(err)
            continue
        record_result(store, item.name, item.result, ts=run.now)
        run.results.append(item)
        alerts.extend(alerts_from_results([item.result], item.name, now=run.now))
    return alerts
