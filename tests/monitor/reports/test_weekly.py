"""Weekly report: ISO weeks, the page (real evidently) under 1 MB, the PNGs, the JSON summary."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import numpy as np
import pytest
from typer.testing import CliRunner

from collectors.wire.events import LabelEvent, ScoredEvent
from detectors.scores.kl import KLDivergence
from monitor.cli.app import app
from monitor.config.load import parse_config
from monitor.reports.weekly import iso_week_bounds, previous_week, week_of, write_weekly_report
from monitor.store.database import Store
from monitor.store.queries import Subject, scores

DAY = 86400.0
WEEK = "2026-W47"
START = datetime(2026, 11, 16, tzinfo=timezone.utc).timestamp()  # Monday of 2026-W47


def test_iso_weeks():
    assert iso_week_bounds(WEEK) == (START, START + 7 * DAY)
    assert week_of(START + 3.5 * DAY) == WEEK and week_of(START - 1) == "2026-W46"
    assert previous_week(START + 2 * DAY) == "2026-W46"
    assert iso_week_bounds("2026-W01")[0] == datetime(2025, 12, 29, tzinfo=timezone.utc).timestamp()
    for bad in ("2026-47", "2026-W54", "W47", "2026-w47"):
        with pytest.raises(ValueError):
            iso_week_bounds(bad)


def _fill(store, rng):
    """Three weeks like the reference, then the report week with lower, overconfident scores."""
    first = START - 21 * DAY
    events, labels = [], []
    for i in range(2800):
        ts = first + i * (28 * DAY / 2800)
        shifted = ts >= START
        c = float(np.clip(rng.beta(6, 2) - (0.2 if shifted else 0.0), 0.01, 0.99))
        events.append(
            ScoredEvent(
                f"w{i}",
                ts,
                "m",
                "v1",
                3,
                "last_prompt_token",
                float(np.log(c / (1 - c))),
                c,
                "serve",
                tag="t",
            )
        )
        if i % 2 == 0:
            p = c - 0.15 if shifted else c
            labels.append(LabelEvent(f"w{i}", bool(rng.uniform() < p), ts + 30.0, "test"))
    store.write_batch(events, labels)
    store.record_alert(
        "calibration_drift",
        "calibration_error",
        "m/v1/*/confidence",
        "warning",
        "calibration_error=0.16 > 0.1",
        0.16,
        0.1,
        START + DAY,
    )
    store.record_alert(
        "score_drift", "psi", "m/v1/*/confidence", "warning", "old", 0.3, 0.2, START - 3 * DAY
    )  # previous week: not in this report


@pytest.fixture(scope="module")
def weekly(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("weekly")
    cfg = parse_config(
        {
            "reliability_monitor": {
                "store": {"path": str(tmp / "m.duckdb"), "reports_dir": str(tmp / "reports")},
                "monitoring": {"bootstrap_resamples": 50},
            }
        },
        base_dir=tmp,
    )
    with Store(tmp / "m.duckdb") as store:
        _fill(store, np.random.default_rng(47))
        report = write_weekly_report(cfg, store, WEEK)
        subject = Subject("m", "v1")
        ref = scores(store, subject, START - 21 * DAY, START - 14 * DAY, "confidence")
        week = scores(store, subject, START, START + 7 * DAY, "confidence")
        trailing = scores(store, subject, START - 2 * DAY, START + 5 * DAY, "confidence")
    return cfg, tmp, report, ref, week, trailing


def test_page_under_1_mb_with_figures_and_evidently(weekly):
    _, tmp, report, *_ = weekly
    assert report.html == tmp / "reports" / "weekly" / f"{WEEK}.html"
    size = report.html.stat().st_size
    assert 50_000 < size < 1_000_000
    page = report.html.read_text(encoding="utf-8")
    assert page.count("data:image/png;base64,") == 3  # reliability, KL, accuracy
    assert "drawDashboard" in page and "js/evidently-" in page  # evidently, bundle linked
    assert "raw_logit" in page  # both score columns compared
    assert "calibration_error=0.16 &gt; 0.1" in page and ">old<" not in page
    names = sorted(p.name.split("-")[0] for p in report.figures)
    assert names == ["accuracy", "kl", "rel"]
    for fig in report.figures:
        assert fig.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and fig.stat().st_size < 100_000


def test_summary_numbers_are_the_detectors_numbers(weekly):
    cfg, _, report, ref, week, trailing = weekly
    summary = json.loads(report.summary.read_text(encoding="utf-8"))
    assert summary["week"] == WEEK and summary["start"] == START
    (subject,) = summary["subjects"]
    assert subject["subject"] == "m/v1/*" and subject["n_events"] == 700
    kl_expected = KLDivergence().fit(ref).score(week).statistic
    kl = next(
        r
        for r in subject["results"]
        if r["detector"] == "kl_divergence" and r["signal"] == "confidence"
    )
    assert kl["statistic"] == pytest.approx(kl_expected, rel=1e-12) and kl["is_drift"]
    ece = next(r for r in subject["results"] if r["detector"] == "calibration_error")
    assert ece["is_drift"] and set(ece["details"]["intervals"]) == {"ece", "ace", "mce", "brier"}
    acc = subject["accuracy"]
    assert acc["estimated_accuracy"] == pytest.approx(week.mean())
    assert acc["estimation_error"] > 0.05  # overconfident: estimate above labelled accuracy
    # KL over time: each day's point is the KL of the trailing 7 days, binned in DuckDB
    day5 = next(d for d in subject["daily"] if d["day_start"] == START + 4 * DAY)
    assert day5["kl_divergence"] == pytest.approx(
        KLDivergence().fit(ref).score(trailing).statistic, rel=1e-9
    )
    assert len(subject["daily"]) == 28
    assert [a["message"] for a in summary["alerts"]] == ["calibration_error=0.16 > 0.1"]


def test_cli_report(weekly, tmp_path):
    cfg, tmp, *_ = weekly
    cfg_path = tmp_path / "c.yaml"
    cfg_path.write_text(
        f"reliability_monitor:\n  store: {{path: '{tmp / 'm.duckdb'}'}}\n"
        "  monitoring: {bootstrap_resamples: 10}\n",
        encoding="utf-8",
    )
    runner = CliRunner()
    out = runner.invoke(
        app, ["report", "-c", str(cfg_path), "--week", "2026-W46", "--out", str(tmp_path / "out")]
    )
    assert out.exit_code == 0, out.output
    assert (tmp_path / "out" / "2026-W46.html").is_file()
    assert (tmp_path / "out" / "2026-W46" / "summary.json").is_file()
    bad = runner.invoke(app, ["report", "-c", str(cfg_path), "--week", "2026-47"])
    assert bad.exit_code == 2 and "2026-W47" in bad.output
    empty = runner.invoke(app, ["report", "-c", str(cfg_path), "--week", "2020-W01"])
    assert empty.exit_code == 1 and "no events in week 2020-W01" in empty.output
