"""What ``vlm-monitor status`` shows: store counts, dead letters by error, offsets and lag.

DuckDB lets one process hold a file for writing and no other process read it
meanwhile, so a running ``vlm-monitor ingest`` writes the same summary to a
snapshot file next to the store (``<store>.status.json``) every few seconds;
``status`` reads the store when it can and the snapshot when the ingester holds it.
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path
from typing import Any

from rich.console import Group
from rich.table import Table

from monitor.store.database import Store


def snapshot_path(store_path: Path) -> Path:
    """Where a running ingester keeps its status snapshot."""
    return Path(str(store_path) + ".status.json")


def collect(store: Store, detailed: bool = True) -> dict[str, Any]:
    """Counts, dead letters by error, offsets and archive state of a store (JSON-ready).

    ``detailed`` adds the counts that need a join of labels with all events
    (labelled events, labels still waiting for their event); the ingester's
    snapshots leave them out to stay cheap.
    """
    one = lambda sql: store.execute(sql)[0][0]  # noqa: E731
    counts = {
        **store.counts(),
        "live_events": int(one("SELECT count(*) FROM events")),
        "states": int(one("SELECT count(*) FROM all_states")),
    }
    if detailed:
        counts["labelled_events"] = int(one("SELECT count(*) FROM labelled_events"))
        counts["labels_waiting_for_event"] = int(
            one("SELECT count(*) FROM labels ANTI JOIN all_events USING (event_id)")
        )
    return {
        "store": str(store.path),
        "ts": time.time(),
        "counts": counts,
        "dead_letters_by_error": store.dead_letter_counts(),
        "offsets": [
            {"topic": t, "partition": p, "next_offset": o, "topic_id": tid}
            for t, p, o, tid in store.offset_rows()
        ],
        "archive": {
            "dir": None if store.archive_dir is None else str(store.archive_dir),
            "runs": int(one("SELECT count(*) FROM archive_runs")),
            "archived_before": one("SELECT max(cutoff) FROM archive_runs"),
        },
    }


def add_lag(status: dict[str, Any], ends: dict[tuple[str, int], int]) -> dict[str, Any]:
    """Add ``end_offset`` and ``lag`` (messages not yet ingested) to each offset row."""
    for row in status["offsets"]:
        end = ends.get((row["topic"], row["partition"]))
        if end is not None:
            row["end_offset"] = int(end)
            row["lag"] = max(0, int(end) - int(row["next_offset"]))
    return status


def broker_end_offsets(kafka: Any, topics: list[str], timeout_s: float = 2.0) -> dict | None:
    """End offsets of every partition of ``topics``, or None when no broker answers in time.

    Tansu's reported end offset can trail the real end by a few records.
    """
    kafka_log = logging.getLogger("kafka")
    level = kafka_log.level
    kafka_log.setLevel(logging.CRITICAL)  # an unreachable broker is reported as None, not logs
    try:
        return _end_offsets(kafka, topics, timeout_s)
    finally:
        kafka_log.setLevel(level)


def _end_offsets(kafka: Any, topics: list[str], timeout_s: float) -> dict | None:
    from kafka import KafkaConsumer, TopicPartition
    from kafka.errors import KafkaError

    from collectors.transport.emitter import new_kafka_client
    from monitor.ingest.admin import is_reachable

    kwargs = kafka.client_kwargs()
    servers = kwargs["bootstrap_servers"]
    extra = {k: v for k, v in kwargs.items() if k != "bootstrap_servers"}
    if not is_reachable(servers, timeout_s, **extra):
        return None
    kwargs["bootstrap_timeout_ms"] = int(timeout_s * 1000)
    try:
        consumer = new_kafka_client(
            KafkaConsumer, **kwargs, group_id=None, enable_auto_commit=False
        )
    except (KafkaError, OSError):
        return None
    try:
        tps = [
            TopicPartition(t, p) for t in topics for p in (consumer.partitions_for_topic(t) or ())
        ]
        ends = consumer.end_offsets(tps, timeout_ms=int(timeout_s * 1000)) if tps else {}
        return {(tp.topic, tp.partition): int(o) for tp, o in ends.items()}
    except (KafkaError, OSError):
        return None
    finally:
        consumer.close()


def write_snapshot(path: Path, status: dict[str, Any]) -> None:
    """Atomically replace the snapshot file (write a temporary file, then rename)."""
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(status, default=str), encoding="utf-8")
    os.replace(tmp, path)


def read_snapshot(path: Path) -> dict[str, Any] | None:
    """The last snapshot, or None when there is none or it cannot be read."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _fmt_ts(ts: float | None) -> str:
    return "-" if ts is None else time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(ts))


def render(status: dict[str, Any]) -> Group:
    """Rich tables for a status dict (from :func:`collect`, maybe with lag and ingest rates)."""
    counts = Table(title="store", show_header=False)
    for key, value in status["counts"].items():
        counts.add_row(key.replace("_", " "), f"{value:,}")
    archive = status.get("archive", {})
    counts.add_row("archived before", _fmt_ts(archive.get("archived_before")))
    ingest = status.get("ingest")
    if ingest:
        counts.add_row("ingest rate", f"{ingest['messages_per_s']:,.0f} messages/s")
        counts.add_row("ingested this run", f"{ingest['n_messages']:,} messages")
    dead = Table(title="dead letters by error")
    dead.add_column("error")
    dead.add_column("count", justify="right")
    for kind, n in status["dead_letters_by_error"] or [("(none)", 0)]:
        dead.add_row(kind, f"{n:,}")
    offsets = Table(title="offsets")
    for col in ("topic", "partition", "next offset", "end offset", "lag"):
        offsets.add_column(col, justify="left" if col == "topic" else "right")
    for row in status["offsets"]:
        offsets.add_row(
            row["topic"],
            str(row["partition"]),
            f"{row['next_offset']:,}",
            f"{row['end_offset']:,}" if "end_offset" in row else "?",
            f"{row['lag']:,}" if "lag" in row else "?",
        )
    return Group(counts, dead, offsets)
