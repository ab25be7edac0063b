"""Fault tests of exactly-once ingest: SIGKILL mid-batch, broker restart, malformed messages."""

import json
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import msgspec
import numpy as np
import yaml
from kafka import KafkaProducer

from collectors.wire.codec import encode
from monitor.config.settings import KafkaConfig, TopicsConfig
from monitor.ingest.admin import ensure_topics
from monitor.ingest.consumer import Ingester
from monitor.service.broker import EmbeddedBroker
from monitor.store.database import Store

# clock=None: the fixture events are stamped in 2023 and sent now; the bounds on an event's
# ts against its record's time are tested in test_clock.py.

ROOT = Path(__file__).resolve().parents[3]


def _kafka(servers, prefix: str) -> KafkaConfig:
    topics = TopicsConfig(events=f"{prefix}-events", labels=f"{prefix}-labels")
    return KafkaConfig(bootstrap_servers=servers, topics=topics)


def _produce(servers, items) -> list:
    """Send (topic, value) pairs; return their (topic, partition, offset)."""
    producer = KafkaProducer(bootstrap_servers=servers, linger_ms=5, batch_size=1 << 20)
    try:
        futures = [producer.send(t, value=v) for t, v in items]
        producer.flush(timeout=30)
        return [(m.topic, m.partition, m.offset) for m in (f.get(timeout=10) for f in futures)]
    finally:
        producer.close()


def _wait(predicate, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def _start_ingester(cfg_path: Path, log_path: Path) -> subprocess.Popen:
    """``vlm-monitor ingest`` in a child process; returns once it has started ingesting."""
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "monitor.cli", "ingest", "-c", str(cfg_path), "--no-live",
             "--idle-exit", "2"],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=log, text=True,
        )  # fmt: skip
    try:
        line = proc.stdout.readline()  # printed just before the first poll
        assert line.startswith("ingesting"), (line, log_path.read_text()[-2000:])
        line = proc.stdout.readline()  # printed once the first batch is stored
        assert "msg/s" in line, (line, log_path.read_text()[-2000:])
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    return proc


def test_sigkill_mid_batch_loses_and_doubles_nothing(
    broker, topic_prefix, tmp_path, make_event, make_label
):
    """Kill ``vlm-monitor ingest`` with SIGKILL 10 times at random moments while it ingests
    waves of events (3 partitions, producer-side duplicates, labels), restart it each time,
    then let it finish: every produced event is stored exactly once."""
    kafka = _kafka(broker.bootstrap_servers, topic_prefix)
    ensure_topics(kafka.client_kwargs(), [kafka.topics.events], partitions=3)
    ensure_topics(kafka.client_kwargs(), [kafka.topics.labels], partitions=1)
    store_path = tmp_path / "m.duckdb"
    cfg = {
        "reliability_monitor": {
            "logging": {"level": "WARNING"},
            "kafka": {"bootstrap_servers": broker.bootstrap_servers, "topics": {
                "events": kafka.topics.events, "labels": kafka.topics.labels}},
            "store": {
                "path": str(store_path),
                "retention_days": 0,
                "ingest_batch_size": 25,
                "max_lateness": "100000d",  # the events are stamped in 2023, sent now
            },
        }
    }  # fmt: skip
    cfg_path = tmp_path / "config.yaml"
    cfg_path.write_text(yaml.safe_dump(cfg))
    rng = np.random.default_rng(7)
    wave, produced, kills, mid_stream, n = 1500, 0, 0, 0, 0
    for cycle in range(10):
        events = [make_event(i) for i in range(produced, produced + wave)]
        dupes = [events[j] for j in rng.choice(wave, 50, replace=False)]  # producer retries
        labels = [make_label(i) for i in range(produced, produced + wave, 5)]
        _produce(
            broker.bootstrap_servers,
            [(kafka.topics.events, encode(e)) for e in events + dupes]
            + [(kafka.topics.labels, encode(lb)) for lb in labels],
        )
        produced += wave
        proc = _start_ingester(cfg_path, tmp_path / "ingest.log")
        time.sleep(float(rng.uniform(0.0, 0.3)))  # it is storing batches now
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        kills += proc.returncode == -signal.SIGKILL
        before = n
        with Store(store_path) as store:  # the WAL of the killed writer is replayed
            n, distinct = store.execute("SELECT count(*), count(DISTINCT event_id) FROM events")[0]
        assert n == distinct <= produced, (cycle, n, distinct)
        mid_stream += before < n < produced  # killed while it was storing this wave
    proc = _start_ingester(cfg_path, tmp_path / "ingest.log")
    try:
        out, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0 and "stopped cleanly" in out, out
    with Store(store_path) as store:
        n, distinct = store.execute("SELECT count(*), count(DISTINCT event_id) FROM events")[0]
        assert n == distinct == produced
        assert store.counts()["labels"] == produced // 5
        assert store.counts()["dead_letters"] == 0
        expected = {f"ev-{i:06d}" for i in range(produced)}
        assert {r[0] for r in store.execute("SELECT event_id FROM events")} == expected
    assert kills == 10
    assert mid_stream >= 3, f"only {mid_stream} of 10 kills left a partly ingested stream"


def test_broker_restart_mid_stream_resumes(tmp_path, topic_prefix, make_event):
    """A memory-only broker loses its topics when it restarts: what it held is gone, and the
    recreated topics start again at offset 0 under a new topic id. Checked, twice:

    1. an ingester running through the outage reconnects, reads the recreated topic from its
       beginning and stores the new events once (old ids replayed among them);
    2. an ingester that was down while the broker restarted and the topic refilled past the
       stored offset (600 < 700 new messages) sees the new topic id and does not seek to the
       stale offset, which would skip 600 events.
    """
    log = tmp_path / "tansu.log"
    first = EmbeddedBroker(port=0, log_path=log).start(timeout_s=20)
    port, servers = first.port, first.bootstrap_servers
    kafka = _kafka(servers, topic_prefix)
    store = Store(tmp_path / "m.duckdb")
    ingester = Ingester(kafka, store, clock=None, batch_size=100, connect_timeout_s=1.0)
    stop = threading.Event()
    thread = threading.Thread(target=ingester.run, args=(stop, 0.2, (0.2, 1.0)))
    thread.start()
    brokers = [first]
    try:
        _produce(servers, [(kafka.topics.events, encode(make_event(i))) for i in range(400)])
        _wait(lambda: store.counts()["events"] == 400, 30, "the first 400 events")
        first_id = store.offset_rows()[0][3]
        first.stop()
        time.sleep(1.0)  # the ingester is now polling a dead address
        brokers.append(EmbeddedBroker(port=port, log_path=log).start(timeout_s=20))
        ensure_topics(kafka.client_kwargs(), [kafka.topics.events, kafka.topics.labels])
        again = [make_event(i) for i in range(350, 950)]  # 50 old ids replayed
        _produce(servers, [(kafka.topics.events, encode(e)) for e in again])
        _wait(lambda: store.counts()["events"] == 950, 60, "the events sent after restart")
        stop.set()
        thread.join(10)
        ingester.close()
        rows = {(t, p): (o, tid) for t, p, o, tid in store.offset_rows()}
        second_offset, second_id = rows[(kafka.topics.events, 0)]
        assert second_offset == 600 and second_id not in (None, first_id)

        brokers[-1].stop()  # 2. restart while no ingester runs, refill past offset 600
        brokers.append(EmbeddedBroker(port=port, log_path=log).start(timeout_s=20))
        ensure_topics(kafka.client_kwargs(), [kafka.topics.events, kafka.topics.labels])
        _produce(servers, [(kafka.topics.events, encode(make_event(i))) for i in range(950, 1650)])
        with Ingester(kafka, store, clock=None, batch_size=100) as fresh:
            fresh.run_until_idle(idle_s=1.0, max_s=60)
        n, distinct = store.execute("SELECT count(*), count(DISTINCT event_id) FROM events")[0]
        assert n == distinct == 1650
        offset, third_id = store.offset_rows()[0][2:]
        assert offset == 700 and third_id not in (first_id, second_id)
    finally:
        stop.set()
        thread.join(10)
        ingester.close()
        store.close()
        for b in brokers:
            b.stop()
    assert not thread.is_alive()


def test_thousand_malformed_messages_all_become_dead_letters(
    broker, topic_prefix, tmp_store, make_event
):
    kafka = _kafka(broker.bootstrap_servers, topic_prefix)
    ensure_topics(kafka.client_kwargs(), [kafka.topics.events], partitions=3)
    good = [encode(make_event(i)) for i in range(5000)]
    body = json.loads(encode(make_event(0), 3))  # collectors of an earlier release wrote JSON
    packed = msgspec.msgpack.decode(good[0])
    kinds = [
        lambda i: b"{not json %d" % i,
        lambda i: json.dumps({**body, "event_id": f"x{i}", "schema_version": 99}).encode(),
        lambda i: json.dumps({**body, "event_id": f"x{i}", "confidence": "high"}).encode(),
        lambda i: json.dumps({**body, "event_id": f"x{i}", "layer": 2**40}).encode(),
        lambda i: b"\xff\xfe" + str(i).encode(),
        lambda i: msgspec.msgpack.encode({**packed, "event_id": f"x{i}", "confidence": 1.5}),
        lambda i: msgspec.msgpack.encode({**packed, "event_id": f"x{i}"})[:-4],  # truncated
    ]
    bad = [kinds[i % len(kinds)](i) for i in range(1000)]
    rng = np.random.default_rng(11)
    items = [(True, v) for v in good] + [(False, v) for v in bad]
    items = [items[i] for i in rng.permutation(len(items))]
    where = _produce(broker.bootstrap_servers, [(kafka.topics.events, v) for _, v in items])
    with Ingester(kafka, tmp_store, clock=None, batch_size=700) as ingester:
        stats = ingester.run_until_idle(idle_s=1.0, max_s=60)
    assert (stats.n_messages, stats.n_events, stats.n_dead) == (6000, 5000, 1000)
    assert tmp_store.counts()["events"] == 5000
    rows = tmp_store.execute('SELECT topic, "partition", "offset", raw FROM dead_letters')
    expected = {w: v for (ok, v), w in zip(items, where) if not ok}
    assert {(t, p, o): raw for t, p, o, raw in rows} == expected
    by_error = dict(tmp_store.dead_letter_counts())
    assert by_error["not UTF-8 JSON"] == 286 and by_error["not MessagePack"] == 142
    assert by_error["field 'confidence'"] == 143 + 143 and sum(by_error.values()) == 1000
