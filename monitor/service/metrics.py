"""Prometheus metrics of the daemon, served at ``/metrics`` (``prometheus_client``).

Metric names follow Prometheus' conventions (base units, ``_total`` for counters):

- ``vlm_monitor_ingest_messages_total``, ``vlm_monitor_ingest_events_total``,
  ``vlm_monitor_ingest_labels_total``, ``vlm_monitor_ingest_dead_letters_total``;
- ``vlm_monitor_ingest_rate_events_per_second``: events stored per second since
  the previous ingest observation;
- ``vlm_monitor_ingest_lag_seconds``: wall clock minus the event time of the
  newest stored event (how far the store trails the traffic);
- ``vlm_monitor_ingest_up``: 1 while the daemon's ingest thread runs, 0 while it
  is dead (it is restarted with backoff; ``vlm_monitor_ingest_restarts_total``);
- ``vlm_monitor_consumer_lag_messages{topic, partition}``: messages on the broker
  not yet stored;
- ``vlm_monitor_retrains_total{outcome}``: ``promoted``, ``rejected``, ``skipped``;
- ``vlm_monitor_kl_divergence_nats``, ``vlm_monitor_ece``,
  ``vlm_monitor_estimated_accuracy``, ``vlm_monitor_labelled_accuracy``: latest
  values per ``model``, ``probe``, ``tag`` (and ``signal`` for KL);
- ``vlm_monitor_estimate_reliable``: 0 while the pooled states have moved, so the
  label-free estimate is not to be trusted (:mod:`monitor.detection.trust`);
- ``vlm_monitor_detector_statistic``: latest statistic of every detector;
- ``vlm_monitor_alerts_total{kind, severity}``, ``vlm_monitor_detector_errors_total``;
- ``vlm_monitor_last_drift_run_timestamp_seconds``, ``vlm_monitor_drift_run_seconds``;
- ``vlm_monitor_alert_deliveries_total{outcome}``: outbox deliveries and failed tries.

Collector heartbeats and ``vlm_monitor_broker_up`` come from
:mod:`monitor.service.heartbeats`.

Each :class:`MonitorMetrics` has its own registry, so tests and several daemons
in one process never collide.
"""

from __future__ import annotations

import time
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge

_SUBJECT = ("model", "probe", "tag")


class MonitorMetrics:
    """The daemon's Prometheus metrics, updated by the ingest and drift jobs.

    Parameters
    ----------
    registry : prometheus_client.CollectorRegistry, optional
        Where to register; a new private registry by default.
    """

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.messages = Counter("vlm_monitor_ingest_messages", "Kafka records consumed", registry=r)
        self.events = Counter("vlm_monitor_ingest_events", "Scored events stored", registry=r)
        self.labels = Counter("vlm_monitor_ingest_labels", "Labels stored", registry=r)
        self.dead = Counter("vlm_monitor_ingest_dead_letters", "Dead letters stored", registry=r)
        self.alert_deliveries = Counter(
            "vlm_monitor_alert_deliveries", "Outbox delivery attempts", ["outcome"], registry=r
        )
        self.ingest_restarts = Counter(
            "vlm_monitor_ingest_restarts", "Restarts of a dead ingest thread", registry=r
        )
        self.ingest_up = Gauge(
            "vlm_monitor_ingest_up", "The daemon's ingest thread is running", registry=r
        )
        self.consumer_lag = Gauge(
            "vlm_monitor_consumer_lag_messages",
            "Messages on the broker not yet stored",
            ["topic", "partition"],
            registry=r,
        )
        self.retrains = Counter(
            "vlm_monitor_retrains", "Retrain rounds by outcome", ["outcome"], registry=r
        )
        self.rate = Gauge(
            "vlm_monitor_ingest_rate_events_per_second",
            "Events stored per second since the previous observation",
            registry=r,
        )
        self.lag = Gauge(
            "vlm_monitor_ingest_lag_seconds",
            "Wall clock minus the event time of the newest stored event",
            registry=r,
        )
        self.kl = Gauge(
            "vlm_monitor_kl_divergence_nats",
            "Latest KL divergence of a score distribution from its reference",
            [*_SUBJECT, "signal"],
            registry=r,
        )
        self.ece = Gauge(
            "vlm_monitor_ece", "Latest expected calibration error", _SUBJECT, registry=r
        )
        self.estimated_accuracy = Gauge(
            "vlm_monitor_estimated_accuracy",
            "Latest label-free accuracy estimate (mean calibrated confidence)",
            _SUBJECT,
            registry=r,
        )
        self.estimate_reliable = Gauge(
            "vlm_monitor_estimate_reliable",
            "1 while the label-free estimate is trusted, 0 while the pooled states moved",
            _SUBJECT,
            registry=r,
        )
        self.labelled_accuracy = Gauge(
            "vlm_monitor_labelled_accuracy",
            "Accuracy on the latest window's labelled events",
            _SUBJECT,
            registry=r,
        )
        self.statistic = Gauge(
            "vlm_monitor_detector_statistic",
            "Latest statistic of every detector",
            ["detector", *_SUBJECT, "signal"],
            registry=r,
        )
        self.alerts = Counter("vlm_monitor_alerts", "Alerts sent", ["kind", "severity"], registry=r)
        self.errors = Counter(
            "vlm_monitor_detector_errors", "Detector runs that raised", ["detector"], registry=r
        )
        self.last_run = Gauge(
            "vlm_monitor_last_drift_run_timestamp_seconds",
            "When the last drift run finished",
            registry=r,
        )
        self.run_seconds = Gauge(
            "vlm_monitor_drift_run_seconds", "Duration of the last drift run", registry=r
        )
        # Labelled counters start at 0 for every known label value: a series that first
        # appears at 1 shows no increase() to Prometheus, and an alert rule would miss it.
        from monitor.alerts.dispatch import KINDS, SEVERITY_RANK

        for kind in KINDS:
            for severity in SEVERITY_RANK:
                self.alerts.labels(kind, severity)
        for outcome in ("promoted", "rejected", "skipped"):
            self.retrains.labels(outcome)
        for outcome in ("delivered", "failed"):
            self.alert_deliveries.labels(outcome)
        self._ingest_prev: tuple[float, dict[str, int]] | None = None
        self._series: set[tuple[str, tuple[str, ...]]] = set()  # set by the last drift run
        self._lag_series: set[tuple[str, str]] = set()

    def observe_ingest(
        self, totals: Any, newest_event_ts: float | None, now: float | None = None
    ) -> None:
        """Update the ingest metrics from cumulative totals.

        Parameters
        ----------
        totals : IngestStats-like
            Cumulative ``n_messages``, ``n_events``, ``n_labels``, ``n_dead``.
        newest_event_ts : float or None
            Event time of the newest stored event (for the lag).
        now : float, optional
            Wall clock, epoch seconds.
        """
        now = time.time() if now is None else now
        current = {
            k: int(getattr(totals, k, 0)) for k in ("n_messages", "n_events", "n_labels", "n_dead")
        }
        prev_t, prev = self._ingest_prev or (now, dict.fromkeys(current, 0))
        delta = {k: max(0, current[k] - prev.get(k, 0)) for k in current}
        self.messages.inc(delta["n_messages"])
        self.events.inc(delta["n_events"])
        self.labels.inc(delta["n_labels"])
        self.dead.inc(delta["n_dead"])
        if now > prev_t:
            self.rate.set(delta["n_events"] / (now - prev_t))
        if newest_event_ts is not None:
            self.lag.set(max(0.0, now - float(newest_event_ts)))
        self._ingest_prev = (now, current)

    def observe_lag(self, lag: dict[tuple[str, int], int]) -> None:
        """Set the consumer lag per (topic, partition); partitions no longer assigned
        are removed."""
        seen = {(t, str(p)) for t, p in lag}
        for labels in self._lag_series - seen:
            try:
                self.consumer_lag.remove(*labels)
            except KeyError:
                pass
        for (topic, partition), n in lag.items():
            self.consumer_lag.labels(topic, str(partition)).set(n)
        self._lag_series = seen

    def observe_run(self, run: Any) -> None:
        """Update detector gauges and alert counters from a :class:`DetectionRun`.

        A subject the run did not score (a retired probe, a model with no traffic in
        the window) has its detector series removed, so alert rules on them stop
        instead of firing on a stale last value forever.
        """
        series: set[tuple[str, tuple[str, ...]]] = set()

        def put(name: str, labels: tuple[str, ...], value: float) -> None:
            getattr(self, name).labels(*labels).set(value)
            series.add((name, labels))

        for scored in run.results:
            r, s = scored.result, scored.subject
            labels = (s.model_id, s.probe_version, "*" if s.tag is None else s.tag)
            if r.statistic is None:
                continue
            put("statistic", (r.detector, *labels, scored.signal), r.statistic)
            if r.detector == "kl_divergence":
                put("kl", (*labels, scored.signal), r.statistic)
            elif r.detector == "calibration_error":
                put("ece", labels, r.statistic)
            elif r.detector == "estimated_accuracy_drop":
                put("estimated_accuracy", labels, r.details["estimated_accuracy"])
                if "reliable" in r.details:
                    put("estimate_reliable", labels, 1.0 if r.details["reliable"] else 0.0)
                if "labelled_accuracy" in r.details:
                    put("labelled_accuracy", labels, r.details["labelled_accuracy"])
        for name, labels in self._series - series:
            try:
                getattr(self, name).remove(*labels)
            except KeyError:
                pass
        self._series = series
        for alert in run.sent:
            self.alerts.labels(alert.kind, alert.severity).inc()
        for err in run.errors:
            self.errors.labels(err.detector).inc()
        self.last_run.set(run.now)
        self.run_seconds.set(run.seconds)

    def close(self) -> None:
        """Nothing to release (the HTTP endpoint is :mod:`monitor.service.read_api`)."""
