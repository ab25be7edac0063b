import socket
import time

import numpy as np
import pytest
import torch
from kafka import KafkaConsumer, TopicPartition

from collectors.generate.collector import ReliabilityCollector
from collectors.probe.linear import LinearProbe
from collectors.transport.emitter import KafkaEmitter
from collectors.transport.spill import SpillFile
from collectors.wire.codec import decode
from monitor.service.broker import EmbeddedBroker


def _closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _consume(servers: list[str], topic: str, expected: int, timeout_s: float = 20.0) -> list:
    consumer = KafkaConsumer(bootstrap_servers=servers, group_id=None, enable_auto_commit=False)
    try:
        tps = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or [])]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        records, deadline = [], time.monotonic() + timeout_s
        while len(records) < expected and time.monotonic() < deadline:
            records += [r for rs in consumer.poll(timeout_ms=200).values() for r in rs]
        return records
    finally:
        consumer.close()


def _balanced(e: KafkaEmitter, emitted: int) -> bool:
    return emitted + e.recovered == e.sent + e.dropped + e.failed + e.spilled + e.pending


def test_spill_file_roundtrip_bound_and_corrupt_tail(tmp_path):
    path = tmp_path / "spill.bin"
    spill = SpillFile(path, max_bytes=200)
    assert spill.append("t", b"k1", b"v" * 50) and spill.append("t", b"k2", b"w" * 50)
    assert not spill.append("t", b"k3", b"x" * 150)  # over the byte bound: refused
    assert spill.read(1) == [("t", b"k1", b"v" * 50)]
    spill.close()
    with open(path, "ab") as fh:
        fh.write(b"\x00\x01torn")  # a crash mid-write
    again = SpillFile(path, max_bytes=200)
    assert again.unread == 2 and (tmp_path / "spill.bin.corrupt").read_bytes() == b"\x00\x01torn"
    assert [r[1] for r in again.read(10)] == [b"k1", b"k2"]
    again.compact()
    assert again.size_bytes == 0 and again.unread == 0
    again.close()


def test_memory_then_spill_then_drops_counted(tmp_path, make_event):
    emitter = KafkaEmitter(
        "t",
        queue_size=8,
        spill_path=tmp_path / "spill.bin",
        spill_max_bytes=4_000,  # about 12 events of ~330 bytes
        bootstrap_servers=[f"127.0.0.1:{_closed_port()}"],
        backoff_s=(0.05, 0.1),
        bootstrap_timeout_ms=100,
    )
    t0 = time.perf_counter()
    for i in range(40):
        emitter.emit(make_event(i))
        time.sleep(0.005)  # the thread spills the oldest queued events while offline
    assert time.perf_counter() - t0 < 2.0
    emitter.close(timeout_s=0.3)
    assert emitter.spilled > 8 and emitter.dropped > 0 and emitter.sent == 0
    assert _balanced(emitter, 40) and emitter.pending == 0
    assert (tmp_path / "spill.bin").stat().st_size <= 4_000


def test_broker_stopped_generate_still_returns_and_spill_replays(
    tiny_llava, tmp_path, topic_prefix
):
    port, topic = _closed_port(), f"{topic_prefix}-ev"
    spill = tmp_path / "spill.bin"
    probe = LinearProbe(weight=np.random.default_rng(0).normal(size=64), bias=0.0, layer=2)
    ids = torch.tensor([[49] * 16 + [3, 4, 5]] * 2)
    pixels = torch.randn(2, 3, 32, 32)
    kafka = dict(request_timeout_ms=1000, delivery_timeout_ms=2000, max_block_ms=500)

    def serve(col: ReliabilityCollector) -> list:
        out = tiny_llava.generate(
            input_ids=ids, pixel_values=pixels, max_new_tokens=2, do_sample=False
        )
        assert out.shape == (2, ids.shape[1] + 2)
        return col.emit(col.collect(), ["yes", "no"])

    broker = EmbeddedBroker(port=port, log_path=tmp_path / "a.log").start(timeout_s=20)
    emitter = KafkaEmitter(
        topic,
        spill_path=spill,
        backoff_s=(0.05, 0.2),
        bootstrap_servers=[f"127.0.0.1:{port}"],
        **kafka,
    )
    with ReliabilityCollector(tiny_llava, probe, emitter=emitter) as col:
        first = serve(col)
        assert emitter.flush(timeout_s=20) and emitter.sent == 2
        broker.stop()
        later, t0 = [], time.perf_counter()
        for _ in range(5):
            later += serve(col)  # nothing raises; generate returns
        assert time.perf_counter() - t0 < 10.0
    emitter.close(timeout_s=1.0)
    assert _balanced(emitter, 12) and emitter.failed == 0 and emitter.pending == 0
    assert emitter.spilled + emitter.sent == 12 and emitter.spilled >= 10  # kept on disk

    with EmbeddedBroker(port=port, log_path=tmp_path / "b.log"):
        again = KafkaEmitter(topic, spill_path=spill, bootstrap_servers=[f"127.0.0.1:{port}"])
        assert again.recovered == emitter.spilled
        assert again.flush(timeout_s=20)
        again.close(timeout_s=5)
        assert again.sent == again.recovered and again.spilled == 0
        got = {decode(r.value).event_id for r in _consume([f"127.0.0.1:{port}"], topic, 10)}
    assert {e.event_id for e in later} <= got and not {e.event_id for e in first} & got
    assert spill.stat().st_size == 0  # compacted once everything was acknowledged


def test_compact_keeps_only_unread_records(tmp_path):
    spill = SpillFile(tmp_path / "s.bin")
    for i in range(5):
        spill.append("t", f"k{i}".encode(), b"v")
    assert [r[1] for r in spill.read(2)] == [b"k0", b"k1"]
    spill.append("t", b"k0", b"v")  # a replayed record that failed goes back at the end
    spill.compact()
    spill.close()
    again = SpillFile(tmp_path / "s.bin")
    assert [r[1] for r in again.read(10)] == [b"k2", b"k3", b"k4", b"k0"]
    again.close()


@pytest.mark.parametrize("where", ["header", "payload", "two records"])
def test_a_flipped_byte_costs_its_record_not_the_ones_after_it(tmp_path, where):
    path = tmp_path / "spill.bin"
    spill = SpillFile(path)
    for i in range(100):
        assert spill.append("vlm-monitor.events", b"k%02d" % i, b"value-%03d" % i * 20)
    spill.close()
    data = bytearray(path.read_bytes())
    size = len(data) // 100
    hits = {
        "header": [10 * size + 2],
        "payload": [10 * size + 40],
        "two records": [5, 70 * size + 50],
    }
    for offset in hits[where]:
        data[offset] ^= 0xFF
    path.write_bytes(bytes(data))
    again = SpillFile(path)
    kept = again.read(1000)
    lost = len(hits[where])
    assert len(kept) == 100 - lost and again.unread == 0
    assert kept[-1][1] == b"k99"  # the records after the corruption are all there
    assert (tmp_path / "spill.bin.corrupt").stat().st_size == lost * size
    again.close()


def test_a_burst_while_the_sender_reconnects_spills_instead_of_dropping(tmp_path, make_event):
    emitter = KafkaEmitter(
        "t",
        queue_size=10,
        spill_path=tmp_path / "spill.bin",
        spill_max_bytes=10 * 2**20,
        bootstrap_servers=[f"127.0.0.1:{_closed_port()}"],
        backoff_s=(2.0, 2.0),  # the sender sits in its reconnect wait
        bootstrap_timeout_ms=2000,
    )
    t0 = time.perf_counter()
    accepted = sum(emitter.emit(make_event(i)) for i in range(1000))  # no sleep: a burst
    elapsed = time.perf_counter() - t0
    emitter.close(timeout_s=0.3)
    assert accepted == 1000 and emitter.dropped == 0 and emitter.sent == 0
    assert emitter.spilled >= 990 and _balanced(emitter, 1000)
    assert elapsed < 2.0  # emit never waited on the network


def test_the_sender_spills_its_queue_while_a_connection_attempt_hangs(tmp_path, make_event):
    """A black-holed broker (accepts, never answers) holds a connection attempt for the whole
    bootstrap timeout; meanwhile the sender still moves the memory queue into the spill file,
    so the queue has room for the next burst instead of sending emit() to the disk path."""
    hole = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    hole.bind(("127.0.0.1", 0))
    hole.listen(16)
    try:
        emitter = KafkaEmitter(
            "t",
            queue_size=100,
            spill_path=tmp_path / "spill.bin",
            bootstrap_servers=[f"127.0.0.1:{hole.getsockname()[1]}"],
            backoff_s=(0.05, 0.05),
            bootstrap_timeout_ms=5000,
        )
        time.sleep(0.2)  # the first attempt is under way
        assert all(emitter.emit(make_event(i)) for i in range(90))  # below the bound
        deadline = time.monotonic() + 2.0
        while emitter.spilled < 40 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert emitter.spilled >= 40, "the queue waited for the connection attempt"
        assert emitter.last_error is None  # still the first attempt: it has not failed yet
        emitter.close(timeout_s=0.3)
        assert emitter.dropped == 0 and _balanced(emitter, 90)
    finally:
        hole.close()
