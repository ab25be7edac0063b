import dataclasses
import json
import math

import duckdb
import numpy as np
import pytest

from collectors.wire.events import LabelEvent
from monitor.store.database import SCHEMA_VERSION, DeadLetter, Store, StoreError


def _tables(store):
    return {r[0] for r in store.execute("SELECT table_name FROM information_schema.tables")}


def test_schema_created_in_new_parent_dir(tmp_path):
    path = tmp_path / "a" / "b" / "m.duckdb"
    with Store(path) as store:
        assert path.exists()
        assert {
            "events",
            "labels",
            "dead_letters",
            "offsets",
            "detector_runs",
            "alerts",
            "schema_version",
            "labelled_events",
        } <= _tables(store)
        assert store.execute("SELECT max(version) FROM schema_version")[0][0] == SCHEMA_VERSION
        assert store.counts() == {"events": 0, "labels": 0, "dead_letters": 0, "alerts": 0}


def test_write_batch_round_trip(tmp_store, make_event, make_label):
    state = [0.5, -1.25, 3.0]
    events = [make_event(i, state=state if i == 0 else None) for i in range(5)]
    labels = [make_label(i) for i in range(3)]
    dead = [DeadLetter(b"\x00bad", "not UTF-8 JSON", "ev", 0, 7, 123.0)]
    inserted = tmp_store.write_batch(events, labels, dead, {("ev", 0): 8, ("lb", 1): 3})
    assert inserted == {"events": 5, "labels": 3, "dead_letters": 1}
    row = tmp_store.execute("SELECT * FROM events WHERE event_id = 'ev-000000'")[0]
    e = events[0]
    assert row == (
        e.event_id,
        e.ts,
        e.model_id,
        e.probe_version,
        e.layer,
        e.pooling,
        e.raw_logit,
        e.confidence,
        e.decision,
        e.answer,
        e.tag,
        e.schema_version,
        None,  # route, consistency, consistency_k: no gray-zone resolution
        None,
        None,
    )
    # the state is a fp16 BLOB in its own table (these values are exact in fp16)
    assert tmp_store.execute("SELECT event_id, ts, dim, state FROM states") == [
        (e.event_id, e.ts, 3, np.array(state, "<f2").tobytes())
    ]
    ids, states, correct = tmp_store.states()
    assert list(ids) == ["ev-000000"] and states.dtype == np.float32
    np.testing.assert_array_equal(states, [state])
    assert correct.tolist() == [float(labels[0].correct)]
    assert tmp_store.execute('SELECT raw, error, topic, partition, "offset" FROM dead_letters') == [
        (b"\x00bad", "not UTF-8 JSON", "ev", 0, 7)
    ]
    assert tmp_store.stored_offsets() == {("ev", 0): 8, ("lb", 1): 3}
    labelled = tmp_store.execute(
        "SELECT event_id, correct, confidence FROM labelled_events ORDER BY event_id"
    )
    assert labelled == [(f"ev-{i:06d}", labels[i].correct, events[i].confidence) for i in range(3)]


def test_states_are_fp16_and_select_by_model_and_label(tmp_store, make_event, make_label):
    rng = np.random.default_rng(0)
    wide = rng.normal(size=(4, 512)).astype(np.float32) * 10
    events = [make_event(i, state=wide[i].tolist(), model_id="a") for i in range(4)]
    events += [make_event(10 + i, state=[1.0, 2.0], model_id="b") for i in range(2)]
    tmp_store.write_batch(events + [make_event(4, state=wide[0].tolist())], [make_label(1)])
    ids, states, correct = tmp_store.states(model_id="a")
    assert states.shape == (4, 512) and list(ids) == [f"ev-{i:06d}" for i in range(4)]
    np.testing.assert_allclose(states, wide, rtol=4.9e-4)  # fp16: 11 significant bits
    assert np.isnan(correct[[0, 2, 3]]).all() and correct[1] == float(make_label(1).correct)
    ids, states, _ = tmp_store.states(model_id="a", labelled_only=True)
    assert list(ids) == ["ev-000001"]
    with pytest.raises(ValueError, match=r"several dimensions \[2, 512\]; pass model_id"):
        tmp_store.states()
    assert tmp_store.states(start=0, end=1)[1].shape == (0, 0)
    # a state whose event is a duplicate is not stored again
    tmp_store.write_batch([make_event(0, state=[9.0, 9.0])])
    assert tmp_store.execute("SELECT count(*) FROM states")[0][0] == 7


def test_write_batch_is_idempotent_on_event_id(tmp_store, make_event, make_label):
    first = make_event(1, confidence=0.9)
    again = make_event(1, confidence=0.1)  # same id, different payload: the first one wins
    assert tmp_store.write_batch([first, again, make_event(2)], [make_label(1)])["events"] == 2
    inserted = tmp_store.write_batch(
        [make_event(1), make_event(2), make_event(3)],
        [make_label(1), make_label(3)],
        [],
        {("t", 0): 10},
    )
    assert inserted == {"events": 1, "labels": 1, "dead_letters": 0}
    assert tmp_store.counts()["events"] == 3
    assert tmp_store.execute("SELECT confidence FROM events WHERE event_id = 'ev-000001'") == [
        (0.9,)
    ]
    tmp_store.write_batch(offsets={("t", 0): 4})  # offsets are upserted, not kept at the max
    assert tmp_store.stored_offsets() == {("t", 0): 4}


@pytest.mark.parametrize("shift", [1e-6, 1.0, 86_400.0, -3.0e7, 9.0e8])
def test_a_copy_with_another_timestamp_is_not_stored_again(tmp_path, make_event, shift):
    """First occurrence wins whatever ``ts`` the copy carries, before and after a reopen."""
    original = make_event(1)
    copy = dataclasses.replace(make_event(1, confidence=0.01), ts=original.ts + shift)
    with Store(tmp_path / "m.duckdb") as store:
        store.write_batch([original, make_event(2)])
        assert store.write_batch([copy, make_event(3)])["events"] == 1
    with Store(tmp_path / "m.duckdb") as store:  # the index is rebuilt from the file
        assert store.write_batch([copy])["events"] == 0
        rows = store.execute("SELECT ts, confidence FROM events WHERE event_id = 'ev-000001'")
        assert rows == [(original.ts, original.confidence)]
        assert store.counts()["events"] == 3


def test_an_id_hash_already_indexed_never_drops_a_new_event(tmp_store, make_event):
    """A hash in the index is only a candidate: a colliding new id is still stored."""
    from monitor.store.id_index import IdIndex

    tmp_store.write_batch([make_event(1)])
    fresh = make_event(2)
    (h,) = tmp_store.execute(f"SELECT hash('{fresh.event_id}')")[0]
    tmp_store._ids.add(np.array([h], dtype=np.uint64))  # as if another id had this hash
    assert tmp_store.write_batch([fresh])["events"] == 1
    assert tmp_store.write_batch([fresh])["events"] == 0
    assert isinstance(tmp_store._ids, IdIndex)


def test_write_batch_is_one_transaction(tmp_store, make_event):
    bad_label = LabelEvent(event_id="ev-000001", correct=True, ts=1.0, source=None)  # NOT NULL
    with pytest.raises(duckdb.ConstraintException):
        tmp_store.write_batch([make_event(1)], [bad_label], [], {("t", 0): 2})
    assert tmp_store.counts()["events"] == 0
    assert tmp_store.stored_offsets() == {}
    assert tmp_store.write_batch([make_event(1)])["events"] == 1  # the connection still works


def test_write_batch_rejects_wrong_row_types(tmp_store, make_event, make_label):
    with pytest.raises(TypeError, match="events must hold ScoredEvent, got LabelEvent"):
        tmp_store.write_batch([make_label(1)], [], [], {("t", 0): 1})
    assert tmp_store.stored_offsets() == {}


def test_confidences_window_and_model(tmp_store, make_event):
    events = [make_event(i, ts=float(i), model_id="a" if i % 2 else "b") for i in range(10)]
    tmp_store.write_batch(events[::-1])
    np.testing.assert_array_equal(tmp_store.confidences(), [e.confidence for e in events])
    np.testing.assert_array_equal(
        tmp_store.confidences(start=3, end=7), [e.confidence for e in events[3:7]]
    )
    np.testing.assert_array_equal(
        tmp_store.confidences(start=3, model_id="a"), [e.confidence for e in events[3::2]]
    )
    out = tmp_store.confidences(start=100)
    assert out.shape == (0,) and out.dtype == np.float64
    with pytest.raises(ValueError, match="start 5.0 is after end 2.0"):
        tmp_store.confidences(start=5.0, end=2.0)


def test_labelled_joins_on_event_id_and_windows_on_event_ts(tmp_store, make_event, make_label):
    tmp_store.write_batch(
        [make_event(i, ts=float(i)) for i in range(6)], [make_label(i) for i in (1, 2, 4, 9)]
    )  # 9 has no event yet
    conf, correct = tmp_store.labelled()
    assert correct.dtype == bool and conf.shape == correct.shape == (3,)
    np.testing.assert_array_equal(correct, [make_label(i).correct for i in (1, 2, 4)])
    conf, correct = tmp_store.labelled(start=2, end=4)
    np.testing.assert_array_equal(conf, [make_event(2).confidence])
    tmp_store.write_batch([make_event(9, ts=9.0)])  # the late event completes the join
    assert tmp_store.labelled()[0].shape == (4,)


def test_detector_runs_and_alerts(tmp_store):
    run_id = tmp_store.record_detector_run(
        "kl",
        "confidence",
        statistic=0.21,
        threshold=0.15,
        is_drift=True,
        n_reference=500,
        n_current=400,
        window_start=10.0,
        window_end=20.0,
        details={"p_value": float("nan"), "bins": np.arange(3), "n": np.int64(4)},
        ts=30.0,
    )
    row = tmp_store.execute("SELECT id, detector, is_drift, n_current, details FROM detector_runs")
    assert row[0][:4] == (run_id, "kl", True, 400)
    assert json.loads(row[0][4]) == {"p_value": None, "bins": [0, 1, 2], "n": 4}
    with pytest.raises(TypeError):
        tmp_store.record_detector_run("kl", "c", 0.1, 0.15, False, 1, 1, details={"x": object()})

    a1 = tmp_store.record_alert(
        "drift", "kl", "confidence", "warning", "KL 0.21 > 0.15", 0.21, 0.15, ts=100.0
    )
    a2 = tmp_store.record_alert(
        "calibration", "ece", "model", "critical", "ECE high", math.nan, None, ts=200.0
    )
    assert a2 > a1
    alerts = tmp_store.alerts()
    assert [a["id"] for a in alerts] == [a2, a1]
    assert alerts[0]["statistic"] is None and alerts[1]["message"] == "KL 0.21 > 0.15"
    assert [a["id"] for a in tmp_store.alerts(limit=1)] == [a2]
    assert tmp_store.counts()["alerts"] == 2


def test_reopen_keeps_data_and_refuses_newer_schema(tmp_path, make_event):
    path = tmp_path / "m.duckdb"
    with Store(path) as store:
        store.write_batch([make_event(1)], offsets={("t", 0): 1}, topic_ids={"t": "id-1"})
    with Store(path) as store:
        assert store.counts()["events"] == 1
        assert store.stored_offsets() == {("t", 0): 1}
        assert store.offset_rows() == [("t", 0, 1, "id-1")]
        store.clear_offsets("t")
        assert store.stored_offsets() == {}
        store.execute("INSERT INTO schema_version VALUES (?, 0)", [SCHEMA_VERSION + 1])
    with pytest.raises(StoreError, match=f"schema version {SCHEMA_VERSION + 1}"):
        Store(path)


def test_read_only_open_reads_and_refuses_writes(tmp_path, make_event):
    path = tmp_path / "m.duckdb"
    with Store(path) as store:
        store.write_batch([make_event(1)])
    with Store(path, read_only=True) as store:
        assert store.counts()["events"] == 1
        with pytest.raises(duckdb.Error):
            store.write_batch([make_event(2)])
        with pytest.raises(StoreError, match="read-only"):
            store.archive(days=1)
    with pytest.raises(StoreError, match="cannot open store"):
        Store(tmp_path / "missing.duckdb", read_only=True)


def test_probes_and_dead_letter_counts(tmp_store):
    tmp_store.record_probe("v1", "m", 3, "last_prompt_token", 128, "/p/v1.json", ts=1.0)
    tmp_store.record_probe(
        "v2", "m", 3, "last_prompt_token", 128, "/p/v2.json", "champion", {"auroc": 0.9}, ts=2.0
    )
    tmp_store.record_probe("v1", "m", 3, "last_prompt_token", 128, "/p/v1.json", "retired", ts=1.0)
    assert [(p["version"], p["status"], p["metrics"]) for p in tmp_store.probes()] == [
        ("v2", "champion", {"auroc": 0.9}),
        ("v1", "retired", None),
    ]
    dead = [DeadLetter(b"x", f"not UTF-8 JSON: detail {i}", "t", 0, i, 1.0) for i in range(3)]
    dead.append(DeadLetter(b"y", "unknown kind 'metric'", "t", 0, 9, 1.0))
    tmp_store.write_batch(dead_letters=dead)
    assert tmp_store.dead_letter_counts() == [("not UTF-8 JSON", 3), ("unknown kind 'metric'", 1)]
