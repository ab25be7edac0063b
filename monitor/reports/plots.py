"""The weekly report's figures (matplotlib, Agg backend, small PNGs).

- reliability diagram: accuracy against mean confidence per equal-width bin,
  with the diagonal of perfect calibration (Guo et al. 2017, Fig. 1);
- KL divergence of the confidence distribution per day, with its threshold;
- accuracy per day: the label-free estimate (mean calibrated confidence) and the
  labelled accuracy where labels exist.

Each function writes one PNG of about 20-40 kB and returns its path.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

_SIZE = (6.4, 3.4)  # inches
_DPI = 80


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
) -> Path:
    """KL divergence (nats) evaluated per day; days with too few events are gaps."""
    fig, ax = _figure()
    y = np.array([np.nan if v is None else v for v in kl], dtype=float)
    ax.plot(_days(day_starts), y, "o-", color="#4c72b0", ms=3, label="KL(current || reference)")
    ax.axhline(threshold, color="#c44e52", ls="--", lw=1, label=f"threshold {threshold:g}")
    _shade(ax, week)
    ax.set(ylabel="nats")
    ax.set_title("KL divergence of the confidence (trailing window), per day", fontsize=10)
    ax.legend(fontsize=8, loc="upper left")
    fig.autofmt_xdate()
    return _save(fig, path)


def accuracy_png(
    day_starts: Sequence[float],
    estimated: Sequence[float | None],
    labelled: Sequence[float | None],
    path: str | os.PathLike[str],
    week: tuple[float, float] | None = None,
) -> Path:
    """Estimated (label-free) and labelled accuracy per day."""
    fig, ax = _figure()
    days = _days(day_starts)
    est = np.array([np.nan if v is None else v for v in estimated], dtype=float)
    lab = np.array([np.nan if v is None else v for v in labelled], dtype=float)
    ax.plot(days, est, "o-", color="#4c72b0", ms=3, label="estimated (mean confidence)")
    ax.plot(days, lab, "s-", color="#55a868", ms=3, label="labelled")
    _shade(ax, week)
    ax.set(ylim=(0, 1.02), ylabel="accuracy")
    ax.set_title("Accuracy per day: label-free estimate and labelled", fontsize=10)
    ax.legend(fontsize=8, loc="lower left")
    fig.autofmt_xdate()
    return _save(fig, path)


def _shade(ax: Any, week: tuple[float, float] | None) -> None:
    if week is not None:
        start, end = _days(week)
        ax.axvspan(start, end, color="#f0e442", alpha=0.2, label="report week")
