"""The weekly report's figures (matplotlib, Agg backend, small PNGs).

- reliability diagram: accuracy against mean confidence per equal-width bin,
  with the diagonal of perfect calibration (Guo et al. 2017, Fig. 1);
- KL divergence of the confidence distribution per day, with its threshold;
- the week's timeline of one model across probe versions (:func:`timeline_png`).

Each function writes one PNG of about 20-40 kB and returns its path.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

_SIZE = (6.4, 3.4)  # inches
_DPI = 80


def slug(name: str) -> str:
    """``name`` as a file-name part: runs of other than ``A-Za-z0-9._-`` become ``_``."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name)


def _figure() -> tuple[Any, Any]:
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    fig = Figure(figsize=_SIZE, dpi=_DPI, layout="constrained")
    return fig, fig.add_subplot()


def _save(fig: Any, path: str | os.PathLike[str]) -> Path:
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, format="png", dpi=_DPI)
    return out


def _days(day_starts: Sequence[float]) -> list[datetime]:
    return [datetime.fromtimestamp(d, tz=timezone.utc) for d in day_starts]


def reliability_png(reliability: Mapping[str, Sequence], path: str | os.PathLike[str]) -> Path:
    """Reliability diagram from a calibration result's ``details["reliability"]``.

    Parameters
    ----------
    reliability : mapping
        ``counts``, ``mean_confidence``, ``accuracy`` per bin (None for empty bins).
    path : str or path-like
        Output PNG.
    """
    counts = np.asarray(reliability["counts"], dtype=float)
    conf = np.array([np.nan if v is None else v for v in reliability["mean_confidence"]])
    acc = np.array([np.nan if v is None else v for v in reliability["accuracy"]])
    k = len(counts)
    centres = (np.arange(k) + 0.5) / k
    fig, ax = _figure()
    filled = counts > 0
    ax.bar(centres[filled], acc[filled], width=0.9 / k, color="#4c72b0", label="accuracy")
    ax.plot([0, 1], [0, 1], "--", color="#888", label="perfect calibration")
    ax.plot(conf[filled], acc[filled], "o", color="#c44e52", ms=4, label="(mean conf, acc)")
    ax.set(xlim=(0, 1), ylim=(0, 1), xlabel="confidence", ylabel="accuracy")
    ax.set_title(f"Reliability diagram ({int(counts.sum())} labelled events)", fontsize=10)
    ax.legend(fontsize=8, loc="upper left")
    return _save(fig, path)


def kl_png(
    day_starts: Sequence[float],
    kl: Sequence[float | None],
    threshold: float,
    path: str | os.PathLike[str],
    week: tuple[float, float] | None = None,
    title: str | None = None,
) -> Path:
    """KL divergence (nats) evaluated per day (or per ``day_starts`` bucket, described by
    ``title``); points with too few events are gaps."""
    fig, ax = _figure()
    y = np.array([np.nan if v is None else v for v in kl], dtype=float)
    ax.plot(_days(day_starts), y, "o-", color="#4c72b0", ms=3, label="KL(current || reference)")
    ax.axhline(threshold, color="#c44e52", ls="--", lw=1, label=f"threshold {threshold:g}")
    _shade(ax, week)
    ax.set(ylabel="nats")
    title = title or "KL divergence of the confidence (trailing window), per day"
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8, loc="upper left")
    fig.autofmt_xdate()
    return _save(fig, path)


def _shade(ax: Any, week: tuple[float, float] | None) -> None:
    if week is not None:
        start, end = _days(week)
        ax.axvspan(start, end, color="#f0e442", alpha=0.2, label="report week")


def timeline_png(
    rows: Sequence[Mapping[str, Any]],
    width_s: float,
    marks: Sequence[tuple[float, str, str]],
    ece_threshold: float,
    path: str | os.PathLike[str],
) -> Path:
    """The week's story of one model: accuracy, ECE and traffic per bucket, one colour per
    probe version, with alerts and promotions marked.

    Parameters
    ----------
    rows : sequence of mapping
        :func:`monitor.store.timeline.buckets` rows.
    width_s : float
        Bucket width, seconds (bars of traffic are this wide).
    marks : sequence of (ts, kind, label)
        Vertical lines: kind ``"alert"`` (red, dashed) or ``"promotion"`` (green).
    ece_threshold : float
        Drawn on the ECE axis.
    path : str or path-like
        Output PNG.
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9.6, 6.0), dpi=_DPI, layout="constrained")
    acc_ax, ece_ax, n_ax = fig.subplots(3, 1, sharex=True, height_ratios=(3, 2, 1.4))
    versions = sorted({r["probe_version"] for r in rows}, key=_version_key)
    colours = ["#4c72b0", "#dd8452", "#55a868", "#8172b3", "#937860", "#da8bc3"]
    bar_width = width_s / 86400.0  # matplotlib dates are in days
    for i, version in enumerate(versions):
        mine = [r for r in rows if r["probe_version"] == version]
        t = [datetime.fromtimestamp(r["bucket_start"] + width_s / 2, tz=timezone.utc) for r in mine]
        c = colours[i % len(colours)]

        def col(name: str, rows: Sequence[Mapping[str, Any]] = mine) -> np.ndarray:
            return np.array([np.nan if r[name] is None else r[name] for r in rows], dtype=float)

        acc_ax.plot(t, col("estimated_accuracy"), "-", color=c, lw=1.2,
                    label=f"{version} estimated")  # fmt: skip
        acc_ax.plot(t, col("labelled_accuracy"), "o", color=c, ms=3.5, label=f"{version} labelled")
        ece_ax.plot(t, col("ece"), "s-", color=c, ms=3, lw=1)
        n_ax.bar(t, col("n_events"), width=bar_width * 0.9, color=c, label=version)
    ece_ax.axhline(ece_threshold, color="#c44e52", ls="--", lw=1,
                   label=f"ECE threshold {ece_threshold:g}")  # fmt: skip
    for ts, kind, label in marks:
        when = datetime.fromtimestamp(ts, tz=timezone.utc)
        style = {"color": "#c44e52", "ls": "--"} if kind == "alert" else {"color": "#2ca02c"}
        for ax in (acc_ax, ece_ax, n_ax):
            ax.axvline(when, lw=1, alpha=0.8, **style)
        acc_ax.annotate(label, (when, 1.0), xytext=(2, -2), textcoords="offset points",
                        rotation=90, fontsize=7, va="top", color=style["color"])  # fmt: skip
    acc_ax.set(ylim=(0, 1.05), ylabel="accuracy")
    acc_ax.set_title(
        f"Accuracy (line: label-free estimate, dots: labelled), ECE and traffic per "
        f"{width_label(width_s)}; red: alerts, green: promotions", fontsize=10,
    )  # fmt: skip
    acc_ax.legend(fontsize=7, loc="lower left", ncol=max(1, len(versions)))
    ece_ax.set(ylabel="ECE")
    ece_ax.legend(fontsize=7, loc="upper left")
    n_ax.set(ylabel="events")
    fig.autofmt_xdate()
    return _save(fig, path)


def _version_key(version: str) -> tuple[int, str]:
    digits = version[1:] if version[:1] == "v" else ""
    return (int(digits), version) if digits.isdigit() else (1 << 30, version)


def width_label(width_s: float) -> str:
    """``"5 minutes"``, ``"hour"``, ``"6 hours"`` or ``"day"``: a bucket width in words."""
    if width_s < 3600:
        return f"{width_s / 60:.0f} minutes"
    if width_s < 86400:
        return "hour" if width_s == 3600 else f"{width_s / 3600:.0f} hours"
    return "day"
