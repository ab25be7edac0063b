"""HTML pieces of the weekly report: one section per subject, the week's alerts, figures."""

from __future__ import annotations

import base64
import html
import math
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from detectors.base import DetectorResult


def section_html(section: dict[str, Any], out: Path, inline: bool) -> str:
    """A subject's results table, accuracy line and figures (inline PNGs or links)."""
    s = section["summary"]
    rows = []
    for item in section["all"]:
        r: DetectorResult = item.result
        status = "insufficient data" if r.insufficient_data else ("DRIFT" if r.is_drift else "ok")
        ci = (
            r.details.get("intervals", {}).get("ece") if r.detector == "calibration_error" else None
        )
        extra = f" [{ci['low']:.4f}, {ci['high']:.4f}]" if ci else ""
        rows.append(
            f"<tr><td class='name'>{html.escape(r.detector)}</td><td>{item.signal}</td>"
            f"<td>{_num(r.statistic)}{extra}</td><td>{_num(r.threshold)}</td>"
            f"<td>{_num(r.p_value)}</td><td>{status}</td></tr>"
        )
    acc = s["accuracy"] or {}
    estimate = f"Estimated accuracy {_num(acc.get('estimated_accuracy'))}"
    if acc.get("reliable") is False:
        estimate = (
            f"Estimated accuracy <span class='drift'>unreliable</span> "
            f"({html.escape(str(acc.get('unreliable_because')))}): label "
            f"{acc.get('labels_for_3_points')} events drawn at random to bound it to "
            "±3 points; <code>vlm-monitor review</code> lists the most novel first"
        )
    acc_line = (
        f"<p>{estimate}; labelled accuracy "
        f"{_num(acc.get('labelled_accuracy'))} on {acc.get('n_labelled', 0)} labelled events; "
        f"estimation error {_num(acc.get('estimation_error'))}.</p>"
    )
    imgs = "".join(img_html(p, out, inline) for p in section["figures"])
    errors = "".join(f"<p class='drift'>{html.escape(e)}</p>" for e in s["errors"])
    return (
        f"<section class='vlm-monitor'><h2>{html.escape(s['subject'])}</h2>"
        f"<p class='note'>{s['n_events']} events this week; reference window "
        f"{utc(s['reference_window'][0])} to {utc(s['reference_window'][1])}.</p>{acc_line}"
        "<table><tr><th>detector</th><th>signal</th><th>statistic [95 % CI]</th>"
        f"<th>threshold</th><th>p-value</th><th>status</th></tr>{''.join(rows)}</table>"
        f"{errors}<div>{imgs}</div></section>"
    )


def alerts_html(alerts: list[dict[str, Any]]) -> str:
    """The week's alerts as a table (at most 200 rows)."""
    if not alerts:
        return "<section class='vlm-monitor'><h2>Alerts this week</h2><p>none</p></section>"
    rows = "".join(
        f"<tr><td>{utc(a['ts'])}</td><td class='name'>{html.escape(a['kind'])}</td>"
        f"<td class='name'>{html.escape(a['subject'])}</td><td>{html.escape(a['severity'])}</td>"
        f"<td class='name'>{html.escape(a['message'])}</td></tr>"
        for a in alerts[:200]
    )
    return (
        f"<section class='vlm-monitor'><h2>Alerts this week ({len(alerts)})</h2><table>"
        "<tr><th>time</th><th>kind</th><th>subject</th><th>severity</th><th>message</th></tr>"
        f"{rows}</table></section>"
    )


def img_html(path: Path, out: Path, inline: bool, width: str = "48%") -> str:
    """An ``<img>`` of a PNG: embedded as base64 when ``inline``, else linked relative to
    ``out``."""
    if inline:
        src = "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")
    else:
        src = html.escape(path.relative_to(out).as_posix())
    return f"<img src='{src}' alt='{html.escape(path.stem)}' style='max-width:{width}'>"


def _num(v: float | None) -> str:
    return "–" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.4f}"


def utc(ts: float) -> str:
    """``YYYY-MM-DD HH:MM UTC`` of an epoch time."""
    return datetime.fromtimestamp(ts, tz=timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
