import socket
import threading
import time

import pytest
from kafka import KafkaConsumer, TopicPartition

from collectors.transport.emitter import KafkaEmitter
from collectors.wire.codec import decode
from monitor.ingest.admin import ensure_topics
from monitor.service.broker import EmbeddedBroker


def _closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _consume_all(servers: list[str], topic: str, expected: int, timeout_s: float = 20.0):
    consumer = KafkaConsumer(bootstrap_servers=servers, group_id=None, enable_auto_commit=False)
    try:
        tps = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic))]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        records, deadline = [], time.monotonic() + timeout_s
        while len(records) < expected and time.monotonic() < deadline:
            for recs in consumer.poll(timeout_ms=200).values():
                records.extend(recs)
        records.extend(r for recs in consumer.poll(timeout_ms=300).values() for r in recs)
        return records
    finally:
        consumer.close()


def test_constructor_validates():
    with pytest.raises(ValueError, match="topic must be a non-empty string"):
        KafkaEmitter("")
    with pytest.raises(ValueError, match="queue_size must be >= 1"):
        KafkaEmitter("t", queue_size=0)


@pytest.mark.parametrize("version", [0, 1, 5, "4", 4.5, None])
def test_unknown_wire_version_refused(version):
    with pytest.raises(ValueError, match=r"wire_version must be one of \(2, 3, 4\)"):
        KafkaEmitter("t", wire_version=version)


def test_no_broker_emit_never_blocks_and_counts_drops(make_event):
    emitter = KafkaEmitter(
        "t",
        queue_size=5,
        bootstrap_servers=[f"127.0.0.1:{_closed_port()}"],
        backoff_s=(0.05, 0.2),
        bootstrap_timeout_ms=200,
    )
    t0 = time.perf_counter()
    results = [emitter.emit(make_event(i)) for i in range(20)]
    elapsed = time.perf_counter() - t0
    assert elapsed < 0.5, f"emit blocked: {elapsed:.3f} s for 20 events"
    assert results == [True] * 5 + [False] * 15
    assert (emitter.sent, emitter.dropped, emitter.failed, emitter.pending) == (0, 15, 0, 5)
    assert not emitter.flush(timeout_s=0.2)  # nothing can be acked
    t0 = time.perf_counter()
    emitter.close(timeout_s=0.5)
    assert time.perf_counter() - t0 < 4.0
    # every emit is accounted for exactly once; the 5 queued ones are dropped at close
    assert (emitter.sent, emitter.dropped, emitter.failed, emitter.pending) == (0, 20, 0, 0)
    assert emitter.last_error and "cannot create producer" in emitter.last_error
    assert emitter.emit(make_event(99)) is False and emitter.dropped == 21  # closed


def test_unserialisable_event_fails_without_raising(make_event):
    emitter = KafkaEmitter(
        "t", bootstrap_servers=[f"127.0.0.1:{_closed_port()}"], bootstrap_timeout_ms=100
    )
    try:
        assert emitter.emit(make_event(1, confidence=float("nan"))) is False
        assert emitter.emit(object()) is False  # not even an event
        assert emitter.failed == 2 and emitter.pending == 0
    finally:
        emitter.close(timeout_s=0.1)


def test_close_flushes_everything_to_the_broker(broker, topic_prefix, make_event, make_label):
    topic, labels = f"{topic_prefix}-events", f"{topic_prefix}-labels"
    ensure_topics({"bootstrap_servers": broker.bootstrap_servers}, [topic, labels], partitions=2)
    emitter = KafkaEmitter(topic, bootstrap_servers=broker.bootstrap_servers)
    events = [make_event(i) for i in range(500)]

    def worker(chunk):
        for e in chunk:
            assert emitter.emit(e)

    threads = [threading.Thread(target=worker, args=(events[k::4],)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert emitter.emit(make_label(7), topic=labels)
    emitter.close(timeout_s=20)
    assert (emitter.sent, emitter.dropped, emitter.failed, emitter.pending) == (501, 0, 0, 0)

    records = _consume_all(broker.bootstrap_servers, topic, expected=500)
    assert len(records) == 500
    assert {r.key.decode() for r in records} == {e.event_id for e in events}
    by_id = {e.event_id: e for e in events}
    assert all(decode(r.value) == by_id[r.key.decode()] for r in records)
    assert [decode(r.value) for r in _consume_all(broker.bootstrap_servers, labels, 1)] == [
        make_label(7)
    ]


@pytest.mark.parametrize(("version", "is_json"), [(4, False), (3, True), (2, True)])
def test_wire_version_sets_the_encoding(broker, topic_prefix, make_event, version, is_json):
    """Version 4 is MessagePack (a map's first byte); 2 and 3 are JSON for older monitors."""
    topic = f"{topic_prefix}-events"
    ensure_topics({"bootstrap_servers": broker.bootstrap_servers}, [topic], partitions=1)
    emitter = KafkaEmitter(topic, bootstrap_servers=broker.bootstrap_servers, wire_version=version)
    events = [make_event(i) for i in range(5)]
    assert all(emitter.emit(e) for e in events)
    emitter.close(timeout_s=20)
    records = _consume_all(broker.bootstrap_servers, topic, expected=5)
    assert [r.value.startswith(b"{") for r in records] == [is_json] * 5
    assert [decode(r.value) for r in records] == events


def test_events_wait_in_queue_until_broker_starts(tmp_path, topic_prefix, make_event):
    port = _closed_port()
    servers = [f"127.0.0.1:{port}"]
    emitter = KafkaEmitter(
        f"{topic_prefix}-late",
        queue_size=100,
        bootstrap_servers=servers,
        backoff_s=(0.05, 0.2),
        bootstrap_timeout_ms=300,
    )
    try:
        assert all(emitter.emit(make_event(i)) for i in range(50))
        time.sleep(0.5)  # a few failed connection attempts
        assert not emitter.connected and emitter.sent == 0 and emitter.pending == 50
        with EmbeddedBroker(port=port, log_path=tmp_path / "late.log"):
            assert emitter.flush(timeout_s=15)
            assert (emitter.sent, emitter.dropped, emitter.failed) == (50, 0, 0)
            assert len(_consume_all(servers, f"{topic_prefix}-late", expected=50)) == 50
    finally:
        emitter.close(timeout_s=1)


def test_retrying_without_broker_leaks_no_threads(make_event):
    def io_threads():
        return sum(t.name.startswith("kafka-io") for t in threading.enumerate())

    before = io_threads()
    emitter = KafkaEmitter(
        "t",
        bootstrap_servers=[f"127.0.0.1:{_closed_port()}"],
        backoff_s=(0.01, 0.01),
        bootstrap_timeout_ms=50,
    )
    emitter.emit(make_event(1))
    time.sleep(1.0)  # a dozen or more failed producer constructions
    assert "cannot create producer" in (emitter.last_error or "")
    assert io_threads() <= before + 1  # at most the attempt in progress
    emitter.close(timeout_s=0.5)
    time.sleep(0.2)
    assert io_threads() == before
