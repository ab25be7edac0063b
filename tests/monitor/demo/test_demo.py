"""The walking skeleton end to end: reference model -> collector -> Tansu -> DuckDB -> detectors."""

import pytest
from rich.console import Console

from monitor.config.load import parse_config
from monitor.demo.run import run_demo
from monitor.reference_vlm.model import CHECKPOINT_DIR
from monitor.store.database import Store

pytestmark = pytest.mark.skipif(
    not (CHECKPOINT_DIR / "config.json").is_file(), reason="reference checkpoint not trained"
)


def test_demo_alerts_on_shifted_traffic_only(broker, topic_prefix, tmp_path):
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
    n_shifted_alerts = run_demo(cfg, events_per_window=300, seed=0, console=console)
    text = console.export_text()

    assert n_shifted_alerts >= 1, text
    with Store(tmp_path / "m.duckdb") as store:
        counts = store.counts()
        assert counts["events"] == 900 and counts["labels"] == 900, counts
        assert store.execute("SELECT count(DISTINCT event_id) FROM events")[0][0] == 900
        subjects = [a["subject"] for a in store.alerts()]
    assert subjects and all(s.endswith("/shifted") for s in subjects), subjects
    assert "started the embedded Tansu broker" not in text  # the configured broker answered
    assert list((tmp_path / "reports").glob("report-shifted.html"))
