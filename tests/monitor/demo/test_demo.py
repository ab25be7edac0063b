"""The loop closed end to end: reference model -> collector -> Tansu -> DuckDB -> detectors ->
automatic retrain -> promotion -> the serving collector switching -> ECE recovered; then
the shift no probe can help with, refused, with what to do."""

import pytest
from rich.console import Console

from monitor.config.load import parse_config
from monitor.demo.run import run_demo
from monitor.reference_vlm.hallucinate import HALLUCINATING_DIR
from monitor.store.database import Store

pytestmark = pytest.mark.skipif(
    not (HALLUCINATING_DIR / "config.json").is_file(), reason="reference checkpoint not built"
)


def test_demo_closes_the_loop(broker, topic_prefix, tmp_path):
    cfg = parse_config(
        {
            "reliability_monitor": {
                "kafka": {
                    "bootstrap_servers": broker.bootstrap_servers,
                    "topics": {
                        k: f"{topic_prefix}.{k}" for k in ("events", "labels", "alerts", "control")
                    },
                },
                "store": {
                    "path": str(tmp_path / "m.duckdb"),
                    "reports_dir": str(tmp_path / "reports"),
                },
            }
        },
        base_dir=tmp_path,
    )
    console = Console(record=True, width=140)
    result = run_demo(cfg, events_per_window=300, seed=0, console=console)
    text = console.export_text()
    scores = {s.window.name: s for s in result.loop.scores}
    threshold = cfg.reliability_monitor.monitoring.ece_threshold

    assert result.premise_holds, text  # probe AUROC interval above the output confidence's
    assert not scores["reference"].alerts and not scores["live"].alerts, text  # no false alarm
    # the refit-able shift: alert, retrain, promotion, switch, ECE back under the threshold
    assert scores["small"].row.ece > threshold, text
    (first_window, first), (last_window, last) = result.loop.retrains
    assert (first_window, first.promoted, first.version) == ("small", True, "v2"), text
    assert result.loop.switches and result.loop.switches[0][:2] == ("v1", "v2"), text
    later = scores["small, later"]
    assert later.window.probe_version == "v2" and later.row.ece < threshold, text
    # the shift where nothing helps: refused, and the operator is told what to do
    assert last_window == "all shifts" and not last.promoted, text
    assert last.decision.rules["above_chance"] is False, text
    assert "What to do" in text and "v2 serving" in text
    # the label-free estimate says it cannot be trusted once the inputs moved
    assert scores["live"].row.estimate_reliable is True
    assert scores["all shifts"].row.estimate_reliable is False

    n = sum(len(s.window.events) for s in result.loop.scores)
    with Store(tmp_path / "m.duckdb") as store:
        counts = store.counts()
        assert counts["events"] == n and counts["labels"] == n, counts
        assert store.execute("SELECT count(DISTINCT event_id) FROM events")[0][0] == n
    assert "started the embedded Tansu broker" not in text  # the configured broker answered
    assert result.report.is_file()
