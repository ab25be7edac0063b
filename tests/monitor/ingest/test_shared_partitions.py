"""Past one host: 8 collector processes, 4 partitions, 2 ingesters with their own stores,
then detection over both stores as one, against one ingester that took everything."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path

import duckdb
import numpy as np
import pytest

from monitor.config.settings import AssignmentConfig, Config, KafkaConfig, TopicsConfig
from monitor.detection.scoring import Scored, score_window
from monitor.ingest.admin import ensure_topics
from monitor.ingest.assignment import AssignmentError
from monitor.ingest.consumer import Ingester
from monitor.store.database import Store, StoreError
from monitor.store.queries import Subject
from monitor.store.union import attach_members

ROOT = Path(__file__).resolve().parents[3]
COLLECTORS, PER_COLLECTOR, PARTITIONS = 8, 150, 4
T0 = 1_700_000_000.0

COLLECTOR = textwrap.dedent(
    """
    import sys
    import numpy as np
    from collectors.transport.emitter import KafkaEmitter
    from collectors.wire.events import LabelEvent, ScoredEvent

    servers, events_topic, labels_topic, k, n = sys.argv[1:6]
    k, n = int(k), int(n)
    rng = np.random.default_rng(k)
    emitter = KafkaEmitter(events_topic, bootstrap_servers=servers.split(","))
    for i in range(n):
        j = k * n + i                     # this collector's events, ids disjoint from the others
        shifted = i >= n // 2             # the second half of every collector's traffic drifts
        conf = float(rng.beta(3, 2) if shifted else rng.beta(6, 2))
        event_id = f"c{k}-{i:05d}"
        emitter.emit(ScoredEvent(
            event_id=event_id, ts=1_700_000_000.0 + (j % n) + (1000 if shifted else 0),
            model_id="m", probe_version="v1", layer=3, pooling="last_prompt_token",
            raw_logit=float(np.log(conf / (1 - conf))), confidence=conf, decision="serve",
            answer="yes", tag="t"))
        correct = bool(rng.uniform() < conf - (0.2 if shifted else 0.0))
        emitter.emit(LabelEvent(event_id=event_id, correct=correct, ts=1_700_100_000.0 + j,
                                source="review"), topic=labels_topic)
    emitter.close(timeout_s=30)
    assert (emitter.dropped, emitter.failed) == (0, 0), (emitter.dropped, emitter.failed)
    """
)


def _kafka(broker, prefix: str, member: int = 0, members: int = 1) -> KafkaConfig:
    topics = TopicsConfig(
        events=f"{prefix}-events",
        labels=f"{prefix}-labels",
        alerts=f"{prefix}-alerts",
        control=f"{prefix}-control",
    )
    return KafkaConfig(
        bootstrap_servers=broker.bootstrap_servers,
        topics=topics,
        assignment=AssignmentConfig(member=member, members=members),
    )


def _ingest(kafka: KafkaConfig, path: Path) -> None:
    with Store(path) as store, Ingester(kafka, store, clock=None, create_topics=False) as ing:
        ing.run_until_idle(idle_s=2.0, max_s=90)


def _results(store, cfg) -> dict:
    halves = ((T0, T0 + 500), (T0 + 1000, T0 + 1500))
    out = score_window(cfg, store, Subject("m", "v1"), *halves, states=False)
    assert all(isinstance(r, Scored) for r in out), out
    return {f"{r.signal}/{r.result.detector}": r.result for r in out}


@pytest.mark.slow
def test_two_ingesters_share_four_partitions_and_read_as_one(broker, topic_prefix, tmp_path):
    kafka = _kafka(broker, topic_prefix)
    ensure_topics(kafka.client_kwargs(), [kafka.topics.events, kafka.topics.labels], PARTITIONS)
    script = tmp_path / "collector.py"
    script.write_text(COLLECTOR)
    servers = ",".join(broker.bootstrap_servers)
    args = [servers, kafka.topics.events, kafka.topics.labels]
    procs = [
        subprocess.Popen([sys.executable, str(script), *args, str(k), str(PER_COLLECTOR)], cwd=ROOT)
        for k in range(COLLECTORS)
    ]
    assert [p.wait(timeout=120) for p in procs] == [0] * COLLECTORS

    a, b, whole = tmp_path / "a.duckdb", tmp_path / "b.duckdb", tmp_path / "whole.duckdb"
    _ingest(_kafka(broker, topic_prefix, 0, 2), a)
    _ingest(_kafka(broker, topic_prefix, 1, 2), b)
    _ingest(kafka, whole)  # one ingester, every partition: what the two must add up to

    n = COLLECTORS * PER_COLLECTOR
    for path, mine in ((a, {0, 2}), (b, {1, 3})):
        con = duckdb.connect(str(path), read_only=True)
        offsets = con.execute('SELECT DISTINCT "partition" FROM offsets').fetchall()
        assert {p for (p,) in offsets} == mine  # each store keeps the offsets of its share
        # every label found its event in the same store
        orphans = con.execute("SELECT count(*) FROM labels ANTI JOIN events USING (event_id)")
        assert orphans.fetchone()[0] == 0
        held = con.execute("SELECT count(*) FROM events").fetchone()[0]
        assert 0.25 * n < held < 0.75 * n
        con.close()

    cfg = Config()
    with Store(tmp_path / "home.duckdb") as home, Store(whole, read_only=True) as one:
        assert attach_members(home, [a, b, home.path]) == ["member_0", "member_1"]
        counts = home.execute(
            "SELECT (SELECT count(*) FROM all_events), (SELECT count(DISTINCT event_id) FROM "
            "all_events), (SELECT count(*) FROM labelled_events)"
        )[0]
        assert counts == (n, n, n)  # nothing lost or doubled: every id once
        union, single = _results(home, cfg), _results(one, cfg)
        assert union.keys() == single.keys()
        for name, result in union.items():
            assert result.statistic == pytest.approx(single[name].statistic, rel=1e-12), name
            assert result.is_drift == single[name].is_drift, name
        assert union["confidence/calibration_error"].is_drift  # the drifted half is found
        assert union["confidence/kl_divergence"].statistic > 0.05


def test_shared_assignment_refuses_unequal_partition_counts(broker, topic_prefix, tmp_store):
    kafka = _kafka(broker, topic_prefix, 0, 2)
    ensure_topics(kafka.client_kwargs(), [kafka.topics.events], 4)
    ensure_topics(kafka.client_kwargs(), [kafka.topics.labels], 2)
    with Ingester(kafka, tmp_store, clock=None, create_topics=False) as ingester:
        with pytest.raises(AssignmentError, match="different partition counts"):
            ingester.poll_once(timeout_s=0.5)


def test_assignment_config_is_checked():
    with pytest.raises(ValueError, match="member must be in 0..1"):
        AssignmentConfig(member=2, members=2)


def test_a_member_held_by_its_ingester_is_named(tmp_path):
    member = tmp_path / "held.duckdb"
    Store(member).close()
    holder = subprocess.Popen(
        [sys.executable, "-c", "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); "
         "print('open', flush=True); time.sleep(60)", str(member)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "open"
        with Store(tmp_path / "home.duckdb") as home:
            with pytest.raises(StoreError, match=r"held\.duckdb: held by another process"):
                attach_members(home, [member])
            with pytest.raises(StoreError, match="does not exist"):
                attach_members(home, [tmp_path / "missing.duckdb"])
            with pytest.raises(StoreError, match="listed twice"):
                attach_members(home, [member, member])
    finally:
        holder.kill()
        holder.wait()
    time.sleep(0.1)
    with Store(tmp_path / "home2.duckdb") as home:
        assert attach_members(home, [member]) == ["member_0"]
        assert np.asarray(home.execute("SELECT count(*) FROM all_events")[0]) == 0
