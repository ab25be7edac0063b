"""One-screen terminal summary of per-window detector results and alerts (rich)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from rich import box
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
    probe : str or None
        Probe version that served the window.
    estimate_reliable : bool or None
        Whether the label-free estimate (the mean confidence) may be trusted on
        this window (:func:`monitor.detection.trust.judge_estimate`); None: not judged.
    state_drift : bool or None
        Whether the pooled hidden states moved (MMD or domain classifier); None:
        not measured.
    """

    name: str
    n_events: int
    accuracy: float | None = None
    mean_confidence: float | None = None
    kl: float | None = None
    ece: float | None = None
    status: str = "ok"
    probe: str | None = None
    estimate_reliable: bool | None = None
    state_drift: bool | None = None

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


def _estimate(r: WindowSummary) -> Text:
    """The label-free estimate, marked ``?`` when it is not to be trusted."""
    if r.estimate_reliable is False:
        return Text(f"{_num(r.mean_confidence)}?", style="yellow")
    return Text(_num(r.mean_confidence))


def _flag(value: bool | None) -> Text:
    if value is None:
        return Text("–")
    return Text("moved", style="bold red") if value else Text("no", style="green")


def build_table(rows: Sequence[WindowSummary]) -> Table:
    """The per-window table (name, probe, events, accuracy, the label-free estimate and
    its error against the labels, KL, ECE, pooled-state drift, status); fits 80 columns."""
    table = Table(
        title="vlm-monitor: drift by window",
        title_justify="left",
        box=box.SIMPLE_HEAVY,
        collapse_padding=True,
        pad_edge=False,
    )
    with_probe = any(r.probe for r in rows)
    with_states = any(r.state_drift is not None for r in rows)
    columns = ["window", *(["probe"] if with_probe else []), "n", "acc.", "est.",
               "err", "KL", "ECE", *(["states"] if with_states else []), "status"]  # fmt: skip
    for name in columns:
        left = name in ("window", "probe", "states", "status")
        table.add_column(name, justify="left" if left else "right", no_wrap=name == "window")
    if any(r.estimate_reliable is False for r in rows):
        table.caption = "est.: label-free accuracy; err: est. - acc.; ?: unreliable, inputs moved"
        table.caption_justify = "left"
    for r in rows:
        cells: list = [r.name, *([r.probe or "–"] if with_probe else [])]
        cells += [
            str(r.n_events),
            _num(r.accuracy),
            _estimate(r),
            _signed(r.mean_confidence, r.accuracy),
            _num(r.kl),
            _num(r.ece),
            *([_flag(r.state_drift)] if with_states else []),
            Text(r.status, style=_STATUS_STYLE[r.status]),
        ]
        table.add_row(*cells)
    return table


def alert_lines(alerts: Sequence[Alert]) -> list[str]:
    """One line per subject: ``subject: detector statistic, ...`` (severity of the worst)."""
    by_subject: dict[str, list[Alert]] = {}
    for alert in alerts:
        by_subject.setdefault(alert.subject, []).append(alert)
    return [
        f"{subject}: " + ", ".join(f"{a.detector} {a.statistic:.3g}" for a in group)
        for subject, group in by_subject.items()
    ]


def render_summary(
    rows: Sequence[WindowSummary],
    alerts: Sequence[Alert],
    console: Console | None = None,
    grouped: bool = False,
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
    grouped : bool
        One line per subject (:func:`alert_lines`) instead of one per alert.
    """
    console = console if console is not None else Console()
    console.print(build_table(rows))
    if not alerts:
        console.print(Text("no alerts", style="green"))
        return
    if grouped:
        console.print(f"{len(alerts)} alerts:")
        for line in alert_lines(alerts):
            console.print(Text(f"  {line}", style="yellow"))
        return
    for alert in alerts:
        console.print(Text(alert.log_line(), style=_SEVERITY_STYLE.get(alert.severity, "")))
