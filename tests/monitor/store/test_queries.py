"""Window queries over a real DuckDB store: subjects, scores, labels, states, daily bins."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from collectors.wire.events import LabelEvent, ScoredEvent
from monitor.store import alert_queries, bins, queries, timeline
from monitor.store.queries import Subject

DAY = 86400.0
YEARS = 3 * 365 * 86_400.0
T0 = 1_700_006_400.0  # 2023-11-15 00:00 UTC


def _event(i, ts, conf, tag="a", probe="v1", model="m", state=None):
    return ScoredEvent(
        event_id=f"q{i}",
        ts=ts,
        model_id=model,
        probe_version=probe,
        layer=3,
        pooling="last_prompt_token",
        raw_logit=float(np.log(conf / (1 - conf))),
        confidence=conf,
        decision="serve",
        tag=tag,
        state=state,
    )


@pytest.fixture
def store(tmp_store):
    rng = np.random.default_rng(0)
    events, labels = [], []
    for i in range(60):
        tag = "a" if i % 3 else "b"
        state = rng.normal(size=4).round(2).tolist() if i < 40 else None
        events.append(_event(i, T0 + i * 3600.0, 0.05 + 0.015 * i, tag=tag, state=state))
        if i % 2 == 0:
            labels.append(LabelEvent(f"q{i}", correct=i % 4 == 0, ts=T0 + i * 3600 + 5))
    events.append(_event(999, T0, 0.5, probe="v2"))
    tmp_store.write_batch(events, labels)
    return tmp_store


def test_subjects_add_per_tag_subjects_only_when_there_are_several_tags(store):
    names = [s.name for s in queries.subjects(store)]
    assert names == ["m/v1/*", "m/v1/a", "m/v1/b", "m/v2/*"]
    assert [s.name for s in queries.subjects(store, T0 + DAY, T0 + 2 * DAY)] == [
        "m/v1/*",
        "m/v1/a",
        "m/v1/b",
    ]


def test_scores_and_labels_by_subject_and_window(store):
    allv1 = Subject("m", "v1")
    conf = queries.scores(store, allv1, None, None, "confidence")
    np.testing.assert_allclose(conf, 0.05 + 0.015 * np.arange(60))
    logit = queries.scores(store, allv1, T0, T0 + 10 * 3600, "raw_logit")
    np.testing.assert_allclose(logit, np.log(conf[:10] / (1 - conf[:10])))
    tag_b = queries.scores(store, Subject("m", "v1", "b"), None, None, "confidence")
    np.testing.assert_allclose(tag_b, conf[::3])
    c, y = queries.labelled(store, allv1, T0, T0 + 8 * 3600)
    np.testing.assert_allclose(c, conf[0:8:2])
    assert y.tolist() == [True, False, True, False]
    assert queries.first_ts(store, Subject("m", "v1", "a")) == T0 + 3600
    with pytest.raises(ValueError, match="column"):
        queries.scores(store, allv1, None, None, "answer; DROP TABLE events")
    with pytest.raises(ValueError, match="after end"):
        queries.scores(store, allv1, 10.0, 5.0, "confidence")


@pytest.mark.parametrize("strays", [[-YEARS], [-YEARS, -YEARS + 1.0, -40 * 86_400.0]])
def test_stray_early_events_do_not_move_the_reference_start(tmp_store, make_event, strays):
    """Where the traffic begins, not the oldest stamp; the oldest when no window is dense."""
    t0 = 1_800_000_000.0
    events = [dataclasses.replace(make_event(i), ts=t0 + 10.0 * i) for i in range(50)]
    events += [dataclasses.replace(make_event(100 + j), ts=t0 + d) for j, d in enumerate(strays)]
    tmp_store.write_batch(events)
    subject = Subject("m", "p1")
    assert queries.reference_start(tmp_store, subject, 3600.0, 20) == t0
    assert queries.reference_start(tmp_store, subject, 3600.0, 500) == t0 + min(strays)
    assert queries.reference_start(tmp_store, Subject("nobody", "p1"), 3600.0, 20) is None


def test_states_are_decoded_and_sampled_stably(store):
    s = queries.states(store, Subject("m", "v1"), None, None)
    assert s.shape == (40, 4) and s.dtype == np.float32
    first = queries.states(store, Subject("m", "v1"), None, None, limit=10)
    assert first.shape == (10, 4)
    np.testing.assert_array_equal(first, queries.states(store, Subject("m", "v1"), None, None, 10))
    assert queries.states(store, Subject("m", "v2"), None, None).shape == (0, 0)


def test_states_of_several_widths_raise(store):
    store.write_batch([_event(500, T0 + 5.0, 0.5, state=[1.0, 2.0])])
    with pytest.raises(ValueError, match=r"several widths \[2, 4\]"):
        queries.states(store, Subject("m", "v1"), None, None)


@pytest.mark.parametrize("width", [DAY, 6 * 3600.0])
def test_bucket_histograms_equal_numpy_bins_per_bucket(store, width):
    edges = np.linspace(0.0, 1.0, 11)
    hist = bins.bucket_histograms(
        store, Subject("m", "v1"), T0, T0 + 3 * DAY, "confidence", edges, width
    )
    conf = 0.05 + 0.015 * np.arange(60)  # some on the edges: 0.2, 0.35, 0.5, ...
    ts = T0 + np.arange(60) * 3600.0
    assert list(hist) == [T0 + i * width for i in range(math.ceil(60 * 3600.0 / width))]
    for start, (counts, clipped) in hist.items():
        expected, _ = np.histogram(conf[(ts >= start) & (ts < start + width)], bins=edges)
        np.testing.assert_array_equal(counts, expected)
        assert clipped == 0
    with pytest.raises(ValueError, match="width must be > 0"):
        bins.bucket_histograms(store, Subject("m", "v1"), T0, T0 + DAY, "confidence", edges, 0.0)


def test_daily_stats(store):
    conf = 0.05 + 0.015 * np.arange(60)
    stats = timeline.daily_stats(store, Subject("m", "v1"), T0, T0 + DAY)
    assert stats[0]["n_events"] == 24 and stats[0]["n_labelled"] == 12
    assert stats[0]["mean_confidence"] == pytest.approx(conf[:24].mean())
    assert stats[0]["labelled_accuracy"] == pytest.approx(0.5)


def test_alert_queries(store):
    store.record_alert("score_drift", "psi", "m/v1/*/confidence", "warning", "x", 0.3, 0.2, 100.0)
    store.record_alert(
        "calibration_drift",
        "calibration_error",
        "m/v2/*/confidence",
        "critical",
        "y",
        0.3,
        0.1,
        200.0,
    )
    assert [a["detector"] for a in alert_queries.list_alerts(store)] == ["calibration_error", "psi"]
    kinds = [a["kind"] for a in alert_queries.list_alerts(store, kind="score_drift")]
    assert kinds == ["score_drift"]
    assert len(alert_queries.list_alerts(store, since=150.0)) == 1
    assert len(alert_queries.list_alerts(store, subject="m/v1/")) == 1
    assert alert_queries.last_alert(store, "psi", "m/v1/*/confidence")["ts"] == 100.0
    assert alert_queries.alert_counts(store) == {
        ("score_drift", "warning"): 1,
        ("calibration_drift", "critical"): 1,
    }
    assert queries.newest_event_ts(store) == T0 + 59 * 3600.0
