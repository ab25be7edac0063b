"""The weekly report: ``vlm-monitor report --week 2026-W47`` and the daemon's weekly job.

For an ISO week (Monday 00:00 UTC to the next Monday) and every subject with
traffic that week, the report holds:

- the detector results of the week against the subject's reference window
  (score drift on confidence and raw logit, calibration with bootstrap intervals,
  label-free accuracy; :func:`monitor.detection.scoring.score_window`);
- first, the week's story per model, across probe versions
  (:mod:`monitor.reports.story`): a timeline of labelled and estimated accuracy,
  ECE and traffic at a resolution that fits the traffic (5 minutes to a day), with
  alerts and promotions marked, how often each route was taken, and whether
  accuracy and calibration recovered after the promotion that followed an alert;
- the week's alerts;
- per subject, two PNGs (:mod:`monitor.reports.plots`): the week's reliability
  diagram, and the KL divergence of the confidence evaluated each day on the
  trailing ``detection_window`` (7 days by default, binned in DuckDB) over the week
  and the three before it (the four-week trend);
- evidently's comparison of the score distributions (confidence and raw logit)
  for the subject with the most traffic.

Files, under ``<reports_dir>/weekly/``: ``<week>.html`` (under 1 MB: evidently's
JavaScript is linked from ``js/`` and the PNGs are embedded only while they fit),
and ``<week>/`` holding ``summary.json`` and the PNGs.
"""

from __future__ import annotations

import json
import math
import os
import re
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np

from monitor.config.durations import parse_duration
from monitor.config.settings import Config
from monitor.detection.reference import state_reference
from monitor.detection.scoring import Failure, score_window
from monitor.reports import plots
from monitor.reports.kl_trend import kl_trend
from monitor.reports.story import model_stories, story_html
from monitor.reports.weekly_html import alerts_html, section_html, utc
from monitor.store import aggregates, alert_queries, queries, timeline

DAY = 86400.0
HISTORY_WEEKS = 4
"""Weeks shown in the over-time figures (the report week and the ones before it)."""
PAGE_BUDGET = 1_000_000
"""The page must stay below this many bytes."""
_WEEK = re.compile(r"^(\d{4})-W(\d{2})$")


def iso_week_bounds(week: str) -> tuple[float, float]:
    """``(start, end)`` epoch seconds of an ISO week such as ``"2026-W47"`` (UTC).

    Raises
    ------
    ValueError
        Not of the form ``YYYY-Www``, or a week the year does not have.
    """
    match = _WEEK.match(week.strip()) if isinstance(week, str) else None
    if match is None:
        raise ValueError(f"week must look like 2026-W47, got {week!r}")
    try:
        monday = datetime.fromisocalendar(int(match.group(1)), int(match.group(2)), 1)
    except ValueError as exc:
        raise ValueError(f"no such ISO week {week!r}: {exc}") from None
    start = monday.replace(tzinfo=timezone.utc)
    return start.timestamp(), (start + timedelta(days=7)).timestamp()


def week_of(ts: float) -> str:
    """ISO week label (``"2026-W47"``) of an epoch time."""
    year, week, _ = datetime.fromtimestamp(ts, tz=timezone.utc).isocalendar()
    return f"{year}-W{week:02d}"


def previous_week(now: float) -> str:
    """The last complete ISO week before ``now``."""
    return week_of(iso_week_bounds(week_of(now))[0] - 1.0)


@dataclass(frozen=True)
class WeeklyReport:
    """Paths written by :func:`write_weekly_report`.

    Attributes
    ----------
    html : Path
        The page.
    summary : Path
        The JSON summary.
    figures : list of Path
        The PNGs.
    summary_data : dict
        What ``summary.json`` holds.
    """

    html: Path
    summary: Path
    figures: list[Path]
    summary_data: dict[str, Any]


def write_weekly_report(
    cfg: Config, store: Any, week: str, out_dir: str | os.PathLike[str] | None = None
) -> WeeklyReport:
    """Compute and write the weekly report (see the module docstring).

    Parameters
    ----------
    cfg : Config
    store : Store
    week : str
        ISO week, e.g. ``"2026-W47"``.
    out_dir : path-like, optional
        Defaults to ``<reports_dir>/weekly``.

    Returns
    -------
    WeeklyReport

    Raises
    ------
    ValueError
        A malformed week, or no events at all in that week.
    """
    start, end = iso_week_bounds(week)
    out = Path(out_dir) if out_dir is not None else cfg.reliability_monitor.store.reports_dir
    out = out / "weekly" if out_dir is None else out
    assets = out / week
    assets.mkdir(parents=True, exist_ok=True)
    subjects = queries.subjects(store, start, end)
    if not subjects:
        raise ValueError(f"no events in week {week} ({utc(start)} to {utc(end)})")
    sections = [_subject_week(cfg, store, s, start, end, assets) for s in subjects]
    alerts = [a for a in alert_queries.list_alerts(store, limit=1000, since=start) if a["ts"] < end]
    stories = model_stories(cfg, store, start, end, alerts, assets)
    summary = {
        "week": week,
        "start": start,
        "end": end,
        "generated_at": time.time(),
        "story": [{k: v for k, v in s.items() if k != "figure"} for s in stories],
        "subjects": [s["summary"] for s in sections],
        "alerts": alerts,
    }
    summary_path = assets / "summary.json"
    summary_path.write_text(json.dumps(_json_safe(summary), indent=2), encoding="utf-8")
    figures = [s["figure"] for s in stories] + [p for s in sections for p in s["figures"]]
    inline = sum(p.stat().st_size for p in figures) * 4 / 3 < PAGE_BUDGET - 400_000
    ece_threshold = cfg.reliability_monitor.monitoring.ece_threshold
    body = story_html(stories, out, inline, ece_threshold) + alerts_html(alerts)
    body += "".join(section_html(s, out, inline) for s in sections)
    main = max(sections, key=lambda s: s["summary"]["n_events"])
    from monitor.reports.drift_report import write_html_report  # evidently stays lazy

    n_ref, n_cur = (len(main["evidently"][i]["confidence"]) for i in (0, 1))
    sampled = (
        f" (on hash samples of {n_ref:,} reference and {n_cur:,} current events)"
        if main["sampled"]
        else ""
    )

    page = write_html_report(
        main["evidently"][0],
        main["evidently"][1],
        main["results"],
        out / f"{week}.html",
        title=f"vlm-monitor weekly report {week}",
        extra_html=f"<section class='vlm-monitor'><h1>vlm-monitor weekly report {week}</h1>"
        f"<p class='note'>{utc(start)} to {utc(end)}; evidently's comparison of the score "
        f"distributions of {main['summary']['subject']}{sampled} follows the sections.</p>"
        "</section>" + body,
        detector_section=False,
    )
    return WeeklyReport(page, summary_path, figures, summary)


def _subject_week(
    cfg: Config, store: Any, subject: queries.Subject, start: float, end: float, assets: Path
) -> dict[str, Any]:
    """Results, daily series, figures and evidently inputs of one subject."""
    mon = cfg.reliability_monitor.monitoring
    span = parse_duration(mon.reference_window)
    first = queries.reference_start(store, subject, span, mon.min_window_events)
    ref = (first, first + span)
    # states too: the label-free estimate is only trusted while the inputs have not moved
    state_ref = state_reference(cfg, store, subject)
    scored = score_window(cfg, store, subject, ref, (start, end), True, state_ref)
    ok = [s for s in scored if not isinstance(s, Failure)]
    results = [s.result for s in ok]
    errors = [
        f"{f.detector} failed on {f.name}: {f.error}" for f in scored if isinstance(f, Failure)
    ]
    history = (end - HISTORY_WEEKS * 7 * DAY, end)
    daily = {d["day_start"]: d for d in timeline.daily_stats(store, subject, *history)}
    days = sorted(daily)
    trend = kl_trend(mon, store, subject, ref, (start, end), history, days)
    slug = plots.slug(subject.name.replace("*", "all"))
    figures = [
        plots.kl_png(
            trend.points, [trend.values.get(d) for d in trend.points], trend.threshold,
            assets / f"kl-{slug}.png", trend.week_shade, title=trend.title,
        ),
    ]  # fmt: skip
    ece = next((r for r in results if r.detector == "calibration_error"), None)
    if ece is not None and not ece.insufficient_data:
        figures.insert(
            0, plots.reliability_png(ece.details["reliability"], assets / f"rel-{slug}.png")
        )
    acc = next((r for r in results if r.detector == "estimated_accuracy_drop"), None)
    summary = {
        "subject": subject.name,
        "reference_window": list(ref),
        "n_events": sum(d["n_events"] for d in daily.values() if start <= d["day_start"] < end),
        "results": [{"signal": s.signal, **s.result.as_dict()} for s in ok],
        "errors": errors,
        "accuracy": None if acc is None else {k: acc.details.get(k) for k in _ACC_KEYS},
        "daily": [{**daily[d], "kl_divergence": trend.daily.get(d)} for d in days],
        "kl_over_time": [{"start": p, "kl_divergence": trend.values.get(p)} for p in trend.points],
    }
    # evidently's table on bounded samples (the whole window when it is smaller); one row
    # more than the bound tells a window of exactly the bound from a sampled one
    n, cols = mon.sample_rows, queries.SCORE_COLUMNS
    columns = {c: aggregates.sample(store, subject, *ref, c, n + 1) for c in cols}
    current = {c: aggregates.sample(store, subject, start, end, c, n + 1) for c in cols}
    sampled = any(v.size > n for v in (*columns.values(), *current.values()))
    columns, current = ({c: v[:n] for c, v in w.items()} for w in (columns, current))
    return {
        "subject": subject,
        "results": [s.result for s in ok if s.signal == "confidence"],
        "all": ok,
        "summary": summary,
        "figures": figures,
        "evidently": (columns, current),
        "sampled": sampled,
    }


_ACC_KEYS = (
    "estimated_accuracy",
    "estimated_interval",
    "reference_estimated_accuracy",
    "n_labelled",
    "labelled_accuracy",
    "labelled_interval",
    "estimation_error",
    "reliable",
    "unreliable_because",
    "labels_for_3_points",
)


def _json_safe(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    if isinstance(obj, np.generic):
        return _json_safe(obj.item())
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj
