"""Benchmark: one ingester against two sharing the partitions, end to end, then detection.

Events (score-only, wire version 4) and labels for a quarter of them are produced to
the embedded Tansu broker over ``--partitions`` partitions of both topics, keyed by
event id as collectors key them. Then, from offset 0 and each in its own process:

1. one ingester taking every partition into one store file;
2. ``--members`` ingesters at once, each with its static share
   (``kafka.assignment``) and its own store file.

Printed: events/s of each run (all stored events over the wall time from the first
record polled to the last stored, the idle wait that ends a run excluded), the ratio
shared / single, that every id is stored once across the shares and every label
sits in its event's store, and the time of a drift run over the shares attached
as one (``monitor/store/union.py``) against the same run on the single store, with
equal statistics. On one machine the ingesters share its cores with the broker, so
the ratio says what a second process gains here, not what a second host would.

Usage::

    python bench/scale_out.py            # 400,000 events, 4 partitions, 2 ingesters
    python bench/scale_out.py --quick    # 40,000 events (a smoke run)
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from collectors.wire.codec import encode  # noqa: E402
from collectors.wire.events import LabelEvent, ScoredEvent  # noqa: E402
from monitor.config.settings import AssignmentConfig, KafkaConfig, TopicsConfig  # noqa: E402

T0 = time.time() - 7200.0  # events of the last two hours: inside the ingester's clock bounds
TOPICS = TopicsConfig(events="scale-events", labels="scale-labels")


def produce(servers: list[str], n: int, partitions: int) -> float:
    """Produce ``n`` events and labels for every fourth; return produce seconds."""
    from kafka import KafkaProducer

    from monitor.ingest.admin import ensure_topics

    ensure_topics({"bootstrap_servers": servers}, [TOPICS.events, TOPICS.labels], partitions)
    rng = np.random.default_rng(0)
    conf = np.concatenate([rng.beta(6, 2, n // 2), rng.beta(3, 2, n - n // 2)])
    producer = KafkaProducer(bootstrap_servers=servers, linger_ms=20, batch_size=1 << 20)
    t0 = time.perf_counter()
    for i in range(n):
        event_id = f"ev-{i:09d}"
        event = ScoredEvent(
            event_id=event_id, ts=T0 + i * (3600.0 / n), model_id="m", probe_version="v1",
            layer=16, pooling="last_prompt_token", raw_logit=float(np.log(conf[i] / (1 - conf[i]))),
            confidence=float(conf[i]), decision="serve", answer="yes", tag="t",
        )  # fmt: skip
        producer.send(TOPICS.events, key=event_id.encode(), value=encode(event))
        if i % 4 == 0:
            label = LabelEvent(event_id, bool(rng.uniform() < conf[i]), T0 + 3600.0 + i * 1e-3)
            producer.send(TOPICS.labels, key=event_id.encode(), value=encode(label))
    producer.flush(timeout=300)
    producer.close()
    return time.perf_counter() - t0


def ingest_child(servers: str, member: int, members: int, path: str) -> None:
    """One ingester process: print ``{"start", "end", "events"}`` as JSON (epoch seconds)."""
    from monitor.ingest.consumer import Ingester
    from monitor.store.database import Store

    kafka = KafkaConfig(
        bootstrap_servers=servers.split(","), topics=TOPICS,
        assignment=AssignmentConfig(member=member, members=members),
    )  # fmt: skip
    with Store(path) as store, Ingester(kafka, store, create_topics=False) as ingester:
        first = ingester.poll_once(timeout_s=10.0)  # connect, assign, the first records
        start = time.time() - first.seconds
        idle_s = 2.0
        ingester.run_until_idle(idle_s=idle_s, max_s=900)
        end = time.time() - idle_s
        print(json.dumps({"start": start, "end": end, "events": store.counts()["events"]}))


def run_ingesters(servers: list[str], paths: list[Path]) -> tuple[float, int]:
    """Start one ingester per path at once; return (wall seconds, events stored)."""
    members = len(paths)
    procs = [
        subprocess.Popen(
            [sys.executable, __file__, "--child", ",".join(servers), str(m), str(members), str(p)],
            stdout=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        for m, p in enumerate(paths)
    ]
    outs = [json.loads(p.communicate(timeout=1200)[0].strip().splitlines()[-1]) for p in procs]
    wall = max(o["end"] for o in outs) - min(o["start"] for o in outs)
    return wall, sum(o["events"] for o in outs)


def drift(store) -> tuple[float, dict[str, float]]:
    """Seconds of a drift run (first half hour against the last) and its statistics."""
    from monitor.config.settings import Config
    from monitor.detection.scoring import Scored, score_window
    from monitor.store.queries import Subject

    t0 = time.perf_counter()
    out = score_window(Config(), store, Subject("m", "v1"), (T0, T0 + 1800.0),
                       (T0 + 1800.0, T0 + 3600.0), states=False)  # fmt: skip
    seconds = time.perf_counter() - t0
    assert all(isinstance(r, Scored) for r in out), out
    return seconds, {f"{r.signal}/{r.result.detector}": r.result.statistic for r in out}


def check_shares(paths: list[Path], n: int) -> None:
    """Every id once across the shares; every label in its event's store."""
    import duckdb

    ids = 0
    for path in paths:
        con = duckdb.connect(str(path), read_only=True)
        orphans = con.execute("SELECT count(*) FROM labels ANTI JOIN events USING (event_id)")
        assert orphans.fetchone()[0] == 0, f"{path}: a label without its event"
        ids += con.execute("SELECT count(DISTINCT event_id) FROM events").fetchone()[0]
        con.close()
    assert ids == n, f"{ids:,} distinct ids across the shares, {n:,} produced"


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        servers, member, members, path = sys.argv[2:6]
        return ingest_child(servers, int(member), int(members), path)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="40,000 events, a smoke run")
    parser.add_argument("--events", type=int, help="default 400,000 (--quick: 40,000)")
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--members", type=int, default=2)
    args = parser.parse_args()
    n = args.events or (40_000 if args.quick else 400_000)
    from monitor.service.broker import EmbeddedBroker
    from monitor.store.database import Store
    from monitor.store.union import attach_members

    print(f"cores: {os.cpu_count()}, load average at start: {os.getloadavg()[0]:.2f}")
    with tempfile.TemporaryDirectory() as tmp, EmbeddedBroker(port=0) as broker:
        servers, root = broker.bootstrap_servers, Path(tmp)
        t_produce = produce(servers, n, args.partitions)
        print(f"{n:,} events and {(n + 3) // 4:,} labels over {args.partitions} partitions: "
              f"produced at {n / t_produce:,.0f} events/s")  # fmt: skip
        single = root / "single.duckdb"
        wall_1, stored_1 = run_ingesters(servers, [single])
        assert stored_1 == n, f"one ingester stored {stored_1:,} of {n:,}"
        print(f"1 ingester, every partition:        {n / wall_1:>9,.0f} events/s ({wall_1:.1f} s)")
        shares = [root / f"share-{m}.duckdb" for m in range(args.members)]
        wall_k, stored_k = run_ingesters(servers, shares)
        check_shares(shares, n)
        print(f"{args.members} ingesters, a static share each: {n / wall_k:>9,.0f} events/s "
              f"({wall_k:.1f} s); {wall_1 / wall_k:.2f}x one ingester")  # fmt: skip
        print(f"  stored {stored_k:,} of {n:,}, every id once, every label beside its event")
        with Store(root / "home.duckdb") as home, Store(single, read_only=True) as one:
            attach_members(home, shares)
            t_union, union = drift(home)
            t_one, alone = drift(one)
        assert union.keys() == alone.keys()
        assert all(np.isclose(union[k], alone[k], rtol=1e-9) for k in union), (union, alone)
        print(f"drift run over the {args.members} stores as one: {t_union:.2f} s; over the single "
              f"store {t_one:.2f} s ({t_union / t_one:.2f}x); the same statistics")  # fmt: skip


if __name__ == "__main__":
    main()
