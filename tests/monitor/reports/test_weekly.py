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
    assert page.count("data:image/png;base64,") == 3  # timeline, reliability, KL
    assert "drawDashboard" in page and "js/evidently-" in page  # evidently, bundle linked
    assert "raw_logit" in page  # both score columns compared
    assert "calibration_error=0.16 &gt; 0.1" in page and ">old<" not in page
    names = sorted(p.name.split("-")[0] for p in report.figures)
    assert names == ["kl", "rel", "timeline"]
    assert page.count("smoothed bin probabilities") == 0  # no bin tables repeated per detector
    assert page.index("This week") < page.index("Alerts this week") < page.index("<h2>m/v1/*</h2>")
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


def _story_store(tmp):
    """Three hours on a Wednesday: v1 calibrated, then overconfident after a shift, an alert,
    v2 promoted and serving calibrated; the registry's history holds the promotions."""
    from collectors.probe.linear import LinearProbe
    from retrain.registry import ProbeRegistry

    t0, rng = START + 2 * DAY + 10 * 3600, np.random.default_rng(8)
    events, labels = [], []
    for i in range(1800):
        ts = t0 + i * 6.0  # 3 hours
        version = "v1" if ts < t0 + 2 * 3600 else "v2"
        c = float(np.clip(rng.beta(6, 2), 0.01, 0.99))
        shifted = t0 + 1.5 * 3600 <= ts < t0 + 2 * 3600
        decision = "serve" if c >= 0.6 else ("self_consistency" if c >= 0.4 else "fallback")
        gray = {}  # self-consistency resolved the gray zone: the events say how
        if decision == "self_consistency":
            gray = {"route": "serve" if c >= 0.5 else "fallback", "consistency_k": 5,
                    "consistency": 0.8 if c >= 0.5 else 0.4}  # fmt: skip
        events.append(ScoredEvent(f"s{i}", ts, "m", version, 3, "last_prompt_token",
                                  float(np.log(c / (1 - c))), c, decision, **gray))  # fmt: skip
        labels.append(LabelEvent(f"s{i}", bool(rng.uniform() < c - (0.3 if shifted else 0)),
                                 ts + 20.0, "test"))  # fmt: skip
    registry = ProbeRegistry(tmp / "reg")
    for v in ("v1", "v2"):
        registry.publish(LinearProbe(weight=np.ones(4), bias=0.0, layer=3, version=v))
        registry.promote(v, reason="all rules hold")
    stamps = {"v1": START - 5 * DAY, "v2": t0 + 2 * 3600 - 30}
    rows = [json.loads(line) for line in registry.history_path.read_text().splitlines()]
    registry.history_path.write_text(
        "".join(json.dumps({**r, "ts": stamps[r["version"]]}) + "\n" for r in rows)
    )
    store = Store(tmp / "m.duckdb")
    store.write_batch(events, labels)
    store.record_alert("calibration_drift", "calibration_error", "m/v1/*/confidence", "warning",
                       "calibration_error=0.21 > 0.1", 0.21, 0.1, t0 + 1.75 * 3600)  # fmt: skip
    return store, t0


@pytest.fixture(scope="module")
def story(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("story")
    cfg = parse_config({"reliability_monitor": {
        "model": {"id": "m"},
        "store": {"path": str(tmp / "m.duckdb"), "reports_dir": str(tmp / "reports")},
        "retrain": {"registry_dir": str(tmp / "reg")},
        "monitoring": {"bootstrap_resamples": 20, "reference_window": "1h"},
    }}, base_dir=tmp)  # fmt: skip
    store, t0 = _story_store(tmp)
    with store:
        report = write_weekly_report(cfg, store, WEEK)
    return report, t0


def test_the_report_leads_with_the_weeks_story(story):
    report, t0 = story
    (told,) = json.loads(report.summary.read_text())["story"]
    assert told["bucket_seconds"] == 300  # three hours of traffic: 5-minute buckets, not a dot
    assert len({b["bucket_start"] for b in told["buckets"]}) == 36
    assert [p["version"] for p in told["promotions"]] == ["v2"]  # v1's was the week before
    assert told["switches"] == {"v2": t0 + 2 * 3600}
    assert told["alerts"] == 1 and told["alert_kinds"] == ["calibration_drift"]
    routes, gray = told["routes"]["final"], told["routes"]["gray_zone"]
    assert set(routes) == {"serve", "fallback"} and sum(routes.values()) == 1800
    assert gray["n"] == sum(gray["resolved"].values()) > 0 and gray["k"] == 5
    assert 0.4 < gray["mean_consistency"] < 0.8
    before, after = told["before_first_alert"], told["after_promotion"]
    assert before["n_labelled"] == 1050 and after["n_labelled"] == 600
    assert after["version"] == "v2" and after["ece"] < 0.1
    page = report.html.read_text(encoding="utf-8")
    assert "drawn per 5 minutes" in page and "Probe v2 promoted at" in page
    assert "Calibration recovered" in page and "went to self-consistency (K = 5" in page
    assert report.html.stat().st_size < 1_000_000


def test_the_page_renders_in_headless_chromium(story, tmp_path):
    """What a reader sees: the page loads in a real browser and is not blank."""
    import os
    import shutil
    import subprocess

    from PIL import Image

    report, _ = story
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        if os.environ.get("VLM_MONITOR_REQUIRE_TOOLS") == "1":
            pytest.fail("chromium is not installed (Debian package chromium)")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    shot = tmp_path / "page.png"
    out = subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
         "--window-size=1280,2400", "--virtual-time-budget=5000", f"--screenshot={shot}",
         report.html.as_uri()],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert shot.is_file(), out.stderr[-2000:]
    pixels = np.asarray(Image.open(shot).convert("L"), dtype=float)
    assert pixels.shape == (2400, 1280)
    top = pixels[:1200]  # the story and its timeline figure come first
    assert top.std() > 20 and (top < 128).mean() > 0.01, "the top of the page is blank"


def test_evidently_runs_on_bounded_samples_and_the_page_says_so(weekly, tmp_path):
    _, tmp, report, *_ = weekly
    assert "hash samples" not in report.html.read_text(encoding="utf-8")  # whole windows
    (subject,) = json.loads(report.summary.read_text())["subjects"]
    with Store(tmp / "m.duckdb") as store:
        n_ref = store.execute(
            "SELECT count(*) FROM all_events WHERE ts >= ? AND ts < ?", subject["reference_window"]
        )[0][0]
        bound = max(n_ref, subject["n_events"])
        for rows, sampled in ((bound, False), (100, True)):  # exactly the bound is not a sample
            cfg = parse_config({"reliability_monitor": {
                "store": {"path": str(tmp / "m.duckdb"), "reports_dir": str(tmp_path / str(rows))},
                "monitoring": {"bootstrap_resamples": 50, "sample_rows": rows},
            }}, base_dir=tmp)  # fmt: skip
            page = write_weekly_report(cfg, store, WEEK).html.read_text(encoding="utf-8")
            assert ("hash samples of 100 reference and 100 current events" in page) == sampled
            assert ("hash samples" in page) == sampled
