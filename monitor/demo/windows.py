"""Run the detectors over time windows read back from DuckDB, then alert and report.

The reference window fixes the KL bins; every window (the reference included,
as a sanity row) is scored against it. Calibration error is computed on each
window's labelled events. Everything is read from the store, not from memory,
so the numbers are those of what was actually ingested.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
from rich.console import Console

from detectors.base import DetectorResult
from detectors.calibration.calibration_error import CalibrationError
from detectors.scores.kl import KLDivergence
from monitor.alerts.dispatch import (
    Alert,
    LogAlertSink,
    StoreAlertSink,
    alerts_from_results,
    enabled,
    send_alerts,
)
from monitor.config.settings import Config
from monitor.demo.traffic import Window
from monitor.detection.run import record_result
from monitor.reports.drift_report import write_html_report
from monitor.reports.summary import WindowSummary, render_summary
from monitor.store.database import Store

log = logging.getLogger(__name__)


def evaluate_windows(
    cfg: Config, store: Store, windows: Sequence[Window], console: Console | None = None
) -> list[Alert]:
    """Score every window against the first (the reference); alert, report, summarise.

    Parameters
    ----------
    cfg : Config
    store : Store
        Holds the ingested events and labels.
    windows : sequence of Window
        ``windows[0]`` is the reference window; only their time bounds and names are used.

    Returns
    -------
    list of Alert
        The alerts raised on the non-reference windows (also stored and logged).
    """
    console = console or Console()
    rm = cfg.reliability_monitor
    mon = rm.monitoring
    subject_prefix = f"{rm.model.id}/probe"
    reference = windows[0]
    ref_conf = store.confidences(reference.start, reference.end)
    kl = KLDivergence(
        threshold=mon.kl_divergence_threshold,
        n_bins=mon.kl_bins,
        epsilon=mon.kl_epsilon,
        min_samples=mon.min_window_events,
    ).fit(ref_conf)
    ece = CalibrationError(
        threshold=mon.ece_threshold, n_bins=mon.ece_bins, min_samples=mon.min_window_events
    )
    ref_labelled = store.labelled(reference.start, reference.end)
    ece.fit(*ref_labelled)

    rows: list[WindowSummary] = []
    alerts: list[Alert] = []
    sinks = [LogAlertSink(), StoreAlertSink(store)]
    last_results: list[DetectorResult] = []
    for window in windows:
        bounds = (window.start, window.end)
        conf = store.confidences(*bounds)
        labelled_conf, correct = store.labelled(*bounds)
        results = [kl.score(conf, window=bounds), ece.score(labelled_conf, correct, window=bounds)]
        subject = f"{subject_prefix}/{window.name}"
        for result in results:
            record_result(store, subject, result)
        if window is not reference:
            raised = enabled(alerts_from_results(results, subject), rm.logging)
            send_alerts(raised, sinks)
            alerts += raised
        rows.append(
            WindowSummary.from_results(
                window.name,
                len(conf),
                results,
                accuracy=float(np.mean(correct)) if len(correct) else None,
                mean_confidence=float(np.mean(conf)) if len(conf) else None,
            )
        )
        last_results = results

    render_summary(rows, alerts, console=console)
    latest = windows[-1]
    report = write_html_report(
        ref_conf,
        store.confidences(latest.start, latest.end),
        last_results,
        rm.store.reports_dir / f"report-{latest.name}.html",
        title=f"vlm-monitor: {rm.model.id}, window '{latest.name}' vs reference",
    )
    console.print(f"HTML report: {report}")
    return alerts
