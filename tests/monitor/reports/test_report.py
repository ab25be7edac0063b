"""HTML report (real evidently) and the rich terminal summary."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
from rich.console import Console

from detectors.calibration.calibration_error import CalibrationError
from detectors.scores.kl import KLDivergence
from monitor.alerts.dispatch import alerts_from_results
from monitor.reports.drift_report import write_html_report
from monitor.reports.results_html import STAT_FORMAT
from monitor.reports.summary import WindowSummary, render_summary


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(9)
    ref, cur = rng.beta(5, 2, 2000), rng.beta(2, 3, 800)
    correct = rng.uniform(size=800) < cur - 0.2
    kl = KLDivergence().fit(ref).score(cur, window=(1_700_000_000.0, 1_700_604_800.0))
    ece = CalibrationError().fit().score(cur, correct)
    return ref, cur, [kl, ece]


@pytest.fixture(scope="module")
def report(data, tmp_path_factory):
    ref, cur, results = data
    out = tmp_path_factory.mktemp("reports") / "weekly" / "report.html"
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("DO_NOT_TRACK", raising=False)
        path = write_html_report(ref, cur, results, out, title="Week 3 <shifted>")
        telemetry_off = os.environ.get("DO_NOT_TRACK")
    return path, path.read_text(encoding="utf-8"), telemetry_off


def test_report_written_with_our_numbers(data, report):
    _, _, (kl, ece) = data
    path, page, _ = report
    assert path.is_file() and path.stat().st_size > 10_000
    assert STAT_FORMAT.format(kl.statistic) + " nats" in page
    assert STAT_FORMAT.format(ece.statistic) in page
    assert "Week 3 &lt;shifted&gt;" in page and "<shifted>" not in page
    assert "kl_divergence: smoothed bin probabilities" in page
    assert "reliability diagram" in page
    assert "drawDashboard" in page  # evidently's dashboard is in the page


def test_report_links_one_shared_bundle_and_stays_small(report):
    path, page, _ = report
    bundle = path.parent / "js" / "evidently-0.7.23.js"
    assert bundle.is_file() and bundle.stat().st_size > 1_000_000
    assert '<script src="js/evidently-0.7.23.js"></script>' in page
    assert path.stat().st_size < 1_000_000


def test_report_turns_telemetry_off(report):
    assert report[2] is not None


def test_self_contained_report(data, tmp_path):
    ref, cur, results = data
    path = write_html_report(ref, cur, results, tmp_path / "r.html", "t", self_contained=True)
    page = path.read_text(encoding="utf-8")
    assert "js/evidently" not in page and not (tmp_path / "js").exists()
    assert path.stat().st_size > 1_000_000


@pytest.mark.parametrize(
    ("ref", "cur", "title", "match"),
    [
        ([], [0.5], "t", "reference is empty"),
        ([0.5], [float("nan")], "t", "non-finite"),
        ([0.5], [0.5], "", "title"),
    ],
)
def test_report_input_errors(ref, cur, title, match, tmp_path):
    with pytest.raises(ValueError, match=match):
        write_html_report(ref, cur, [], tmp_path / "r.html", title)
    assert not (tmp_path / "r.html").exists()


def test_importing_report_does_not_import_evidently():
    code = "import sys, monitor.reports.drift_report; print('evidently' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# -- terminal summary ---------------------------------------------------------


def test_window_summary_status_from_results(data):
    _, _, (kl, ece) = data
    row = WindowSummary.from_results("w3", 800, [kl, ece], accuracy=0.4, mean_confidence=0.41)
    assert (row.kl, row.ece, row.status) == (kl.statistic, ece.statistic, "drift")
    small = CalibrationError().fit().score([0.5] * 5, [1] * 5)
    assert WindowSummary.from_results("w0", 5, [small]).status == "insufficient data"
    assert WindowSummary.from_results("w-", 0, []).status == "ok"
    with pytest.raises(ValueError, match="status"):
        WindowSummary("w", 1, status="bad")


def test_render_summary_prints_rows_and_alerts(data):
    _, _, results = data
    rows = [
        WindowSummary("reference", 2000, accuracy=0.81, mean_confidence=0.71, status="ok"),
        WindowSummary.from_results("shifted", 800, results, accuracy=0.4, mean_confidence=0.41),
    ]
    alerts = alerts_from_results(results, subject="shifted", now=0.0)
    console = Console(record=True, width=140, color_system=None)
    render_summary(rows, alerts, console=console)
    text = console.export_text()
    assert "reference" in text and "2000" in text and "0.810" in text
    assert f"{results[0].statistic:.3f}" in text and f"{results[1].statistic:.3f}" in text
    assert "drift" in text
    for alert in alerts:
        assert alert.log_line() in text
    assert len(text.splitlines()) < 40  # one screen

    quiet = Console(record=True, width=140, color_system=None)
    render_summary(rows[:1], [], console=quiet)
    assert "no alerts" in quiet.export_text()


def test_detectors_sharing_a_binning_share_one_bin_table(data, tmp_path):
    from detectors.scores.psi import PopulationStabilityIndex

    ref, cur, (kl, ece) = data
    psi = PopulationStabilityIndex().fit(ref).score(cur, window=(1_700_000_000.0, 1_700_604_800.0))
    path = write_html_report(ref, cur, [kl, psi, ece], tmp_path / "r.html", title="t")
    page = path.read_text(encoding="utf-8")
    assert page.count("smoothed bin probabilities") == 1
    assert "kl_divergence, psi: smoothed bin probabilities" in page
