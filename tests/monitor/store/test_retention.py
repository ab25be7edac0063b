import dataclasses
import shutil

import numpy as np
import pytest

from monitor.store import retention
from monitor.store.database import Store, StoreError

DAY = 86_400.0
NOW = 1_700_000_000.0 + 0.5 * DAY  # 2023-11-15 10:13 UTC


def _fill(store, make_event, make_label, n=40):
    """n events spread over the 10 days before NOW, every 4th with a state, half labelled."""
    ts = NOW - 10 * DAY + np.arange(n) * (10 * DAY / n)
    rng = np.random.default_rng(0)
    events = [
        make_event(i, ts=float(ts[i]), state=rng.normal(size=8).tolist() if i % 4 == 0 else None)
        for i in range(n)
    ]
    store.write_batch(events, [make_label(i) for i in range(0, n, 2)])
    return events


def _snapshot(store):
    ids, states, correct = store.states()
    return store.confidences(), store.labelled(), ids, states, correct, store.counts()


def _equal(a, b):
    for x, y in zip(a, b):
        if isinstance(x, tuple):
            _equal(x, y)
        elif isinstance(x, dict):
            assert x == y
        else:
            np.testing.assert_array_equal(x, y)


def test_archive_moves_old_rows_to_day_partitions_and_reads_stay_whole(
    tmp_path, make_event, make_label
):
    with Store(tmp_path / "m.duckdb") as store:
        events = _fill(store, make_event, make_label)
        before = _snapshot(store)
        result = store.archive(days=3, now=NOW)
        cutoff = retention.cutoff_for(3, NOW)
        assert cutoff == 1_699_747_200.0  # 2023-11-12 00:00 UTC
        live = store.execute("SELECT min(ts), count(*) FROM events")[0]
        assert live[0] >= cutoff and result.n_events == 40 - live[1] > 0
        assert result.n_states == len(range(0, result.n_events, 4))
        assert result.days[0] == "2023-11-05" and result.days[-1] == "2023-11-11"
        days = sorted(p.name for p in (tmp_path / "archive" / "events").iterdir())
        assert days == [f"day={d}" for d in result.days]
        assert not (tmp_path / "archive" / "_staging").exists()
        _equal(_snapshot(store), before)  # the views read live + archive
        # a window entirely inside the archive
        inside = [e.confidence for e in events if NOW - 10 * DAY <= e.ts < NOW - 9 * DAY]
        assert len(inside) == 4
        np.testing.assert_array_equal(store.confidences(NOW - 10 * DAY, NOW - 9 * DAY), inside)
        assert store.archive(days=3, now=NOW).n_events == 0  # nothing left to move
    with Store(tmp_path / "m.duckdb") as store:  # archive_dir is recorded in the file
        _equal(_snapshot(store), before)


def test_replayed_and_late_events_are_checked_against_the_archive(tmp_path, make_event, make_label):
    with Store(tmp_path / "m.duckdb") as store:
        events = _fill(store, make_event, make_label)
        store.archive(days=3, now=NOW)
        # a replay of archived events (and of live ones) stores nothing, whatever its ts
        assert store.write_batch(events)["events"] == 0
        restamped = [dataclasses.replace(e, ts=NOW) for e in events[:3]]
        assert store.write_batch(restamped)["events"] == 0
        # a late event for an archived day is stored live, then archived into the same day
        late = make_event(1000, ts=events[1].ts + 1.0, state=[1.0, 2.0])
        assert store.write_batch([late], [make_label(1000)])["events"] == 1
        assert store.write_batch([late])["events"] == 0
        store.archive(days=3, now=NOW)
        day_files = retention.archived_files(
            tmp_path / "archive", "events", [retention.day_of(late.ts)]
        )
        assert len(day_files) == 2
        n, distinct = store.execute("SELECT count(*), count(DISTINCT event_id) FROM all_events")[0]
        assert n == distinct == 41
        # a label for an archived event joins it, as does one that arrived first
        assert store.write_batch([], [make_label(3)])["labels"] == 1
        joined = {r[0] for r in store.execute("SELECT event_id FROM labelled_events")}
        assert {"ev-000003", "ev-001000", "ev-000000"} <= joined


def test_crash_between_commit_and_publish_is_finished_on_open(
    tmp_path, make_event, make_label, monkeypatch
):
    path = tmp_path / "m.duckdb"
    with Store(path) as store:
        _fill(store, make_event, make_label)
        before = _snapshot(store)

        def crash(staging, archive_dir):
            raise KeyboardInterrupt("killed after the commit, before the files moved")

        monkeypatch.setattr(retention, "_publish", crash)
        with pytest.raises(KeyboardInterrupt):
            store.archive(days=3, now=NOW)
        monkeypatch.undo()
    staged = list((tmp_path / "archive" / "_staging").iterdir())
    assert len(staged) == 1
    with Store(path) as store:  # recovery publishes the committed run
        assert not (tmp_path / "archive" / "_staging").exists()
        _equal(_snapshot(store), before)


def test_uncommitted_staging_files_are_deleted_on_open(tmp_path, make_event, make_label):
    path = tmp_path / "m.duckdb"
    with Store(path) as store:
        _fill(store, make_event, make_label)
        store.archive(days=3, now=NOW)
        before = _snapshot(store)
    # files of a run that never committed (its rows are still live): copy a real partition
    src = tmp_path / "archive" / "events"
    orphan = tmp_path / "archive" / "_staging" / "run-that-crashed" / "events"
    shutil.copytree(src, orphan)
    with Store(path) as store:
        assert not (tmp_path / "archive" / "_staging").exists()
        _equal(_snapshot(store), before)  # nothing doubled


def test_archive_needs_a_directory_and_valid_days(tmp_path):
    with Store(":memory:") as store, pytest.raises(StoreError, match="no archive directory"):
        store.archive(days=1)
    with Store(tmp_path / "m.duckdb") as store, pytest.raises(ValueError, match="days"):
        store.archive(days=-1)
    assert retention.days_between(0.0, 2 * DAY - 1) == ["1970-01-01", "1970-01-02"]


def test_parquet_archived_before_the_gray_zone_columns_reads_them_as_null(
    tmp_path, make_event, make_label
):
    import pyarrow.parquet as pq

    from monitor.store.schema import EVENT_OPTIONAL

    archive = tmp_path / "archive"
    with Store(tmp_path / "m.duckdb", archive_dir=archive) as store:
        _fill(store, make_event, make_label)
        moved = store.archive(days=3, now=NOW).n_events
    files = sorted((archive / "events").glob("day=*/*.parquet"))
    assert moved > 0 and files
    for f in files:  # as an older release wrote them: no route, consistency, consistency_k
        pq.write_table(pq.read_table(f).drop_columns(list(EVENT_OPTIONAL)), f)
    with Store(tmp_path / "m.duckdb", archive_dir=archive) as store:
        rows = store.execute("SELECT count(*), count(route), count(consistency_k) FROM all_events")
        assert rows == [(40, 0, 0)]
