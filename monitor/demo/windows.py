"""Score one demo window with the daemon's detectors, read back from DuckDB.

Each window is one subject (model, the probe version that served it, all tags)
scored by :func:`monitor.detection.scoring.score_window`, exactly as a drift run
scores it: KL, PSI, JS and KS of the confidence and raw logit against the probe
version's own reference window, calibration on the window's labels, the
label-free accuracy estimate (judged unreliable when the inputs moved), and MMD
and the domain classifier on the pooled hidden states against the model's
reference window, which stays put across probe versions
(:mod:`monitor.detection.reference`). Everything is read from the store, so the
numbers are those of what was actually ingested.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from monitor.alerts.dispatch import (
    Alert,
    StoreAlertSink,
    alerts_from_results,
    enabled,
    send_alerts,
)
from monitor.config.settings import Config
from monitor.demo.traffic import Window
from monitor.detection.run import record_result
from monitor.detection.scoring import Failure, Scored, score_window
from monitor.detection.trust import STATE_DETECTORS
from monitor.reports.summary import WindowSummary
from monitor.store import queries
from monitor.store.database import Store

KL = "kl_divergence"
ESTIMATE = "estimated_accuracy_drop"


@dataclass(frozen=True)
class WindowScore:
    """A scored window: its summary row, the detector results and the alerts raised."""

    window: Window
    row: WindowSummary
    results: tuple[Scored, ...]
    alerts: tuple[Alert, ...]

    def result(self, detector: str, signal: str = "confidence") -> Scored | None:
        """The result of ``detector`` on ``signal``, or None."""
        return next(
            (s for s in self.results if s.result.detector == detector and s.signal == signal), None
        )


def score_demo_window(
    cfg: Config,
    store: Store,
    window: Window,
    reference: Window,
    state_reference: Window,
) -> WindowScore:
    """Score ``window`` against its probe version's ``reference`` and the model's states.

    Parameters
    ----------
    cfg : Config
    store : Store
        Holds the ingested events, labels and states.
    window : Window
        The window scored; ``window.probe_version`` served it.
    reference : Window
        The first window that probe version served (score drift is measured
        against it). When it is ``window`` itself, KL is not shown: a version is
        not compared with itself (its calibration and states still are).
    state_reference : Window
        The model's reference window, any probe version (pooled-state drift).

    Returns
    -------
    WindowScore
        Failed detectors are left out (their traceback is logged).
    """
    rm = cfg.reliability_monitor
    subject = queries.Subject(rm.model.id, window.probe_version, None)
    model_subject = queries.Subject(rm.model.id, None, None)
    items = score_window(
        cfg,
        store,
        subject,
        (reference.start, reference.end),
        (window.start, window.end),
        True,
        (model_subject, (state_reference.start, state_reference.end)),
    )
    scored = tuple(s for s in items if not isinstance(s, Failure))
    alerts: list[Alert] = []
    for s in scored:
        record_result(store, s.name, s.result)
        alerts += alerts_from_results([s.result], f"{s.name}/{window.name}")
    alerts = enabled(alerts, rm.logging)
    send_alerts(alerts, [StoreAlertSink(store)])  # the demo prints them itself
    return WindowScore(window, _row(window, reference, scored), scored, tuple(alerts))


def _row(window: Window, reference: Window, scored: Sequence[Scored]) -> WindowSummary:
    """The summary row; a probe version's own reference window shows no KL."""
    by = {(s.result.detector, s.signal): s.result for s in scored}
    estimate = by.get((ESTIMATE, "confidence"))
    details = estimate.details if estimate is not None else {}
    states = [r for (name, sig), r in by.items() if name in STATE_DETECTORS and sig == "state"]
    row = WindowSummary.from_results(
        window.name,
        len(window.events),
        list(by.values()),
        accuracy=window.accuracy,
        mean_confidence=details.get("estimated_accuracy"),
    )
    own = window is reference
    return replace(
        row,
        kl=None if own else row.kl,
        probe=window.probe_version,
        estimate_reliable=details.get("reliable"),
        state_drift=any(r.is_drift for r in states) if states else None,
    )
