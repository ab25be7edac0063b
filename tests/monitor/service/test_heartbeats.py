"""Collector heartbeats through a real broker into the daemon's gauges; broker reachability."""

from __future__ import annotations

import time

from kafka import KafkaProducer
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from collectors.transport.emitter import KafkaEmitter
from collectors.wire.heartbeat import CollectorHeartbeat
from monitor.config.load import parse_config
from monitor.service.broker import EmbeddedBroker
from monitor.service.heartbeats import HeartbeatWatcher


def _kafka(servers, prefix):
    cfg = parse_config({"reliability_monitor": {"kafka": {
        "bootstrap_servers": servers, "topics": {"heartbeats": f"{prefix}.heartbeats"},
    }}})  # fmt: skip
    return cfg.reliability_monitor.kafka


def _samples(registry):
    text = generate_latest(registry).decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for fam in text_string_to_metric_families(text)
        for s in fam.samples
    }


def _wait(predicate, timeout_s=30.0):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


def test_emitter_counters_reach_the_gauges(broker, topic_prefix, make_event):
    kafka = _kafka(broker.bootstrap_servers, topic_prefix)
    registry = CollectorRegistry()
    watcher = HeartbeatWatcher(kafka, registry, probe_every_s=0.5).start()
    emitter = KafkaEmitter(
        f"{topic_prefix}.events", bootstrap_servers=broker.bootstrap_servers,
        heartbeat_topic=kafka.topics.heartbeats, heartbeat_interval_s=0.2,
        collector_id="pod-a", model_id="m",
    )  # fmt: skip
    try:
        for i in range(25):
            assert emitter.emit(make_event(i))
        assert emitter.flush(timeout_s=20)
        assert _wait(lambda: watcher.latest.get("pod-a") and watcher.latest["pod-a"].sent == 25)
        producer = KafkaProducer(bootstrap_servers=broker.bootstrap_servers)
        producer.send(kafka.topics.heartbeats, b'{"kind": "heartbeat", "sent": -3}')
        producer.close(10)
        assert _wait(lambda: watcher.decode_errors._value.get() == 1)
        got = _samples(registry)
        labels = (("collector", "pod-a"), ("model", "m"))
        assert got[("vlm_monitor_collector_events", (*labels, ("outcome", "sent")))] == 25
        assert got[("vlm_monitor_collector_events", (*labels, ("outcome", "dropped")))] == 0
        assert got[("vlm_monitor_collector_connected", labels)] == 1
        assert got[("vlm_monitor_broker_up", ())] == 1
        assert got[("vlm_monitor_heartbeat_decode_errors_total", ())] == 1
        assert time.time() - got[("vlm_monitor_collector_last_heartbeat_timestamp_seconds",
                                  labels)] < 10  # fmt: skip
        assert watcher.collectors()[0]["collector_id"] == "pod-a"
    finally:
        emitter.close(timeout_s=5)
        watcher.close()
    # a collector silent for forget_after_s leaves no series behind
    assert watcher.expire(now=time.time() + 2 * watcher.forget_after_s) == ["pod-a"]
    assert not any(k[0].startswith("vlm_monitor_collector_") for k in _samples(registry))


def test_an_older_heartbeat_does_not_replace_a_newer_one():
    kafka = _kafka(["127.0.0.1:1"], "x")
    watcher = HeartbeatWatcher(kafka, CollectorRegistry())
    now = time.time()
    watcher.observe(CollectorHeartbeat("a", now, "m", sent=9))
    watcher.observe(CollectorHeartbeat("a", now - 5, "m", sent=3))  # replayed late
    assert watcher.latest["a"].sent == 9
    watcher.observe(CollectorHeartbeat("b", now - 7200, "m"))  # beyond forget_after_s
    assert "b" not in watcher.latest


def test_broker_up_follows_the_broker(tmp_path, topic_prefix):
    with EmbeddedBroker(port=0, log_path=tmp_path / "b.log") as own:
        registry = CollectorRegistry()
        watcher = HeartbeatWatcher(
            _kafka(own.bootstrap_servers, topic_prefix), registry, probe_every_s=0.5
        ).start()
        try:
            assert _wait(lambda: watcher.broker_up is True)
            own.stop()
            assert _wait(lambda: watcher.broker_up is False, timeout_s=40)
            assert _samples(registry)[("vlm_monitor_broker_up", ())] == 0
        finally:
            watcher.close(timeout_s=10)
