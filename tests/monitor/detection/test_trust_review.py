"""The label-free estimate says when it cannot be trusted; the review queue puts the most
novel unlabelled events first."""

from __future__ import annotations

import json

import numpy as np
from test_reference import T0, _cfg, _week
from typer.testing import CliRunner

from collectors.wire.events import LabelEvent, ScoredEvent
from monitor.cli.app import app
from monitor.detection.reference import state_reference
from monitor.detection.review import review_queue
from monitor.detection.run import run_detection
from monitor.store.database import Store
from monitor.store.queries import Subject

DAY = 86400.0


def _estimate(run, subject):
    return next(s.result for s in run.results
                if s.name == f"{subject}/confidence" and s.result.detector ==
                "estimated_accuracy_drop")  # fmt: skip


def _store(tmp_path, shift):
    rng = np.random.default_rng(5)
    store = Store(tmp_path / "m.duckdb")
    store.write_batch(_week(rng, T0, "v1", 0.0, prefix="a"))
    now_week = _week(rng, T0 + 7 * DAY, "v1", shift, prefix="b")
    odd = [
        ScoredEvent(
            f"odd{i}",
            T0 + 8 * DAY + i,
            "m",
            "v1",
            3,
            "last_prompt_token",
            0.0,
            0.5,
            "serve",
            state=(np.full(8, 6.0) * (1 if i % 2 else -1)).tolist(),
        )
        for i in range(3)
    ]  # fmt: skip  (far from anything in the reference)
    labels = [LabelEvent(e.event_id, True, e.ts + 1, "t") for e in now_week[:100]]
    store.write_batch(now_week + odd, labels)
    return store


def test_an_estimate_over_moved_inputs_is_unreliable(tmp_path):
    with _store(tmp_path, 0.8) as store:
        run = run_detection(_cfg(tmp_path), store, now=T0 + 14 * DAY)
        r = _estimate(run, "m/v1/*")
    assert run.errors == []
    assert r.details["reliable"] is False and r.details["estimated_interval"] is None
    assert "mmd" in r.details["unreliable_because"]
    assert r.details["labels_for_3_points"] == 237  # 303 events: 1067.1 / (1 + 1066.1 / 303)
    ece = next(s.result for s in run.results if s.result.detector == "calibration_error")
    assert ece.statistic is not None  # judged on the window's labels; the reference has none
    stored = json.loads(json.dumps(r.as_dict()))
    assert stored["details"]["reliable"] is False


def test_an_estimate_over_unmoved_inputs_stays(tmp_path):
    with _store(tmp_path, 0.0) as store:
        r = _estimate(run_detection(_cfg(tmp_path), store, now=T0 + 14 * DAY), "m/v1/*")
    assert r.details["reliable"] is True and r.details["unreliable_because"] is None
    assert r.details["estimated_interval"] is not None


def test_the_review_queue_ranks_the_outliers_first_and_skips_labelled(tmp_path):
    cfg = _cfg(tmp_path)
    with _store(tmp_path, 0.0) as store:
        subject = Subject("m", "v1")
        ref = state_reference(cfg, store, subject)
        queue = review_queue(store, subject, ref, (T0 + 7 * DAY, T0 + 14 * DAY), limit=5)
    assert [q["event_id"] for q in queue[:3]] == sorted(
        ["odd0", "odd1", "odd2"], key=lambda e: -next(q["novelty"] for q in queue
                                                       if q["event_id"] == e))  # fmt: skip
    assert queue[2]["novelty"] > 5 * queue[3]["novelty"]
    assert len(queue) == 5 and not any(q["event_id"] in {f"b{i}" for i in range(100)}
                                       for q in queue)  # fmt: skip


def test_cli_review(tmp_path):
    cfg_path = tmp_path / "c.yaml"
    cfg_path.write_text(
        f"reliability_monitor:\n  model: {{id: m}}\n  store: {{path: '{tmp_path / 'm.duckdb'}'}}\n"
        "  monitoring: {detection_window: '100000d'}\n", encoding="utf-8",
    )  # fmt: skip
    _store(tmp_path, 0.0).close()
    out = CliRunner().invoke(app, ["review", "-c", str(cfg_path), "--limit", "3", "--json"])
    assert out.exit_code == 0, out.output
    plan = json.loads(out.output)
    assert plan["n_events"] == 603 and plan["n_labelled"] == 100
    assert {q["event_id"] for q in plan["queue"]} == {"odd0", "odd1", "odd2"}
    text = CliRunner().invoke(app, ["review", "-c", str(cfg_path), "--limit", "3"])
    assert text.exit_code == 0 and "label" in text.output and "odd" in text.output
