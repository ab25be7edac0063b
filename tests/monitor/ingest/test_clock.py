"""An event's ts is checked against its Kafka record's time and the ingester's clock."""

from __future__ import annotations

import dataclasses
import time

import numpy as np
import pytest
from kafka import KafkaProducer

from collectors.wire.codec import encode
from monitor.config.load import parse_config
from monitor.config.settings import KafkaConfig, TopicsConfig
from monitor.ingest.admin import ensure_topics
from monitor.ingest.clock import EventClock
from monitor.ingest.consumer import Ingester
from monitor.ingest.decode import decode_batch
from monitor.store import queries

DAY = 86_400.0
YEAR = 365 * DAY
# (seconds from the record's send time to the event's ts, what the reason names)
SKEWED = [
    (-8 * DAY, "before its record was sent"),
    (-YEAR, "before its record was sent"),
    (-20 * YEAR, "before its record was sent"),
    (3600.0, "ahead of the ingester's clock"),
    (DAY, "ahead of the ingester's clock"),
    (70 * YEAR, "ahead of the ingester's clock"),
]


def test_bounds_are_checked_against_the_record_and_the_clock(make_event):
    now = 1_900_000_000.0
    events = [dataclasses.replace(make_event(i, state=[1.0, 2.0]), ts=now) for i in range(5)]
    events[1] = dataclasses.replace(events[1], ts=now - 8 * DAY)  # sent now: too late
    events[2] = dataclasses.replace(events[2], ts=now + 600)  # ahead of both clocks
    events[3] = dataclasses.replace(events[3], ts=now - 2 * YEAR)  # its record is as old: fine
    batch = decode_batch([encode(e) for e in events])
    sent_ms = np.array([now * 1000] * 3 + [(now - 2 * YEAR) * 1000, -1], dtype=np.int64)
    EventClock(max_clock_skew_s=300, max_lateness_s=7 * DAY).check(batch, sent_ms, now)
    assert batch.events.column("event_id").to_pylist() == ["ev-000000", "ev-000003", "ev-000004"]
    assert batch.states.column("event_id").to_pylist() == ["ev-000000", "ev-000003", "ev-000004"]
    assert batch.event_positions.tolist() == [0, 3, 4]
    (late_at, late), (ahead_at, ahead) = batch.errors
    assert (late_at, ahead_at) == (1, 2)
    assert "before its record was sent" in late and "max_lateness 604,800 s" in late
    assert "600 s ahead of the ingester's clock" in ahead


@pytest.mark.parametrize("bad", [-1.0, float("nan"), float("inf")])
def test_bounds_must_be_finite_and_not_negative(bad):
    with pytest.raises(ValueError, match="max_lateness_s"):
        EventClock(max_lateness_s=bad)


def test_bounds_come_from_the_config():
    cfg = parse_config({"reliability_monitor": {"store": {"max_clock_skew": "30s"}}})
    assert EventClock.from_config(cfg.reliability_monitor.store) == EventClock(30.0, 7 * DAY)


def test_skewed_events_are_dead_letters_and_do_not_move_the_reference(
    broker, topic_prefix, tmp_store, make_event
):
    """Through a real broker: each skewed event is a dead letter with its bytes and the clocks
    compared; the rest is stored and the subject's first event is that of the honest traffic."""
    kafka = KafkaConfig(
        bootstrap_servers=broker.bootstrap_servers,
        topics=TopicsConfig(events=f"{topic_prefix}-events", labels=f"{topic_prefix}-labels"),
    )
    ensure_topics(kafka.client_kwargs(), [kafka.topics.events, kafka.topics.labels])
    now = time.time()
    honest = [dataclasses.replace(make_event(i), ts=now - 60 + i) for i in range(20)]
    skewed = [
        dataclasses.replace(make_event(100 + k), ts=now + offset)
        for k, (offset, _) in enumerate(SKEWED)
    ]
    replayed = dataclasses.replace(make_event(200), ts=now - 30 * DAY)  # sent 30 days ago
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap_servers)
    for e in honest[:10] + skewed + honest[10:]:
        producer.send(kafka.topics.events, encode(e))
    producer.send(kafka.topics.events, encode(replayed), timestamp_ms=int(replayed.ts * 1000))
    producer.flush(30)
    producer.close()
    with Ingester(kafka, tmp_store) as ingester:
        ingester.run_until_idle(idle_s=1.0, max_s=30)
    stored = {r[0] for r in tmp_store.execute("SELECT event_id FROM events")}
    assert stored == {e.event_id for e in honest} | {replayed.event_id}
    dead = tmp_store.execute('SELECT raw, error FROM dead_letters ORDER BY "offset"')
    assert [raw for raw, _ in dead] == [encode(e) for e in skewed]
    for (_, error), (_, reason) in zip(dead, SKEWED):
        assert reason in error and "field 'ts'" in error
    subject = queries.Subject("m", "p1", None)
    assert queries.first_ts(tmp_store, subject) == replayed.ts  # honestly old, kept
