"""The week's story, first in the weekly report: per model, across probe versions.

For each model with traffic in the week: when the traffic ran and at what time
resolution (:mod:`monitor.store.timeline`), which alerts fired, when a probe was
promoted (the registry's history) and when the collectors started serving it (its
first event), how often each route was taken, and whether labelled accuracy and
ECE recovered: measured before the first alert and after the last promotion that
followed it. One figure (:func:`monitor.reports.plots.timeline_png`) draws it.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

from monitor.config.settings import Config
from monitor.reports import plots
from monitor.reports.weekly_html import img_html, utc
from monitor.store import timeline


def model_stories(
    cfg: Config, store: Any, start: float, end: float, alerts: list[dict], assets: Path
) -> list[dict[str, Any]]:
    """One story per model with events in ``[start, end)`` (JSON-ready, plus ``figure``).

    Parameters
    ----------
    alerts : list of dict
        The week's stored alerts (:func:`monitor.store.alert_queries.list_alerts`).
    assets : Path
        Where the figures are written.
    """
    rm = cfg.reliability_monitor
    models = timeline.models(store, start, end)
    promotions = _promotions(cfg, store, start, end)
    stories = []
    for model in models:
        span = timeline.traffic_span(store, model, start, end)
        if span is None:
            continue
        width = timeline.bucket_width(*span)
        rows = timeline.buckets(store, model, start, end, width, rm.monitoring.ece_bins)
        mine = [a for a in alerts if a["subject"].split("/", 1)[0] == model]
        mine = sorted(mine, key=lambda a: a["ts"])
        promoted = [p for p in promotions if (p["model_id"] or rm.model.id) == model]
        seen = timeline.first_seen(store, model, start, end)
        switches = {v: t for v, t in seen.items() if t > span[0]}  # began serving this week
        marks = [(a["ts"], "alert", a["kind"]) for a in _first_per_kind(mine)]
        marks += [(p["ts"], "promotion", f"{p['version']} promoted") for p in promoted]
        figure = plots.timeline_png(
            rows, width, marks, rm.monitoring.ece_threshold,
            assets / f"timeline-{plots.slug(model)}.png",
        )  # fmt: skip
        story = {
            "model_id": model, "first_event": span[0], "last_event": span[1],
            "bucket_seconds": width, "buckets": rows, "routes":
            timeline.route_counts(store, model, start, end), "alerts": len(mine),
            "alert_kinds": sorted({a["kind"] for a in mine}), "promotions": promoted,
            "switches": switches, "figure": figure,
        }  # fmt: skip
        story.update(_recovery(store, model, start, end, mine, promoted, switches, rm))
        stories.append(story)
    return stories


def _promotions(cfg: Config, store: Any, start: float, end: float) -> list[dict[str, Any]]:
    """The registry's promotions in ``[start, end)``, each with the model its version was
    fitted for (the store's probe table; None where it has no row)."""
    from retrain.registry import ProbeRegistry

    directory = cfg.reliability_monitor.retrain.registry_dir
    if not directory.is_dir():
        return []
    model_of = {row["version"]: row["model_id"] for row in store.probes()}
    return [
        {**h, "model_id": model_of.get(h["version"])}
        for h in ProbeRegistry(directory).history()
        if h.get("ts") is not None and start <= float(h["ts"]) < end
    ]


def _first_per_kind(alerts: list[dict]) -> list[dict]:
    """The first alert of each kind after a quiet spell (an hour): the marks on the figure."""
    last: dict[str, float] = {}
    out = []
    for a in alerts:
        if a["ts"] - last.get(a["kind"], float("-inf")) > 3600:
            out.append(a)
        last[a["kind"]] = a["ts"]
    return out


def _recovery(
    store: Any, model: str, start: float, end: float, alerts: list[dict],
    promoted: list[dict], switches: dict[str, float], rm: Any,
) -> dict[str, Any]:  # fmt: skip
    """Accuracy and ECE before the first alert and after the last promotion following it."""
    bins = rm.monitoring.ece_bins
    if not alerts:
        return {"week": timeline.interval(store, model, start, end, bins)}
    first = alerts[0]["ts"]
    out: dict[str, Any] = {
        "before_first_alert": timeline.interval(store, model, start, first, bins),
        "first_alert_ts": first,
    }
    after = [p for p in promoted if float(p["ts"]) >= first]
    if after:
        last = after[-1]
        since = max(float(last["ts"]), switches.get(last["version"], float(last["ts"])))
        out["after_promotion"] = {
            "version": last["version"], "since": since,
            **timeline.interval(store, model, since, end, bins),
        }  # fmt: skip
    return out


def story_html(stories: list[dict[str, Any]], out: Path, inline: bool, ece_threshold: float) -> str:
    """The story section: a few sentences and the timeline per model."""
    parts = ["<section class='vlm-monitor'><h2>This week</h2>"]
    for s in stories:
        lines = [
            _traffic_line(s),
            _alerts_line(s),
            *_promotion_lines(s),
            _recovery_line(s, ece_threshold),
        ]
        items = "".join(f"<li>{line}</li>" for line in lines if line)
        parts.append(
            f"<h3>{html.escape(s['model_id'])}</h3><ul class='story'>{items}</ul>"
            + img_html(s["figure"], out, inline, width="96%")
        )
    return "".join(parts) + "</section>"


def _traffic_line(s: dict[str, Any]) -> str:
    n = sum(r["n_events"] for r in s["buckets"])
    total = sum(s["routes"]["final"].values()) or 1
    routes = ", ".join(
        f"{html.escape(k)} {100 * v / total:.0f} %" for k, v in s["routes"]["final"].items()
    )
    gray = s["routes"]["gray_zone"]
    gray_line = ""
    if gray["n"]:
        resolved = ", ".join(f"{html.escape(k)} {v:,}" for k, v in gray["resolved"].items())
        agreement = gray["mean_consistency"]
        detail = f"K = {gray['k']}, mean agreement {agreement:.2f}; " if agreement else ""
        gray_line = (f" Gray zone: {gray['n']:,} requests ({100 * gray['n'] / total:.0f} %) "
                     f"went to self-consistency ({detail}resolved: {resolved}).")  # fmt: skip
    return (
        f"Traffic: {n:,} events from {utc(s['first_event'])} to {utc(s['last_event'])}, "
        f"drawn per {plots.width_label(s['bucket_seconds'])}. Final routes: {routes}.{gray_line}"
    )


def _alerts_line(s: dict[str, Any]) -> str:
    if not s["alerts"]:
        return "No alerts."
    kinds = ", ".join(html.escape(k) for k in s["alert_kinds"])
    noun = "alert" if s["alerts"] == 1 else "alerts"
    return f"{s['alerts']} {noun} ({kinds}); the first at {utc(s['first_alert_ts'])}."


def _promotion_lines(s: dict[str, Any]) -> list[str]:
    lines = []
    for p in s["promotions"]:
        served = s["switches"].get(p["version"])
        when = f"; collectors served it from {utc(served)}" if served is not None else ""
        reason = f" ({html.escape(str(p['reason']))})" if p.get("reason") else ""
        lines.append(f"Probe {html.escape(p['version'])} promoted at {utc(float(p['ts']))}"
                     f"{reason}{when}.")  # fmt: skip
    return lines


def _figures(stats: dict[str, Any] | None) -> str:
    if not stats or not stats.get("n_labelled"):
        return "no labelled events"
    return (f"labelled accuracy {stats['labelled_accuracy']:.3f} and ECE {stats['ece']:.3f} "
            f"on {stats['n_labelled']:,} labelled events")  # fmt: skip


def _recovery_line(s: dict[str, Any], threshold: float) -> str:
    if "week" in s:
        return f"Over the week: {_figures(s['week'])}."
    before = f"Before the first alert: {_figures(s.get('before_first_alert'))}."
    after = s.get("after_promotion")
    if after is None:
        return before + " No probe was promoted after it: the probe that drifted still serves."
    verdict = ""
    if after.get("ece") is not None:
        ok = after["ece"] <= threshold
        verdict = (f" Calibration {'recovered' if ok else 'did not recover'}: ECE "
                   f"{'within' if ok else 'above'} the threshold {threshold:g}.")  # fmt: skip
    return (f"{before} After {html.escape(after['version'])} took over "
            f"({utc(after['since'])}): {_figures(after)}.{verdict}")  # fmt: skip
