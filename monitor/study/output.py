"""Study output: a Table-6-style table (markdown, CSV), a bar chart and per-layer curves (PNG)."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from monitor.study.run import StudyResult
from monitor.study.stats import SignalStats

COLUMNS = (
    "method",
    "group",
    "cost",
    "n",
    "auroc",
    "auroc_lo",
    "auroc_hi",
    "r_pb",
    "r_pb_lo",
    "r_pb_hi",
)


def _ci(value: float, ci: tuple[float, float]) -> str:
    return f"{value:.3f} [{ci[0]:.3f}, {ci[1]:.3f}]"


def markdown(result: StudyResult, title: str) -> str:
    """The table as markdown, with the model's fusion type and split sizes."""
    lines = [
        f"### {title}",
        "",
        f"Model family `{result.family}` ({result.fusion} fusion); greedy accuracy "
        f"{result.accuracy:.1%}; probes fitted on {result.n_fit} examples, statistics on "
        f"{result.n_test} held-out examples; 95 % bootstrap intervals.",
        "",
        "| Method | Group | Cost | AUROC [95 % CI] | r_pb [95 % CI] |",
        "|---|---|---|---|---|",
    ]
    for row in result.rows:
        st = row.stats
        lines.append(
            f"| {row.method} | {row.group} | {row.cost} | {_ci(st.auroc, st.auroc_ci)} "
            f"| {_ci(st.r_pb, st.r_pb_ci)} |"
        )
    if result.causal:
        lines += [
            "",
            "Causal checks (test half; accuracy change, paired bootstrap 95 % CI):",
            "",
            "| Intervention | Accuracy | Change, pp [95 % CI] |",
            "|---|---|---|",
        ]
        for e in result.causal:
            lo, hi = e.delta_ci_pp
            lines.append(
                f"| {e.name} | {e.accuracy:.1%} | {e.delta_pp:+.1f} [{lo:+.1f}, {hi:+.1f}] |"
            )
    return "\n".join(lines) + "\n"


def _csv_row(method: str, group: str, cost: str, st: SignalStats) -> list:
    return [method, group, cost, st.n, st.auroc, *st.auroc_ci, st.r_pb, *st.r_pb_ci]


def write_csv(result: StudyResult, path: str | Path) -> Path:
    """Table rows, then one row per layer for the probe and truth-margin curves."""
    path = Path(path)
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(COLUMNS)
        for row in result.rows:
            w.writerow(_csv_row(row.method, row.group, row.cost, row.stats))
        for i, st in enumerate(result.probe_auroc):
            w.writerow(_csv_row(f"probe layer {i}", "per-layer curve", "1 pass", st))
        for i, st in enumerate(result.margin_auroc):
            w.writerow(_csv_row(f"truth margin layer {i}", "per-layer curve", "1 pass", st))
    return path


def write_causal_csv(result: StudyResult, path: str | Path) -> Path:
    """One row per causal check: intervention, accuracy, change and interval (pp)."""
    path = Path(path)
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(("intervention", "accuracy", "delta_pp", "delta_lo_pp", "delta_hi_pp"))
        for e in result.causal:
            w.writerow((e.name, e.accuracy, e.delta_pp, *e.delta_ci_pp))
    return path


def plot_table(result: StudyResult, path: str | Path, title: str) -> Path:
    """Horizontal bars of AUROC with 95 % intervals, chance at 0.5."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [r.method for r in result.rows][::-1]
    st = [r.stats for r in result.rows][::-1]
    auc = np.array([s.auroc for s in st])
    err = np.abs(np.array([s.auroc_ci for s in st]).T - auc)
    fig, ax = plt.subplots(figsize=(8, 0.45 * len(names) + 1.2))
    ax.barh(names, auc, xerr=err, color="tab:blue", capsize=3)
    ax.axvline(0.5, color="grey", linestyle="--", linewidth=1)
    ax.set_xlim(0, 1)
    ax.set_xlabel("AUROC for correctness (95 % bootstrap CI)")
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return Path(path)


def plot_layers(result: StudyResult, path: str | Path, title: str) -> Path:
    """Per-layer probe and truth-margin AUROC (left) and mean truth margin (right)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    layers = np.arange(len(result.probe_auroc))
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    for curve, label in (
        (result.probe_auroc, "hidden-state probe"),
        (result.margin_auroc, "truth margin"),
    ):
        auc = np.array([s.auroc for s in curve])
        ci = np.array([s.auroc_ci for s in curve])
        left.plot(layers, auc, marker="o", label=label)
        left.fill_between(layers, ci[:, 0], ci[:, 1], alpha=0.2)
    left.axhline(0.5, color="grey", linestyle="--", linewidth=1)
    left.set(xlabel="decoder layer", ylabel="AUROC (test half)", ylim=(0, 1.02))
    left.legend()
    right.plot(layers, result.margin_mean[:, 1], marker="o", label="correct")
    right.plot(layers, result.margin_mean[:, 0], marker="o", label="wrong")
    right.axhline(0, color="grey", linestyle="--", linewidth=1)
    right.set(xlabel="decoder layer", ylabel="mean truth margin (logits, Eq. 3)")
    right.legend()
    for ax in (left, right):
        ax.set_xticks(layers)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return Path(path)


def write_all(result: StudyResult, out_dir: str | Path, title: str) -> dict[str, Path]:
    """Write ``study.md``, ``study.csv``, ``study.png``, ``layers.png`` (and ``causal.csv``)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "study.md").write_text(markdown(result, title))
    extra = {"causal": write_causal_csv(result, out / "causal.csv")} if result.causal else {}
    return {
        **extra,
        "markdown": out / "study.md",
        "csv": write_csv(result, out / "study.csv"),
        "chart": plot_table(result, out / "study.png", title),
        "layers": plot_layers(result, out / "layers.png", title),
    }
