import json
import threading

import duckdb
import numpy as np
import pytest
from kafka import KafkaProducer

from collectors.transport.emitter import KafkaEmitter
from collectors.wire.codec import encode
from monitor.config.settings import KafkaConfig, TopicsConfig
from monitor.ingest.admin import ensure_topics
from monitor.ingest.consumer import Ingester, IngestStats
from monitor.store.database import Store

# clock=None: the fixture events are stamped in 2023 and sent now; the bounds on an event's
# ts against its record's time are tested in test_clock.py.

N = 2000


def _kafka(broker, prefix: str) -> KafkaConfig:
    topics = TopicsConfig(
        events=f"{prefix}-events",
        labels=f"{prefix}-labels",
        alerts=f"{prefix}-alerts",
        control=f"{prefix}-control",
    )
    return KafkaConfig(bootstrap_servers=broker.bootstrap_servers, topics=topics)


def _emit(kafka: KafkaConfig, events, labels) -> None:
    emitter = KafkaEmitter(kafka.topics.events, **kafka.client_kwargs())
    assert all(emitter.emit(e) for e in events)
    assert all(emitter.emit(lb, topic=kafka.topics.labels) for lb in labels)
    emitter.close(timeout_s=30)
    assert (emitter.sent, emitter.dropped, emitter.failed) == (len(events) + len(labels), 0, 0)


def test_events_and_labels_reach_duckdb_once(
    broker, topic_prefix, tmp_path, make_event, make_label
):
    kafka = _kafka(broker, topic_prefix)
    ensure_topics(kafka.client_kwargs(), [kafka.topics.events], partitions=3)
    ensure_topics(kafka.client_kwargs(), [kafka.topics.labels], partitions=1)
    events = [make_event(i) for i in range(N)]
    labels = [make_label(i) for i in range(0, N, 4)]
    _emit(kafka, events, labels)

    path = tmp_path / "m.duckdb"
    with Store(path) as store, Ingester(kafka, store, clock=None, batch_size=300) as ingester:
        stats = ingester.run_until_idle(idle_s=0.5, max_s=60)
        assert (
            stats.n_messages,
            stats.n_events,
            stats.n_labels,
            stats.n_dead,
            stats.n_duplicates,
        ) == (N + N // 4, N, N // 4, 0, 0)
        assert ingester.totals.n_events == N
        assert store.counts() == {"events": N, "labels": N // 4, "dead_letters": 0, "alerts": 0}
        np.testing.assert_array_equal(store.confidences(), [e.confidence for e in events])
        conf, correct = store.labelled()
        np.testing.assert_array_equal(correct, [lb.correct for lb in labels])
        offsets = store.stored_offsets()
        assert {tp for tp in offsets} == {(kafka.topics.events, p) for p in range(3)} | {
            (kafka.topics.labels, 0)
        }
        assert sum(o for (t, _), o in offsets.items() if t == kafka.topics.events) == N

    # a second ingester on the same file resumes from the stored offsets: nothing is added
    more = [make_event(i) for i in range(N, N + 50)]
    _emit(kafka, more, [])
    with Store(path) as store, Ingester(kafka, store, clock=None) as ingester:
        stats = ingester.run_until_idle(idle_s=0.5, max_s=30)
        assert (stats.n_messages, stats.n_events, stats.n_duplicates) == (50, 50, 0)
        assert store.counts()["events"] == N + 50
        # replaying everything from the beginning doubles nothing
        store.clear_offsets()
    with Store(path) as store, Ingester(kafka, store, clock=None) as ingester:
        stats = ingester.run_until_idle(idle_s=0.5, max_s=60)
        assert (stats.n_messages, stats.n_events, stats.n_labels, stats.n_duplicates) == (
            N + 50 + N // 4,
            0,
            0,
            N + 50 + N // 4,
        )
        assert store.counts()["events"] == N + 50


def test_malformed_messages_become_dead_letters(broker, topic_prefix, tmp_store, make_event):
    kafka = _kafka(broker, topic_prefix)
    good = encode(make_event(1))
    body = json.loads(encode(make_event(1), 3))
    bad = {
        "bad json": b"{not json",
        "not utf-8": b"\xff\xfe\x00",
        "wrong type": json.dumps({**body, "event_id": "x2", "confidence": "high"}).encode(),
        "schema version": json.dumps({**body, "event_id": "x3", "schema_version": 99}).encode(),
        "unknown kind": json.dumps({**body, "kind": "metric"}).encode(),
        "empty": None,
    }
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap_servers)
    where = {}
    try:
        sent = [("good", good)] + list(bad.items()) + [("good2", encode(make_event(2)))]
        for name, value in sent:
            md = producer.send(kafka.topics.events, key=b"k", value=value).get(timeout=10)
            where[name] = (md.topic, md.partition, md.offset)
    finally:
        producer.close()

    with Ingester(kafka, tmp_store, clock=None) as ingester:
        stats = ingester.run_until_idle(idle_s=0.5, max_s=30)
    assert (stats.n_messages, stats.n_events, stats.n_dead) == (8, 2, 6)
    assert sorted(tmp_store.execute("SELECT event_id FROM events")) == [
        ("ev-000001",),
        ("ev-000002",),
    ]
    rows = tmp_store.execute('SELECT topic, "partition", "offset", raw, error FROM dead_letters')
    got = {(t, p, o): (raw, err) for t, p, o, raw, err in rows}
    expected_errors = {
        "bad json": "not UTF-8 JSON",
        "not utf-8": "not UTF-8 JSON",
        "wrong type": "field 'confidence': expected `float`, got `str`",
        "schema version": "unsupported schema_version 99",
        "unknown kind": "unknown kind 'metric'",
        "empty": "empty message",
    }
    for name, value in bad.items():
        raw, err = got[where[name]]
        assert raw == (value or b""), name
        assert expected_errors[name] in err, (name, err)
    next_offset = where["good2"][2] + 1
    assert tmp_store.stored_offsets() == {(kafka.topics.events, 0): next_offset}


def test_failed_write_rewinds_so_nothing_is_skipped(broker, topic_prefix, tmp_store, make_event):
    kafka = _kafka(broker, topic_prefix)
    _emit(kafka, [make_event(i) for i in range(30)], [])
    store = tmp_store
    store.execute("ALTER TABLE events RENAME TO events_kept")
    store.execute("CREATE TABLE events AS SELECT 1 AS x")  # every event write now fails
    ingester = Ingester(kafka, store, clock=None, batch_size=10)
    with pytest.raises(duckdb.Error):
        for _ in range(50):  # poll until a batch arrives and its write fails
            ingester.poll_once(timeout_s=0.2)
    assert store.stored_offsets() == {}
    store.execute("DROP TABLE events")
    store.execute("ALTER TABLE events_kept RENAME TO events")
    stats = ingester.run_until_idle(idle_s=0.5, max_s=30)
    assert (stats.n_messages, stats.n_events) == (30, 30)  # the failed batch is read again
    assert store.counts()["events"] == 30
    ingester.close()


def test_failed_pipelined_write_rewinds_every_unwritten_batch(
    broker, topic_prefix, tmp_store, make_event
):
    kafka = _kafka(broker, topic_prefix)
    ensure_topics(kafka.client_kwargs(), [kafka.topics.events], partitions=2)
    _emit(kafka, [make_event(i) for i in range(400)], [])
    store = tmp_store
    store.execute("ALTER TABLE events RENAME TO events_kept")
    store.execute("CREATE TABLE events AS SELECT 1 AS x")
    with Ingester(kafka, store, clock=None, batch_size=50) as ingester:
        assert ingester.pipelined
        with pytest.raises(duckdb.Error):  # batch k fails while batch k + 1 was decoded
            ingester.run_until_idle(idle_s=2.0, max_s=30)
        assert store.stored_offsets() == {}
        store.execute("DROP TABLE events")
        store.execute("ALTER TABLE events_kept RENAME TO events")
        stats = ingester.run_until_idle(idle_s=0.5, max_s=30)
    assert (stats.n_messages, stats.n_events) == (400, 400)
    assert store.counts()["events"] == 400


def test_run_stops_on_event_and_survives_no_broker(tmp_store, topic_prefix):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    kafka = KafkaConfig(
        bootstrap_servers=[f"127.0.0.1:{port}"],
        topics=TopicsConfig(events=f"{topic_prefix}-e", labels=f"{topic_prefix}-l"),
    )
    ingester = Ingester(kafka, tmp_store, clock=None, connect_timeout_s=0.2)
    stop = threading.Event()
    result: list[IngestStats] = []
    thread = threading.Thread(
        target=lambda: result.append(ingester.run(stop, backoff_s=(0.1, 0.1)))
    )
    thread.start()
    thread.join(0.5)
    assert thread.is_alive()  # still retrying, nothing raised
    stop.set()
    thread.join(3)
    assert not thread.is_alive() and result[0].n_messages == 0
    ingester.close()


@pytest.mark.parametrize("batch_size", [0, -3])
def test_batch_size_validated(tmp_store, batch_size):
    with pytest.raises(ValueError, match="batch_size must be >= 1"):
        Ingester(KafkaConfig(), tmp_store, clock=None, batch_size=batch_size)


@pytest.mark.parametrize("linger_s", [-0.1, float("nan")])
def test_linger_validated(tmp_store, linger_s):
    with pytest.raises(ValueError, match="linger_s must be >= 0 seconds"):
        Ingester(KafkaConfig(), tmp_store, clock=None, linger_s=linger_s)


def _trickle(kafka: KafkaConfig, groups, gap_s: float) -> threading.Thread:
    """Send each group of events, flushed, ``gap_s`` seconds after the previous one."""

    def send() -> None:
        producer = KafkaProducer(**kafka.client_kwargs())
        for group in groups:
            for event in group:
                producer.send(kafka.topics.events, encode(event))
            producer.flush(10)
            threading.Event().wait(gap_s)
        producer.close(10)

    thread = threading.Thread(target=send)
    thread.start()
    return thread


@pytest.mark.parametrize("linger_s", [0.0, 3.0])
def test_linger_gathers_polls_into_one_transaction(
    broker, topic_prefix, tmp_store, make_event, linger_s
):
    """Records arriving within ``linger_s`` of the first share one transaction."""
    kafka = _kafka(broker, topic_prefix)
    groups = [[make_event(10 * g + i) for i in range(10)] for g in range(5)]
    with Ingester(kafka, tmp_store, clock=None, linger_s=linger_s) as ingester:
        ingester.poll_once(timeout_s=5)  # topics created and assigned before the first send
        thread = _trickle(kafka, groups, gap_s=0.2)
        first = ingester.poll_once(timeout_s=10)
        thread.join(30)
        if linger_s:  # every group arrived within the linger: one transaction
            assert (first.n_messages, first.n_events) == (50, 50)
        else:  # the first poll's records only, the rest in later transactions
            assert 0 < first.n_messages < 50
            rest = ingester.run_until_idle(idle_s=1.0, max_s=30)
            assert first.n_events + rest.n_events == 50
    assert tmp_store.counts()["events"] == 50
