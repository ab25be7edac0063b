"""Fault run: SIGKILL ``vlm-monitor ingest`` 20 times, hostile input, a broker and a webhook outage.

An embedded Tansu broker gets waves of events (3 partitions, labels on their own
topic, 3 % of the events sent twice as a retrying producer would). For each wave
``vlm-monitor ingest`` starts as a child process, stores batches, and is killed
with SIGKILL at a random moment after its first stored batch. A last run ingests
the rest and exits when idle. Checked at the end: the row count equals the number
of distinct events produced, no event id appears twice, every label is stored.

Then the hostile phase: good events interleaved with poison messages (JSON nested
50,000 deep, an integer of 6,000 digits, a 2 MiB message, times in 1970 and at
-1e300, times a year before their record was sent and a day ahead of the clock, a
state of the wrong width, bytes that are not UTF-8) and copies of stored events
re-stamped with other times go through ``vlm-monitor ingest`` once.

The broker outage: a collector's emitter (memory queue of 1,000, 10 MB spill file)
emits 1,000 events/s for 5 s with no broker listening, then the broker starts on
that port; the spill replays and ``vlm-monitor ingest`` stores what arrived.

Last, 11 alerts go to a webhook that answers 503 for its first 3 s and then
recovers, through the store's outbox. Printed per phase: produced / stored /
dead-lettered / lost, and alerts delivered of raised.

Usage::

    python bench/faults.py              # 20 kills, waves of 3,000 events
    python bench/faults.py --kills 5    # shorter
"""

from __future__ import annotations

import argparse
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from collectors.wire.codec import encode  # noqa: E402
from collectors.wire.events import LabelEvent, ScoredEvent  # noqa: E402
from monitor.ingest.admin import ensure_topics  # noqa: E402
from monitor.service.broker import EmbeddedBroker  # noqa: E402
from monitor.store.database import Store  # noqa: E402

T0 = time.time() - 3600.0  # events of the last hour: inside the ingester's clock bounds


def event(i: int) -> ScoredEvent:
    return ScoredEvent(
        event_id=f"ev-{i:08d}", ts=T0 + (i % 1_000_000) / 1000, model_id="m", probe_version="p1",
        layer=3, pooling="last_prompt_token", raw_logit=0.0, confidence=(i % 97) / 96,
        decision="serve", answer="yes", tag="t",
    )  # fmt: skip


def start(cfg: Path, log: Path) -> subprocess.Popen:
    """Start ``vlm-monitor ingest``; return once it has stored its first batch."""
    with open(log, "ab") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "monitor.cli", "ingest", "-c", str(cfg), "--no-live",
             "--idle-exit", "2"],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=err, text=True,
        )  # fmt: skip
    for _ in range(2):  # "ingesting ...", then the first progress line
        line = proc.stdout.readline()
        if not line:
            proc.kill()
            proc.wait()
            raise RuntimeError(f"ingest exited early; see {log}")
    return proc


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--wave", type=int, default=3000, help="events produced per kill")
    parser.add_argument("--batch", type=int, default=50, help="messages per transaction")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    from kafka import KafkaProducer

    rng = np.random.default_rng(args.seed)
    t_start = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp, EmbeddedBroker(port=0) as broker:
        tmp = Path(tmp)
        topics = {"events": "faults-events", "labels": "faults-labels"}
        ensure_topics({"bootstrap_servers": broker.bootstrap_servers}, [topics["events"]], 3)
        ensure_topics({"bootstrap_servers": broker.bootstrap_servers}, [topics["labels"]], 1)
        cfg = tmp / "config.yaml"
        cfg.write_text(yaml.safe_dump({"reliability_monitor": {
            "logging": {"level": "WARNING"},
            "kafka": {"bootstrap_servers": broker.bootstrap_servers, "topics": topics},
            "store": {"path": str(tmp / "m.duckdb"), "retention_days": 0,
                      "ingest_batch_size": args.batch},
        }}))  # fmt: skip
        producer = KafkaProducer(bootstrap_servers=broker.bootstrap_servers, linger_ms=5)
        produced, n_labels, counts, mid = 0, 0, [0], 0
        for k in range(args.kills):
            ids = range(produced, produced + args.wave)
            resent = rng.choice(list(ids), args.wave * 3 // 100, replace=False)
            for i in [*ids, *resent]:
                producer.send(topics["events"], value=encode(event(int(i))))
            for i in ids[::4]:
                producer.send(
                    topics["labels"],
                    value=encode(LabelEvent(f"ev-{i:08d}", True, T0 + i / 1000)),
                )
                n_labels += 1
            producer.flush()
            produced += args.wave
            proc = start(cfg, tmp / "ingest.log")
            time.sleep(float(rng.uniform(0.0, 0.4)))
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            with Store(tmp / "m.duckdb") as store:
                n, distinct = store.execute(
                    "SELECT count(*), count(DISTINCT event_id) FROM events"
                )[0]
            assert n == distinct, f"kill {k + 1}: {n} rows, {distinct} distinct ids"
            mid += counts[-1] < n < produced
            counts.append(n)
            print(f"kill {k + 1:2d}: {n:,} of {produced:,} events stored, no duplicate id")
        producer.close()
        proc = start(cfg, tmp / "ingest.log")
        proc.communicate(timeout=600)
        with Store(tmp / "m.duckdb") as store:
            n, distinct = store.execute("SELECT count(*), count(DISTINCT event_id) FROM events")[0]
            labels = store.counts()["labels"]
        hostile_ok = hostile(broker, tmp, cfg, topics, rng)
    outage_ok = outage(Path(tmp_outage := tempfile.mkdtemp()), args.seed)
    shutil.rmtree(tmp_outage, ignore_errors=True)
    webhook_ok = webhook(Path(tmp_hook := tempfile.mkdtemp()))
    shutil.rmtree(tmp_hook, ignore_errors=True)
    ok = n == distinct == produced and labels == n_labels and hostile_ok
    ok = ok and outage_ok and webhook_ok
    verdict = "OK" if ok else "FAILED"
    print(f"\n{args.kills} SIGKILLs ({mid} while a wave was half stored); after the last run: "
          f"{n:,} rows, {distinct:,} distinct ids, {produced:,} produced; labels {labels:,} of "
          f"{n_labels:,}: {verdict} in {time.monotonic() - t_start:.0f} s")  # fmt: skip
    sys.exit(0 if ok else 1)


def hostile(broker, tmp: Path, cfg: Path, topics: dict, rng) -> bool:
    """Poison messages and re-stamped copies; print the counts; True when nothing was lost."""
    import json

    import msgspec
    from kafka import KafkaProducer

    good = [event(10_000_000 + i) for i in range(2_000)]
    wide = [ScoredEvent(**{**event(20_000_000 + i).__dict__, "state": [0.1] * 8}) for i in range(3)]
    odd = ScoredEvent(**{**event(20_000_100).__dict__, "state": [0.1] * 3})
    body = json.loads(encode(good[0], 3))  # JSON, as collectors of earlier releases write
    packed = msgspec.msgpack.decode(encode(good[1]))  # MessagePack, wire version 4
    poison = [
        encode(good[2])[:40],  # truncated
        msgspec.msgpack.encode({**packed, "event_id": "p-type", "confidence": "high"}),
        msgspec.msgpack.encode({**packed, "event_id": "p-version", "schema_version": 99}),
        b"[" * 50_000 + b"]" * 50_000,
        b'{"kind":"event","schema_version":2,"ts":' + b"9" * 6_000 + b"}",
        b"{" + b" " * (2 << 20) + b"}",
        json.dumps({**body, "event_id": "p-1970", "ts": 0.0}).encode(),
        json.dumps({**body, "event_id": "p-neg", "ts": -1e300}).encode(),
        json.dumps({**body, "event_id": "p-year", "ts": time.time() - 365 * 86_400}).encode(),
        json.dumps({**body, "event_id": "p-ahead", "ts": time.time() + 86_400}).encode(),
        encode(odd),
        b"\xff\xfe not utf-8",
    ]
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap_servers, linger_ms=5,
                             max_request_size=4 << 20)  # fmt: skip
    with Store(tmp / "m.duckdb") as store:
        before_events, before_dead = store.counts()["events"], store.counts()["dead_letters"]
    for e in wide:  # stored first: they set the subject's state width (8)
        producer.send(topics["events"], value=encode(e))
    producer.flush()
    start(cfg, tmp / "ingest.log").communicate(timeout=600)
    messages = [encode(e) for e in good]
    copies = [  # stored events, sent again with other times (a producer re-stamping on retry)
        encode(ScoredEvent(**{**event(int(i)).__dict__, "ts": event(int(i)).ts + shift}))
        for i, shift in zip(rng.choice(1_000, 20, replace=False), np.linspace(-3000, 3000, 20))
    ]
    for p in poison + copies:
        messages.insert(int(rng.integers(0, len(messages))), p)
    for m in messages:
        producer.send(topics["events"], value=m)
    producer.flush()
    producer.close()
    start(cfg, tmp / "ingest.log").communicate(timeout=600)
    with Store(tmp / "m.duckdb") as store:
        stored = store.counts()["events"] - before_events
        dead = store.counts()["dead_letters"] - before_dead
        n, distinct = store.execute("SELECT count(*), count(DISTINCT event_id) FROM events")[0]
    produced = len(good) + len(wide) + len(poison)
    lost = produced - stored - dead
    print(f"hostile input: {produced:,} produced ({len(poison)} poison), {stored:,} stored, "
          f"{dead} dead-lettered, {lost} lost; {len(copies)} re-stamped copies of stored "
          f"events: {n - distinct} stored twice")  # fmt: skip
    return lost == 0 and dead == len(poison) and n == distinct


def outage(tmp: Path, seed: int, rate: int = 1000, seconds: float = 5.0) -> bool:
    """A collector emitting through a broker outage; True when every event was stored."""
    from collectors.transport.emitter import KafkaEmitter
    from monitor.service.broker import _free_port

    port = _free_port("127.0.0.1")
    servers = [f"127.0.0.1:{port}"]
    topics = {"events": "outage-events", "labels": "outage-labels"}
    emitter = KafkaEmitter(
        topics["events"], queue_size=1_000, spill_path=tmp / "spill.bin",
        spill_max_bytes=10 * 2**20, backoff_s=(0.2, 1.0), bootstrap_servers=servers,
    )  # fmt: skip
    n = int(rate * seconds)
    t0, peak = time.monotonic(), 0
    for i in range(n):  # paced at `rate`, as a serving process would
        emitter.emit(event(30_000_000 + i))
        peak = max(peak, emitter.spilled)
        lag = t0 + (i + 1) / rate - time.monotonic()
        if lag > 0:
            time.sleep(lag)
    spill_bytes = (tmp / "spill.bin").stat().st_size if (tmp / "spill.bin").exists() else 0
    with EmbeddedBroker(port=port) as broker:
        ensure_topics({"bootstrap_servers": servers}, list(topics.values()))
        emitter.flush(timeout_s=120)
        emitter.close(timeout_s=30)
        cfg = tmp / "config.yaml"
        cfg.write_text(yaml.safe_dump({"reliability_monitor": {
            "logging": {"level": "WARNING"},
            "kafka": {"bootstrap_servers": broker.bootstrap_servers, "topics": topics},
            "store": {"path": str(tmp / "m.duckdb"), "retention_days": 0},
        }}))  # fmt: skip
        start(cfg, tmp / "ingest.log").communicate(timeout=600)
    with Store(tmp / "m.duckdb") as store:
        stored = store.counts()["events"]
    lost = n - stored
    print(f"broker outage ({seconds:.0f} s at {rate:,} events/s, spill 10 MB): {n:,} emitted, "
          f"{peak:,} spilled at most ({spill_bytes / 1e6:.1f} MB), {emitter.dropped} dropped, "
          f"{emitter.failed} failed, {stored:,} stored, {lost} lost")  # fmt: skip
    return lost == 0 and emitter.dropped == 0


def webhook(tmp: Path) -> bool:
    """Alerts through a webhook that fails for 3 s; True when every alert was delivered."""
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer

    from monitor.alerts.dispatch import Alert, send_alerts
    from monitor.alerts.outbox import OutboxSink
    from monitor.alerts.sinks import WebhookAlertSink

    state = {"until": time.monotonic() + 3.0, "received": 0}

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            self.rfile.read(int(self.headers["Content-Length"]))
            up = time.monotonic() > state["until"]
            state["received"] += up
            self.send_response(204 if up else 503)
            self.end_headers()

        def log_message(self, *args):
            pass

    httpd = HTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    alerts = [Alert("score_drift", "kl_divergence", f"m/p1/{i}", "warning", "kl > 0.15",
                    0.2, 0.15, 1_800_000_000.0 + i) for i in range(11)]  # fmt: skip
    with Store(tmp / "alerts.duckdb") as store:
        url = f"http://127.0.0.1:{httpd.server_port}/hook/secret"
        sink = OutboxSink(store, "webhook", WebhookAlertSink(url, 2.0), backoff_s=(0.5, 1.0))
        send_alerts(alerts, [sink])
        deadline = time.monotonic() + 30
        while store.outbox_counts()["webhook"]["pending"] and time.monotonic() < deadline:
            sink.deliver()
            time.sleep(0.25)
        delivered = store.outbox_counts()["webhook"]["delivered"]
    httpd.shutdown()
    print(f"webhook outage (503 for 3 s): {delivered} of {len(alerts)} alerts delivered, "
          f"{len(alerts) - delivered} undelivered")  # fmt: skip
    return delivered == len(alerts)


if __name__ == "__main__":
    main()
