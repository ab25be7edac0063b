"""The monitoring daemon behind ``vlm-monitor run``: ingest, scheduled jobs, /metrics.

Threads: the Kafka ingester (:class:`monitor.ingest.Ingester` ``.run(stop_event)``),
APScheduler's worker (:mod:`monitor.scheduler`) running

- ``drift`` every ``monitoring.drift_detection_interval`` (and once at start):
  :func:`monitor.detection.run_detection`, results to DuckDB, alerts to the sinks;
- ``weekly_report`` on ``monitoring.report_schedule``: the report of the last
  complete ISO week (:func:`monitor.weekly.write_weekly_report`);
- ``metrics`` every 15 s: ingest counters, rate and lag;

and the Prometheus HTTP server. A job that raises is logged and alerted on as
``detector_error`` (detector ``job:<name>``); its next run still happens.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from typing import Any

from monitor import queries
from monitor.alert_policy import AlertPolicy
from monitor.alert_sinks import build_sinks, close_sinks
from monitor.alerts import error_alert, send_alerts
from monitor.config import Config
from monitor.detection import DetectionRun, run_detection
from monitor.durations import parse_cooldown, parse_schedule
from monitor.metrics import MonitorMetrics
from monitor.scheduler import Job, build_scheduler

log = logging.getLogger(__name__)

METRICS_INTERVAL = "15s"


class MonitorDaemon:
    """Ingest plus scheduled drift runs, weekly reports and metrics, on one store.

    Parameters
    ----------
    cfg : Config
    store : Store
        Shared by the ingest thread and the jobs (the store serialises access).
    ingest : bool, default True
        Consume Kafka into the store.
    serve_metrics : bool, default True
        Serve ``/metrics`` on ``metrics.host:metrics.port`` (when enabled in config).
    """

    def __init__(
        self, cfg: Config, store: Any, ingest: bool = True, serve_metrics: bool = True
    ) -> None:
        rm = cfg.reliability_monitor
        self.cfg = cfg
        self.store = store
        self.metrics = MonitorMetrics()
        self.sinks = build_sinks(cfg, store)
        self.policy = AlertPolicy(
            store, parse_cooldown(rm.alerts.cooldown), rm.alerts.persistence_windows
        )
        self.stop_event = threading.Event()
        self.metrics_port: int | None = None
        self.last_run: DetectionRun | None = None
        self.reports: list[Any] = []
        self.metrics_interval = METRICS_INTERVAL
        self._ingest = ingest
        self._serve_metrics = serve_metrics and rm.metrics.enabled
        self._ingester: Any = None
        self._thread: threading.Thread | None = None
        self._scheduler: Any = None

    # -- jobs -------------------------------------------------------------------
    def drift_job(self) -> DetectionRun:
        """One drift run over the current window; updates the metrics."""
        run = run_detection(self.cfg, self.store, sinks=self.sinks, policy=self.policy)
        self.metrics.observe_run(run)
        self.last_run = run
        self.retrain_on_alerts(run.sent)
        return run

    def retrain_on_alerts(self, alerts: list[Any]) -> Any:
        """With ``retrain_trigger: auto``, refit on the first calibration-drift or KL alert.

        At most one retrain per drift run; the retrain's own minimum sample size and
        cooldown apply (:func:`retrain.triggers.maybe_retrain_on_alert`).
        """
        from retrain.triggers import maybe_retrain_on_alert

        for alert in alerts:
            outcome = maybe_retrain_on_alert(self.cfg, self.store, alert)
            if outcome is not None:
                log.info("auto-retrain on %s alert: %s", alert.kind, outcome.status)
                return outcome
        return None

    def retrain_job(self) -> Any:
        """Scheduled retrain (``retrain_trigger: scheduled``, ``retrain.schedule``)."""
        from retrain.triggers import maybe_retrain_scheduled

        return maybe_retrain_scheduled(self.cfg, self.store)

    def report_job(self) -> Any:
        """The weekly report of the last complete ISO week."""
        from monitor.weekly import previous_week, write_weekly_report

        report = write_weekly_report(self.cfg, self.store, previous_week(time.time()))
        log.info("weekly report written: %s", report.html)
        self.reports.append(report)
        return report

    def metrics_job(self) -> None:
        """Ingest counters, rate and lag."""
        totals = self._ingester.totals if self._ingester is not None else None
        self.metrics.observe_ingest(totals, queries.newest_event_ts(self.store))

    def on_job_error(self, name: str, exc: BaseException) -> None:
        """Alert on a job that raised (the scheduler keeps the job)."""
        alert = error_alert(f"job:{name}", "daemon", exc, time.time())
        self.metrics.errors.labels(alert.detector).inc()
        send_alerts(self.policy.decide([alert]).send, self.sinks)

    def jobs(self) -> list[Job]:
        """The daemon's jobs with their schedules from the config."""
        mon = self.cfg.reliability_monitor.monitoring
        return [
            Job("drift", self.drift_job, parse_schedule(mon.drift_detection_interval), True),
            Job("weekly_report", self.report_job, parse_schedule(mon.report_schedule)),
            Job(
                "retrain",
                self.retrain_job,
                parse_schedule(self.cfg.reliability_monitor.retrain.schedule),
            ),
            Job("metrics", self.metrics_job, parse_schedule(self.metrics_interval), True),
        ]

    # -- lifecycle ----------------------------------------------------------------
    def start(self) -> MonitorDaemon:
        """Start the ingest thread, the metrics server and the scheduler.

        Raises
        ------
        OSError
            The metrics port is taken.
        """
        rm = self.cfg.reliability_monitor
        if self._serve_metrics:
            self.metrics_port = self.metrics.serve(rm.metrics.host, rm.metrics.port)
            log.info("metrics at http://%s:%d/metrics", rm.metrics.host, self.metrics_port)
        if self._ingest:
            from monitor.ingest import Ingester

            self._ingester = Ingester(rm.kafka, self.store)
            self._thread = threading.Thread(
                target=self._ingester.run, args=(self.stop_event,), name="ingest", daemon=True
            )
            self._thread.start()
        self._scheduler = build_scheduler(self.jobs(), on_error=self.on_job_error)
        self._scheduler.start()
        return self

    def stop(self, timeout_s: float = 30.0) -> None:
        """Stop the jobs (waiting for a running one), the ingest thread and the server."""
        self.stop_event.set()
        if self._scheduler is not None:
            self._scheduler.shutdown(wait=True)
            self._scheduler = None
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None
        if self._ingester is not None:
            self._ingester.close()
        self.metrics.close()
        close_sinks(self.sinks)

    def run_until_signal(self) -> None:
        """Run until SIGINT or SIGTERM, then stop cleanly."""
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: self.stop_event.set())
        self.start()
        try:
            while not self.stop_event.wait(1.0):
                pass
        finally:
            self.stop()

    def __enter__(self) -> MonitorDaemon:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
