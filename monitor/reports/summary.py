"""One-screen terminal summary of per-window detector results and alerts (rich)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from rich.console import Console
from rich.table import Table
from rich.text import Text

from detectors.base import DetectorResult
from detectors.calibration.calibration_error import CalibrationError
from detectors.scores.kl import KLDivergence
from monitor.alerts.dispatch import Alert

STATUSES = ("ok", "drift", "insufficient data")


@dataclass(frozen=True)
class WindowSummary:
    """One row of the summary table: one monitored window.

    Attributes
    ----------
    name : str
        Window label, e.g. ``"2024-W03"``.
    n_events : int
        Scored events in the window.
    accuracy : float or None
        Fraction of labelled events answered correctly; None without labels.
    mean_confidence : float or None
        Mean calibrated confidence (probability); None for an empty window.
    kl : float or None
        KL divergence to the reference, nats; None when not computed.
    ece : float or None
        Expected calibration error; None without enough labels.
    status : {"ok", "drift", "insufficient data"}
        Overall verdict for the window.
    """

    name: str
    n_events: int
    accuracy: float | None = None
    mean_confidence: float | None = None
    kl: float | None = None
    ece: float | None = None
    status: str = "ok"

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}, got {self.status!r}")
        if self.n_events < 0:
            raise ValueError(f"n_events must be >= 0, got {self.n_events}")

    @classmethod
    def from_results(
        cls,
        name: str,
        n_events: int,
        results: Sequence[DetectorResult],
        accuracy: float | None = None,
        mean_confidence: float | None = None,
    ) -> WindowSummary:
        """Build a row from a window's detector results.

        KL and ECE are taken from the results named ``kl_divergence`` and
        ``calibration_error``. Status is ``"drift"`` if any result drifted,
        else ``"insufficient data"`` if any result lacked data, else ``"ok"``.
        """
        by_name = {r.detector: r for r in results}
        kl = by_name.get(KLDivergence.name)
        ece = by_name.get(CalibrationError.name)
        if any(r.is_drift for r in results):
            status = "drift"
        elif any(r.insufficient_data for r in results):
            status = "insufficient data"
        else:
            status = "ok"
        return cls(
            name=name,
            n_events=n_events,
            accuracy=accuracy,
            mean_confidence=mean_confidence,
            kl=kl.statistic if kl is not None else None,
            ece=ece.statistic if ece is not None else None,
            status=status,
        )


def _num(value: float | None, digits: int = 3) -> str:
    if value is None or math.isnan(value):
        return "–"
    return f"{value:.{digits}f}"


def _signed(estimate: float | None, truth: float | None) -> str:
    """``+0.456``: the label-free estimate minus the labelled accuracy; a dash without both."""
    if estimate is None or truth is None:
        return "–"
    return f"{estimate - truth:+.3f}"


_STATUS_STYLE = {"ok": "green", "drift": "bold red", "insufficient data": "yellow"}
_SEVERITY_STYLE = {"warning": "yellow", "critical": "bold red"}


def build_table(rows: Sequence[WindowSummary]) -> Table:
    """The per-window table (name, events, accuracy, mean confidence, the label-free
    estimate's error against the labels, KL, ECE, status)."""
    table = Table(title="vlm-monitor: drift by window", title_justify="left")
    table.add_column("window", no_wrap=True)
    table.add_column("events", justify="right")
    table.add_column("accuracy", justify="right")
    table.add_column("mean conf", justify="right")
    table.add_column("est. error", justify="right")  # mean confidence - accuracy
    table.add_column("KL (nats)", justify="right")
    table.add_column("ECE", justify="right")
    table.add_column("status")
    for r in rows:
        table.add_row(
            r.name,
            str(r.n_events),
            _num(r.accuracy),
            _num(r.mean_confidence),
            _signed(r.mean_confidence, r.accuracy),
            _num(r.kl),
            _num(r.ece),
            Text(r.status, style=_STATUS_STYLE[r.status]),
        )
    return table


def render_summary(
    rows: Sequence[WindowSummary], alerts: Sequence[Alert], console: Console | None = None
) -> None:
    """Print the per-window table and one line per alert under it.

    Parameters
    ----------
    rows : sequence of WindowSummary
        One row per window, printed in order.
    alerts : sequence of Alert
        Printed under the table, one line each (``Alert.log_line()``).
    console : rich.console.Console, optional
        Where to print; a new stdout console by default.
    """
    console = console if console is not None else Console()
    console.print(build_table(rows))
    if not alerts:
        console.print(Text("no alerts", style="green"))
        return
    for alert in alerts:
        console.print(Text(alert.log_line(), style=_SEVERITY_STYLE.get(alert.severity, "")))
