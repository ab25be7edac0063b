"""The monitoring daemon behind ``vlm-monitor run``: ingest, scheduled jobs, /metrics.

Threads: the Kafka ingester (:class:`monitor.ingest.consumer.Ingester` ``.run(stop_event)``,
supervised: a dead ingest thread is a ``detector_error`` alert on ``thread:ingest``, counted
in ``vlm_monitor_ingest_restarts_total``, and restarted with backoff),
APScheduler's worker (:mod:`monitor.service.scheduler`) running

- ``drift`` every ``monitoring.drift_detection_interval`` (and once at start):
  :func:`monitor.detection.run.run_detection`, results to DuckDB, alerts to the sinks;
- ``weekly_report`` on ``monitoring.report_schedule``: the report of the last
  complete ISO week (:func:`monitor.reports.weekly.write_weekly_report`);
- ``metrics`` every 15 s: ingest counters, rate and lag;
- ``alert_delivery`` every 5 s (and after each drift run): the alert outbox to the
  webhook and Kafka sinks, retried with backoff (:mod:`monitor.alerts.outbox`);

and the HTTP endpoint: Prometheus ``/metrics`` and the read API that the read-only
commands use while the daemon holds the store (:mod:`monitor.service.read_api`). A job
that raises is logged and alerted on as ``detector_error`` (detector ``job:<name>``);
its next run still happens.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from dataclasses import replace
from typing import Any

from monitor.alerts.dispatch import error_alert, send_alerts
from monitor.alerts.policy import AlertPolicy
from monitor.alerts.sinks import build_sinks, close_sinks
from monitor.config.durations import parse_cooldown, parse_schedule
from monitor.config.settings import Config
from monitor.detection.run import DetectionRun, run_detection
from monitor.service.housekeeping import RETENTION_EVERY_S
from monitor.service.metrics import MonitorMetrics
from monitor.service.scheduler import Job, build_scheduler
from monitor.service.supervisor import supervise
from monitor.store import queries

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
        self.retention_every_s = RETENTION_EVERY_S
        self.ingest_backoff_s = (1.0, 60.0)
        self.delivery_interval = "5s"
        self.delivery_budget_s = 10.0
        self.progress: Any = None
        self.ingest_restart_count = 0
        self.heartbeats: Any = None  # collector heartbeats, broker reachability (with ingest)
        self._api: Any = None
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
        self.delivery_job()  # the run's alerts leave at once, not at the next tick
        self.retrain_on_alerts(run.sent)
        return run

    def delivery_job(self) -> tuple[int, int]:
        """Deliver what the alert outbox holds for the external sinks (retries with backoff)."""
        from monitor.alerts.outbox import deliver_all

        delivered, failed = deliver_all(self.sinks, budget_s=self.delivery_budget_s)
        self.metrics.alert_deliveries.labels("delivered").inc(delivered)
        self.metrics.alert_deliveries.labels("failed").inc(failed)
        return delivered, failed

    def retrain_on_alerts(self, alerts: list[Any]) -> Any:
        """With ``retrain_trigger: auto``, refit on the first calibration-drift or KL alert.

        At most one retrain per drift run; the retrain's own minimum sample size and
        cooldown apply (:func:`monitor.retraining.triggers.maybe_retrain_on_alert`).
        """
        from monitor.retraining.triggers import maybe_retrain_on_alert

        for alert in alerts:
            outcome = maybe_retrain_on_alert(self.cfg, self.store, alert)
            if outcome is not None:
                self.metrics.retrains.labels(outcome.status).inc()
                log.info("auto-retrain on %s alert: %s", alert.kind, outcome.status)
                return outcome
        return None

    def retrain_job(self) -> Any:
        """Scheduled retrain (``retrain_trigger: scheduled``, ``retrain.schedule``)."""
        from monitor.retraining.triggers import maybe_retrain_scheduled

        outcome = maybe_retrain_scheduled(self.cfg, self.store)
        if outcome is not None:
            self.metrics.retrains.labels(outcome.status).inc()
        return outcome

    def report_job(self) -> Any:
        """The weekly report of the last complete ISO week."""
        from monitor.reports.weekly import previous_week, write_weekly_report

        report = write_weekly_report(self.cfg, self.store, previous_week(time.time()))
        log.info("weekly report written: %s", report.html)
        self.reports.append(report)
        return report

    def metrics_job(self) -> None:
        """Ingest counters, rate, lag per partition; forget long-silent collectors."""
        totals = self.progress.totals if self.progress is not None else None
        self.metrics.observe_ingest(totals, queries.newest_event_ts(self.store))
        if self.progress is not None:
            self.metrics.observe_lag(dict(self.progress.lag))
        if self.heartbeats is not None:
            self.heartbeats.expire()

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
            Job("alert_delivery", self.delivery_job, parse_schedule(self.delivery_interval), True),
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
            from monitor.service.daemon_api import routes, write_address
            from monitor.service.read_api import ReadAPI

            self._api = ReadAPI(self.metrics.registry, *routes(self))
            self.metrics_port = self._api.serve(rm.metrics.host, rm.metrics.port)
            if self.store.path != ":memory:":
                write_address(self.store.path, rm.metrics.host, self.metrics_port)
            log.info(
                "metrics at http://%s:%d/metrics, read API at /api/",
                rm.metrics.host,
                self.metrics_port,
            )
        from monitor.retraining.lifecycle import sync_from_config

        sync_from_config(self.cfg, self.store)
        if self._ingest:
            from monitor.service.heartbeats import HeartbeatWatcher

            self.heartbeats = HeartbeatWatcher(rm.kafka, self.metrics.registry).start()
            self._start_ingest()
        self._scheduler = build_scheduler(self.jobs(), on_error=self.on_job_error)
        self._scheduler.start()
        return self

    def _start_ingest(self) -> None:
        """The ingest thread, with the same batch size, retention and status snapshot as
        ``vlm-monitor ingest``."""
        from monitor.ingest.clock import EventClock
        from monitor.ingest.consumer import Ingester
        from monitor.ingest.progress import IngestProgress
        from monitor.service.housekeeping import Housekeeping

        rm = self.cfg.reliability_monitor
        self.progress = progress = IngestProgress()  # totals survive restarts
        self.housekeeping = housekeeping = Housekeeping(
            self.store, rm.store, progress, retention_every_s=self.retention_every_s
        )

        def work() -> None:
            if self._ingester is not None:
                self._ingester.close()
            self._ingester = ingester = Ingester(
                rm.kafka,
                self.store,
                batch_size=rm.store.ingest_batch_size,
                linger_s=rm.store.ingest_linger_s,
                clock=EventClock.from_config(rm.store),
            )

            self.metrics.ingest_up.set(1)

            def on_poll(stats: Any) -> None:
                progress.update(stats, ingester.lag())
                housekeeping.tick()

            housekeeping.tick()
            try:
                ingester.run(self.stop_event, poll_timeout_s=0.5, on_poll=on_poll)
            finally:
                housekeeping.snapshot(running=False)

        def on_failure(exc: BaseException, restart_in: float) -> None:
            self.metrics.ingest_restarts.inc()
            self.metrics.ingest_up.set(0)
            self.ingest_restart_count += 1
            alert = error_alert("thread:ingest", "daemon", exc, time.time())
            alert = replace(alert, message=f"{alert.message}; restarting in {restart_in:.0f} s")
            send_alerts(self.policy.decide([alert]).send, self.sinks)

        self._thread = threading.Thread(
            target=supervise,
            args=("ingest", work, self.stop_event, on_failure, self.ingest_backoff_s),
            name="ingest",
            daemon=True,
        )
        self._thread.start()

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
        if self.heartbeats is not None:
            self.heartbeats.close()
        if self._api is not None:
            from monitor.service.daemon_api import remove_address

            self._api.close()
            self._api = None
            if self.store.path != ":memory:":
                remove_address(self.store.path)
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
