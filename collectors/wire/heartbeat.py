"""The collector's heartbeat: its emitter's counters, sent on the heartbeats topic.

Every ``kafka.heartbeat_interval_s`` seconds a connected emitter sends one
:class:`CollectorHeartbeat` (UTF-8 JSON, ``"kind": "heartbeat"``) to
``kafka.topics.heartbeats``; the daemon keeps the newest per collector and serves
them as Prometheus gauges (:mod:`monitor.service.heartbeats`). Heartbeats are
telemetry, not data: one that cannot be sent is skipped, never spilled, and they
are not counted among the emitter's events.

The counters are cumulative since the collector process started (a restart starts
them at 0 again), in events, except ``spill_bytes``.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, fields
from typing import Any

HEARTBEAT_VERSION = 1
_MAX_BYTES = 16_384
_COUNTERS = ("sent", "dropped", "failed", "spilled", "pending", "recovered", "spill_bytes")


class HeartbeatDecodeError(ValueError):
    """Bytes that are not a heartbeat this build reads; the message names the field."""


@dataclass(frozen=True)
class CollectorHeartbeat:
    """One collector's emitter state at ``ts``.

    Attributes
    ----------
    collector_id : str
        Unique per collector process (default ``"<host>:<pid>"``).
    ts : float
        When it was taken, seconds since the Unix epoch.
    model_id : str
        The model the collector serves (may be empty).
    sent, dropped, failed : int
        Events acknowledged by the broker, refused (queue and spill full), and
        failed beyond retry, since the process started.
    spilled : int
        Events waiting in the spill file now.
    pending : int
        Events in memory, not yet acknowledged.
    recovered : int
        Events found in the spill file when the process started.
    spill_bytes : int
        Size of the spill file now, bytes.
    connected : bool
        Whether the emitter's producer reached the broker.
    """

    collector_id: str
    ts: float
    model_id: str = ""
    sent: int = 0
    dropped: int = 0
    failed: int = 0
    spilled: int = 0
    pending: int = 0
    recovered: int = 0
    spill_bytes: int = 0
    connected: bool = True
    schema_version: int = HEARTBEAT_VERSION

    kind = "heartbeat"


def encode_heartbeat(beat: CollectorHeartbeat) -> bytes:
    """``beat`` as UTF-8 JSON bytes."""
    body: dict[str, Any] = {"kind": beat.kind, **asdict(beat)}
    return json.dumps(body, separators=(",", ":"), allow_nan=False).encode("utf-8")


def decode_heartbeat(raw: bytes) -> CollectorHeartbeat:
    """Parse :func:`encode_heartbeat` bytes.

    Raises
    ------
    HeartbeatDecodeError
        Larger than 16 kB, not UTF-8 JSON, not an object, another ``kind`` or
        ``schema_version``, an unknown or missing field, a field of the wrong type,
        a non-finite time, or a negative counter.
    """
    if len(raw) > _MAX_BYTES:
        raise HeartbeatDecodeError(f"heartbeat of {len(raw)} bytes exceeds {_MAX_BYTES}")
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError and UnicodeDecodeError
        raise HeartbeatDecodeError(f"not UTF-8 JSON: {str(exc)[:200]}") from None
    if not isinstance(body, dict):
        raise HeartbeatDecodeError(f"expected a JSON object, got {type(body).__name__}")
    if body.pop("kind", None) != "heartbeat":
        raise HeartbeatDecodeError("kind is not 'heartbeat'")
    if body.get("schema_version", HEARTBEAT_VERSION) != HEARTBEAT_VERSION:
        raise HeartbeatDecodeError(f"unsupported schema_version {body['schema_version']!r}")
    known = {f.name: f for f in fields(CollectorHeartbeat)}
    unknown = sorted(set(body) - set(known))
    if unknown:
        raise HeartbeatDecodeError(f"unknown field(s) {unknown}")
    for name, value in body.items():
        _check(name, value)
    try:
        return CollectorHeartbeat(**body)
    except TypeError as exc:
        raise HeartbeatDecodeError(f"missing field: {exc}") from None


def _check(name: str, value: Any) -> None:
    if name in ("collector_id", "model_id"):
        if not isinstance(value, str) or (name == "collector_id" and not value):
            raise HeartbeatDecodeError(f"field {name!r} must be a non-empty string")
    elif name == "ts":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise HeartbeatDecodeError("field 'ts' must be a number")
        if not math.isfinite(value):
            raise HeartbeatDecodeError("field 'ts' is not finite")
    elif name == "connected":
        if not isinstance(value, bool):
            raise HeartbeatDecodeError("field 'connected' must be true or false")
    elif name in _COUNTERS or name == "schema_version":
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise HeartbeatDecodeError(f"field {name!r} must be an integer >= 0, got {value!r}")
