"""Our section of the HTML drift report: windows, detector results, per-bin tables.

KL divergence, PSI and Jensen-Shannon distance share one binning of the
confidence; their bin table is shown once, naming all three.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any

import numpy as np

from detectors.base import DetectorResult

STAT_FORMAT = "{:.4f}"
"""How statistics are printed in the page (tests look for this exact text)."""

CSS = """
<style>
.vlm-monitor { font-family: system-ui, sans-serif; margin: 16px 24px; color: #222; }
.vlm-monitor table { border-collapse: collapse; margin: 8px 0 16px; font-size: 14px; }
.vlm-monitor th, .vlm-monitor td { border: 1px solid #ccc; padding: 4px 10px; text-align: right; }
.vlm-monitor th { background: #f3f3f3; }
.vlm-monitor td.name { text-align: left; }
.vlm-monitor .drift { color: #b00020; font-weight: bold; }
.vlm-monitor .ok { color: #1b5e20; }
.vlm-monitor .note { color: #666; font-size: 13px; }
</style>
"""


def _fmt(value: float | None, unit: str = "") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    text = STAT_FORMAT.format(value)
    return f"{text} {html.escape(unit)}" if unit else text


def _utc(ts: float | None) -> str:
    if ts is None:
        return "–"
    return datetime.fromtimestamp(ts, tz=timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(c if c.startswith("<td") else f"<td>{c}</td>" for c in row) + "</tr>"
        for row in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def _status(r: DetectorResult) -> str:
    if r.insufficient_data:
        return '<td class="note">insufficient data</td>'
    return '<td class="drift">DRIFT</td>' if r.is_drift else '<td class="ok">ok</td>'


def our_section(ref: Any, cur: Any, results: Sequence[DetectorResult], title: str) -> str:
    """The page's own section: window sizes, detector results, per-bin tables (HTML).

    ``ref`` and ``cur`` are the reference and current confidences, ndarrays of
    shape (n,); ``title`` is escaped here.
    """
    now = datetime.now(tz=timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    windows = _table(
        ["window", "events", "mean confidence", "median confidence"],
        [
            [
                f'<td class="name">{name}</td>',
                str(x.size),
                _fmt(float(np.mean(x))),
                _fmt(float(np.median(x))),
            ]
            for name, x in (("reference", ref), ("current", cur))
        ],
    )
    rows = [
        [
            f'<td class="name">{html.escape(r.detector)}</td>',
            _fmt(r.statistic, str(r.details.get("unit", ""))),
            _fmt(r.threshold),
            _status(r),
            _fmt(r.p_value),
            str(r.n_reference),
            str(r.n_current),
            f"{_utc(r.window_start)} → {_utc(r.window_end)}",
        ]
        for r in results
    ]
    header = ["detector", "statistic", "threshold", "status", "p-value", "n ref", "n cur", "window"]
    if rows:
        detectors = _table(header, rows)
    else:
        detectors = '<p class="note">No detector results.</p>'
    extra = _bins_sections([r for r in results if not r.insufficient_data])
    return (
        f'{CSS}<section class="vlm-monitor"><h1>{html.escape(title)}</h1>'
        f'<p class="note">Generated {now} by vlm-monitor. Our detectors below; '
        "evidently's comparison of the confidence distributions follows (its KL uses bins "
        "drawn from both windows and the direction KL(reference || current), so it differs "
        "from ours by design).</p>"
        f"<h2>Windows</h2>{windows}<h2>Detector results</h2>{detectors}{extra}</section>"
    )


def _bins_sections(results: Sequence[DetectorResult]) -> str:
    """One per-bin table per distinct binning: KL, PSI and JS share theirs, shown once."""
    groups: dict[Any, list[DetectorResult]] = {}
    for r in results:
        d = r.details
        key: Any = id(r)
        if "bin_edges" in d and "current_probs" in d:
            key = (tuple(d["bin_edges"]), tuple(d["reference_probs"]), tuple(d["current_probs"]))
        groups.setdefault(key, []).append(r)
    return "".join(_bins_section(rs[0], [r.detector for r in rs]) for rs in groups.values())


def _bins_section(r: DetectorResult, names: Sequence[str] | None = None) -> str:
    """Per-bin tables for results that carry them (KL bins, reliability diagram)."""
    d = r.details
    if "bin_edges" in d and "current_probs" in d:
        edges = d["bin_edges"]
        rows = [
            [
                f"[{edges[i]:.2f}, {edges[i + 1]:.2f}{']' if i == len(edges) - 2 else ')'}",
                f"{100 * q:.1f} %",
                f"{100 * p:.1f} %",
            ]
            for i, (q, p) in enumerate(zip(d["reference_probs"], d["current_probs"], strict=True))
        ]
        title = f"{html.escape(', '.join(names or [r.detector]))}: smoothed bin probabilities"
        return f"<h3>{title}</h3>" + _table(["bin", "reference", "current"], rows)
    if "reliability" in d:
        rel = d["reliability"]
        n = len(rel["counts"])
        rows = [
            [f"({i / n:.2f}, {(i + 1) / n:.2f}]", str(c), _fmt(conf), _fmt(acc)]
            for i, (c, conf, acc) in enumerate(
                zip(rel["counts"], rel["mean_confidence"], rel["accuracy"], strict=True)
            )
            if c
        ]
        title = f"{html.escape(r.detector)}: reliability diagram (non-empty bins)"
        return f"<h3>{title}</h3>" + _table(["bin", "count", "mean confidence", "accuracy"], rows)
    return ""
