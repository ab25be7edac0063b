"""Alerts: turn drifting detector results into alerts and send them to sinks.

Only results with ``is_drift=True`` raise an alert; an ``insufficient_data``
result never does. The kind says what drifted: ``"calibration_drift"`` for the
calibration detector (the design card's "alert on calibration drift", its own
kind so it can be routed apart), ``"state_drift"`` for the pooled-state
detectors (MMD, domain classifier), ``"accuracy_drop"`` for the label-free
accuracy estimate, ``"score_drift"`` for the score distributions (KL, PSI, JS,
KS); a detector that raised gives ``"detector_error"``. Severity is
``"critical"`` when the statistic is at least twice its threshold, ``"warning"``
otherwise (a detector error is always critical).

The log and store sinks live here; the webhook and Kafka sinks in
:mod:`monitor.alerts.sinks`; deduplication, cooldown and persistence in
:mod:`monitor.alerts.policy`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal, Protocol

from detectors.base import DetectorResult

AlertKind = Literal[
    "score_drift", "calibration_drift", "state_drift", "accuracy_drop", "detector_error"
]
Severity = Literal["warning", "critical"]
KINDS: tuple[str, ...] = (
    "score_drift",
    "calibration_drift",
    "state_drift",
    "accuracy_drop",
    "detector_error",
)
SEVERITY_RANK = {"warning": 1, "critical": 2}

CALIBRATION_DETECTORS: frozenset[str] = frozenset({"calibration_error"})
"""Detector names whose drift is calibration drift."""
STATE_DETECTORS: frozenset[str] = frozenset({"mmd", "domain_classifier_auroc"})
"""Detector names whose drift is drift of the pooled hidden states."""
ACCURACY_DETECTORS: frozenset[str] = frozenset({"estimated_accuracy_drop"})
"""Detector names whose drift is a drop of the (estimated) accuracy."""

CRITICAL_RATIO = 2.0
"""A statistic at or above ``CRITICAL_RATIO * threshold`` is critical."""

ALERT_SCHEMA = "vlm-monitor.alert/1"
"""``schema`` field of an alert's JSON form (webhook body, Kafka message value)."""

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Alert:
    """One alert raised by a drifting detector result.

    Attributes
    ----------
    kind : {"score_drift", "calibration_drift", "state_drift", "accuracy_drop", "detector_error"}
        What drifted (see the module docstring), or that a detector raised.
    detector : str
        Detector name, e.g. ``"kl_divergence"``.
    subject : str
        What was monitored, e.g. ``"shapes-llava/window 2024-W03"``.
    severity : {"warning", "critical"}
        ``"critical"`` when ``statistic >= 2 * threshold``.
    message : str
        One readable line, e.g. ``"kl_divergence=0.412 nats > 0.15"``.
    statistic : float
        The detector statistic (detector's unit).
    threshold : float
        The threshold it exceeded (same unit).
    ts : float
        When the drift was seen, seconds since the Unix epoch (the window end if known).
    """

    kind: AlertKind
    detector: str
    subject: str
    severity: Severity
    message: str
    statistic: float
    threshold: float
    ts: float

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown alert kind {self.kind!r}; expected one of {KINDS}")
        if self.severity not in ("warning", "critical"):
            raise ValueError(f"unknown alert severity {self.severity!r}")

    def log_line(self) -> str:
        """``"ALERT <kind> <message> (subject=..., severity=...)"``."""
        where = f"(subject={self.subject}, severity={self.severity})"
        return f"ALERT {self.kind} {self.message} {where}"

    def as_dict(self) -> dict[str, Any]:
        """JSON-serialisable form with a ``schema`` field (webhook body, Kafka value)."""
        return {"schema": ALERT_SCHEMA, **asdict(self)}


def alert_kind(detector: str) -> AlertKind:
    """Alert kind of a detector name (see the module docstring)."""
    if detector in CALIBRATION_DETECTORS:
        return "calibration_drift"
    if detector in STATE_DETECTORS:
        return "state_drift"
    if detector in ACCURACY_DETECTORS:
        return "accuracy_drop"
    return "score_drift"


def error_alert(detector: str, subject: str, exc: BaseException, ts: float) -> Alert:
    """A critical ``detector_error`` alert for a detector that raised ``exc``."""
    text = f"{type(exc).__name__}: {exc}"
    if len(text) > 300:
        text = text[:297] + "..."
    return Alert(
        kind="detector_error",
        detector=detector,
        subject=subject,
        severity="critical",
        message=f"{detector} failed: {text}",
        statistic=float("nan"),
        threshold=float("nan"),
        ts=ts,
    )


def severity_of(statistic: float, threshold: float) -> Severity:
    """``"critical"`` if ``statistic >= CRITICAL_RATIO * threshold`` (for threshold > 0)."""
    if threshold > 0 and statistic >= CRITICAL_RATIO * threshold:
        return "critical"
    return "warning"


def alerts_from_results(
    results: Sequence[DetectorResult], subject: str, now: float | None = None
) -> list[Alert]:
    """One alert per drifting result, in the order of ``results``.

    Parameters
    ----------
    results : sequence of DetectorResult
        Results of one or more detectors.
    subject : str
        What was monitored (model, window), copied into each alert.
    now : float, optional
        Timestamp (epoch seconds) for results without ``window_end``;
        defaults to ``time.time()``.

    Returns
    -------
    list of Alert
        Empty when nothing drifted.

    Raises
    ------
    TypeError
        An element is not a :class:`DetectorResult`.
    ValueError
        ``subject`` is empty.
    """
    if not subject:
        raise ValueError("subject must be a non-empty string")
    alerts = []
    for r in results:
        if not isinstance(r, DetectorResult):
            raise TypeError(f"expected DetectorResult, got {type(r).__name__}")
        if not r.is_drift or r.statistic is None:
            continue
        ts = r.window_end if r.window_end is not None else (time.time() if now is None else now)
        unit = r.details.get("unit", "")
        stat = f"{r.statistic:.3g}" + (f" {unit}" if unit and unit != "probability" else "")
        p_value = f" (p={r.p_value:.3g})" if r.p_value is not None else ""
        alerts.append(
            Alert(
                kind=alert_kind(r.detector),
                detector=r.detector,
                subject=subject,
                severity=severity_of(r.statistic, r.threshold),
                message=f"{r.detector}={stat} > {r.threshold:.3g}{p_value}",
                statistic=r.statistic,
                threshold=r.threshold,
                ts=ts,
            )
        )
    return alerts


def enabled(alerts: Iterable[Alert], logging_config: Any) -> list[Alert]:
    """The alerts the ``logging`` section of the config asks for, in order.

    ``logging.alert_on_calibration_drift: false`` drops ``calibration_drift``
    alerts (the results are still stored). The one filter every path uses: the
    daemon's drift runs and the demo.
    """
    keep_calibration = bool(getattr(logging_config, "alert_on_calibration_drift", True))
    return [a for a in alerts if keep_calibration or a.kind != "calibration_drift"]


class AlertSink(Protocol):
    """Anything that can receive alerts."""

    def send(self, alert: Alert) -> None: ...


class LogAlertSink:
    """Write one line per alert through :mod:`logging` (WARNING, or ERROR when critical).

    Parameters
    ----------
    log : logging.Logger, optional
        Logger to use; defaults to ``monitor.alerts.dispatch``.
    """

    def __init__(self, log: logging.Logger | None = None) -> None:
        self.log = log if log is not None else logger

    def send(self, alert: Alert) -> None:
        """Log ``alert.log_line()``."""
        level = logging.ERROR if alert.severity == "critical" else logging.WARNING
        self.log.log(level, "%s", alert.log_line())


class StoreAlertSink:
    """Record alerts in the monitor store via ``store.record_alert(...)``.

    Parameters
    ----------
    store : object
        Anything with ``record_alert(kind, detector, subject, severity, message,
        statistic, threshold, ts)`` (normally :class:`monitor.store.database.Store`).

    Raises
    ------
    TypeError
        ``store`` has no callable ``record_alert``.
    """

    def __init__(self, store: Any) -> None:
        if not callable(getattr(store, "record_alert", None)):
            raise TypeError(f"{type(store).__name__} has no record_alert() method")
        self.store = store

    def send(self, alert: Alert) -> None:
        """Store one alert (positional arguments, in the documented order)."""
        self.store.record_alert(
            alert.kind,
            alert.detector,
            alert.subject,
            alert.severity,
            alert.message,
            alert.statistic,
            alert.threshold,
            alert.ts,
        )


def send_alerts(alerts: Iterable[Alert], sinks: Sequence[AlertSink]) -> int:
    """Send every alert to every sink; a failing sink does not stop the others.

    Returns
    -------
    int
        Number of (alert, sink) deliveries that raised; each is logged with its traceback.
    """
    failures = 0
    for alert in alerts:
        for sink in sinks:
            try:
                sink.send(alert)
            except Exception:
                failures += 1
                logger.exception(
                    "alert sink %s failed for %s", type(sink).__name__, alert.log_line()
                )
    return failures


__all__ = [
    "ACCURACY_DETECTORS",
    "Alert",
    "AlertKind",
    "AlertSink",
    "CALIBRATION_DETECTORS",
    "KINDS",
    "LogAlertSink",
    "STATE_DETECTORS",
    "StoreAlertSink",
    "alert_kind",
    "alerts_from_results",
    "error_alert",
    "send_alerts",
    "severity_of",
]
