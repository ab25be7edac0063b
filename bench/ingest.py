"""Benchmark: Kafka -> DuckDB ingest, the decode-and-write path and end to end, apart.

1. Decode and write, no broker: messages pre-serialised with ``collectors.wire.codec.encode``
   (wire version 4, MessagePack) are cut into transactions as the ingester cuts them
   (``batch_size`` records or ``MAX_BATCH_BYTES``, whichever first) and fed through
   ``monitor.ingest.pipeline.prepare`` (``decode_batch``) and ``Store.write_arrow`` (rows +
   offsets, one transaction each) into a new DuckDB file. Goals on 2 cores: >= 200,000
   score-only events/s, >= 40,000 events/s with 512-dimensional fp16 states. The same
   events as JSON (wire version 3, what earlier collectors write) run once for
   comparison, and the per-message path (``decode`` + ``Store.write_batch``) on a slice.
2. End to end: the same messages produced to the embedded Tansu broker (produce rate
   reported on its own), then consumed by ``monitor.ingest.consumer.Ingester`` from offset 0
   (consume + decode + write) until idle. Tansu's fetch path is part of this figure.

Usage::

    python bench/ingest.py            # 600k score-only, 200k with states; e2e 200k / 40k
    python bench/ingest.py --quick    # 150k / 40k; e2e 20k / 5k (a smoke run)

Every figure is the best of ``--repeat`` runs (default 3; end to end: 1). The machine
is shared: the load average at the start is printed; read ratios measured in this run.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import NamedTuple

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from collectors.wire.codec import decode, encode
from collectors.wire.events import ScoredEvent  # noqa: E402
from monitor.ingest.pipeline import WriteAhead, prepare, write  # noqa: E402
from monitor.ingest.polling import DEFAULT_BATCH_SIZE, MAX_BATCH_BYTES  # noqa: E402
from monitor.store.database import Store  # noqa: E402

GOALS = {"score-only": 200_000, "512-d fp16 states": 40_000}


def messages(n: int, dim: int, seed: int = 0, version: int = 4) -> list[bytes]:
    """``n`` encoded events with random ids and scores; states of width ``dim`` (0: none)."""
    rng = np.random.default_rng(seed)
    conf = rng.uniform(size=n)
    states = rng.normal(size=(n, dim)).astype(np.float32) if dim else None
    t0 = time.time() - 3600.0 - n * 0.001  # the last hour: within the ingester's clock bounds
    return [
        encode(
            ScoredEvent(
                event_id=uuid.UUID(int=int(rng.integers(2**63)) << 64 | i).hex,
                ts=t0 + i * 0.001,
                model_id="llava-1.5-7b",
                probe_version="v3",
                layer=16,
                pooling="last_prompt_token",
                raw_logit=float(np.log(conf[i] / (1 - conf[i]))),
                confidence=float(conf[i]),
                decision="serve" if conf[i] > 0.72 else "fallback",
                answer="yes",
                tag="route-a",
                state=None if states is None else states[i],
            ),
            version,
        )
        for i in range(n)
    ]


class Record(NamedTuple):
    """The fields of a kafka-python ``ConsumerRecord`` that ingest reads."""

    offset: int
    value: bytes
    timestamp: int | None = None  # the producer's send time, ms; None: not checked


def polls(values: list[bytes], batch: int, partitions: int = 2) -> list[dict]:
    """``values`` cut into transactions as the ingester cuts them (``batch`` records or
    ``MAX_BATCH_BYTES``), each shaped as kafka-python's poll result (round-robin)."""
    from kafka import TopicPartition

    out = []
    k = 0
    while k < len(values):
        poll: dict = {}
        size = 0
        j = k
        while j < len(values) and j - k < batch and size < MAX_BATCH_BYTES:
            tp = TopicPartition("events", j % partitions)
            poll.setdefault(tp, []).append(Record(j // partitions, values[j]))
            size += len(values[j])
            j += 1
        out.append(poll)
        k = j
    return out


def decode_and_write(values: list[bytes], batch: int, mode: str = "pipelined") -> tuple:
    """(wall seconds, CPU seconds) to decode and store ``values`` into a new store file.

    ``mode``: ``"pipelined"`` (the ingester's default: batch k+1 decodes while batch k
    is written), ``"sequential"`` (``Ingester.poll_once``), or ``"per-message"`` (the
    skeleton: ``decode`` per message, then ``Store.write_batch``).
    """
    batches = polls(values, batch)
    with tempfile.TemporaryDirectory() as tmp, Store(Path(tmp) / "b.duckdb") as store:
        writer = WriteAhead(lambda b: write(store, b))
        t0, c0 = time.perf_counter(), time.process_time()
        for poll in batches:
            if mode == "per-message":
                recs = [r for rs in poll.values() for r in rs]
                offsets = {(tp.topic, tp.partition): rs[-1].offset + 1 for tp, rs in poll.items()}
                store.write_batch([decode(r.value) for r in recs], offsets=offsets)
                continue
            prepared = prepare(poll, {}, time.perf_counter())
            if mode == "pipelined":
                writer.submit(prepared)
            else:
                write(store, prepared)
        writer.close()
        store.execute("CHECKPOINT")  # the data reaches the file, as it would over time
        seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
        stored = store.counts()["events"]
    assert stored == len(values), (stored, len(values))
    return seconds, cpu


def split_timing(values: list[bytes], batch: int) -> tuple[float, float]:
    """CPU seconds spent decoding and CPU seconds spent writing, measured apart."""
    batches = polls(values, batch)
    c0 = time.process_time()
    prepared = [prepare(poll, {}, 0.0) for poll in batches]
    t_decode = time.process_time() - c0
    with tempfile.TemporaryDirectory() as tmp, Store(Path(tmp) / "b.duckdb") as store:
        c0 = time.process_time()
        for b in prepared:
            write(store, b)
        store.execute("CHECKPOINT")
        t_write = time.process_time() - c0
    return t_decode, t_write


def end_to_end(values: list[bytes], partitions: int, batch: int) -> tuple[float, float]:
    """(produce seconds, ingest seconds) of ``values`` through a fresh embedded broker."""
    from kafka import KafkaProducer

    from monitor.config.settings import KafkaConfig, TopicsConfig
    from monitor.ingest.admin import ensure_topics
    from monitor.ingest.consumer import Ingester
    from monitor.service.broker import EmbeddedBroker

    with tempfile.TemporaryDirectory() as tmp, EmbeddedBroker(port=0) as broker:
        kafka = KafkaConfig(
            bootstrap_servers=broker.bootstrap_servers,
            topics=TopicsConfig(events="bench-events", labels="bench-labels"),
        )
        ensure_topics(kafka.client_kwargs(), [kafka.topics.events], partitions)
        ensure_topics(kafka.client_kwargs(), [kafka.topics.labels], 1)
        producer = KafkaProducer(
            bootstrap_servers=broker.bootstrap_servers, linger_ms=20, batch_size=1 << 20,
            max_request_size=16 << 20,
        )  # fmt: skip
        t0 = time.perf_counter()
        for i, v in enumerate(values):
            producer.send(kafka.topics.events, value=v, partition=i % partitions)
        producer.flush(timeout=300)
        t_produce = time.perf_counter() - t0
        producer.close()
        with Store(Path(tmp) / "e2e.duckdb") as store, Ingester(kafka, store, batch) as ingester:
            ingester.poll_once(timeout_s=0.01)  # connect and assign before the clock starts
            t0 = time.perf_counter()
            ingester.run_until_idle(idle_s=2.0, max_s=600)
            t_ingest = time.perf_counter() - t0 - 2.0  # minus the idle wait that ends it
            assert store.counts()["events"] == len(values), store.counts()
    return t_produce, max(t_ingest, 1e-9)


def best(fn, repeat: int) -> tuple[float, float]:
    """The run with the smallest wall time: (wall seconds, CPU seconds)."""
    return min((fn() for _ in range(repeat)), key=lambda r: r[0])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, a smoke run")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--batch", type=int, default=DEFAULT_BATCH_SIZE, help="most messages per transaction"
    )
    parser.add_argument("--partitions", type=int, default=2, help="end to end: partitions")
    parser.add_argument("--no-e2e", action="store_true", help="skip the broker runs")
    parser.add_argument("--events", type=int, help="N score-only messages, N/4 with states")
    args = parser.parse_args(argv)
    sizes = {"score-only": (150_000, 20_000), "512-d fp16 states": (40_000, 5_000)}
    if args.events:
        n = args.events
        sizes = {"score-only": (n, n // 4), "512-d fp16 states": (n // 4, n // 16)}
    elif not args.quick:
        sizes = {"score-only": (600_000, 200_000), "512-d fp16 states": (200_000, 40_000)}
    print(f"cores: {os.cpu_count()}, load average at start: {os.getloadavg()[0]:.2f}")
    print(
        f"transactions of at most {args.batch:,} messages or {MAX_BATCH_BYTES >> 20} MiB, "
        f"best of {args.repeat}"
    )
    print("events/CPU-s: events per second of this process's CPU time (all threads)\n")
    for name, (n, n_e2e) in sizes.items():
        dim = 512 if "states" in name else 0
        values = messages(n, dim)
        size = sum(map(len, values)) / n
        print(f"{name}: {n:,} messages of {size:,.0f} bytes")
        wall, cpu = best(lambda v=values: decode_and_write(v, args.batch), args.repeat)
        rate = n / wall
        print(
            f"  decode+write, no broker, pipelined: {rate:>9,.0f} events/s  "
            f"(goal {GOALS[name]:,}: {rate / GOALS[name]:.2f}x); {n / cpu:,.0f} events/CPU-s"
        )
        wall_s, cpu_s = best(
            lambda v=values: decode_and_write(v, args.batch, "sequential"), args.repeat
        )
        print(
            f"  decode+write, no broker, sequential: {n / wall_s:>8,.0f} events/s; "
            f"{n / cpu_s:,.0f} events/CPU-s"
        )
        t_dec, t_wr = split_timing(values, args.batch)
        print(
            f"    of which decode {n / t_dec:,.0f} events/CPU-s, write {n / t_wr:,.0f} events/CPU-s"
        )
        legacy = messages(n, dim, version=3)
        wall_j, _ = decode_and_write(legacy, args.batch)
        print(
            f"  the same events as JSON (wire version 3, {sum(map(len, legacy)) / n:,.0f} bytes): "
            f"{n / wall_j:,.0f} events/s, pipelined; version 4 is {rate / (n / wall_j):.2f}x"
        )
        del legacy
        n_slow = max(n // 10, args.batch)
        wall_p, _ = decode_and_write(values[:n_slow], args.batch, "per-message")
        print(
            f"  per-message path (decode + write_batch): {n_slow / wall_p:,.0f} "
            f"events/s; the pipelined batch path is {rate / (n_slow / wall_p):.1f}x faster"
        )
        if args.no_e2e:
            print()
            continue
        t_produce, t_ingest = end_to_end(values[:n_e2e], args.partitions, args.batch)
        print(f"  end to end via embedded Tansu, {args.partitions} partitions, {n_e2e:,} messages:")
        print(f"    produce {n_e2e / t_produce:,.0f} msg/s (kafka-python producer); "
              f"ingest {n_e2e / t_ingest:,.0f} events/s "
              f"({n_e2e / t_ingest / rate:.2f}x the no-broker path)\n")  # fmt: skip


if __name__ == "__main__":
    main()
