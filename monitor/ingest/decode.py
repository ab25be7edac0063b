"""One poll of wire messages to Arrow rows and dead letters, through the one wire decoder.

Every message goes through :func:`collectors.wire.codec.decode_message`, the
schema-checked msgspec parser that :func:`collectors.wire.codec.decode` uses too,
so the ingester and everything else agree on what a valid message is. What this
module adds is the batch: the states of all events are checked in a few array
passes (:func:`collectors.wire.events.invalid_states`), and the columns are built
from the structs with explicit Arrow types. A message that does not decode is an
``(index, reason)`` in :attr:`DecodedBatch.errors`, never an exception.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from operator import attrgetter

import numpy as np
import pyarrow as pa

from collectors.wire.codec import decode_message, decode_messages, state_bytes, unset_to_none
from collectors.wire.events import EventDecodeError, invalid_states
from collectors.wire.schema import JsonEvent, JsonLabel, PackedEvent, PackedLabel
from monitor.store.schema import EVENT_SCHEMA, LABEL_SCHEMA, STATE_SCHEMA

_EVENT_TYPES = (JsonEvent, PackedEvent)
_STRINGS = ("event_id", "model_id", "probe_version", "pooling", "decision", "answer", "tag")
_NUMBERS = {"ts": np.float64, "layer": np.int32, "raw_logit": np.float64,
            "confidence": np.float64, "schema_version": np.int32}  # fmt: skip


@dataclass
class DecodedBatch:
    """The rows of one batch of messages.

    Attributes
    ----------
    events, states, labels : pyarrow.Table
        ``EVENT_SCHEMA``, ``STATE_SCHEMA`` and ``LABEL_SCHEMA`` rows, in message order.
    errors : list of (int, str)
        Index of each message that did not decode, and why (sorted by index).
    event_positions : ndarray of shape (n_events,), int64
        Message index of each ``events`` row.
    """

    events: pa.Table
    states: pa.Table
    labels: pa.Table
    errors: list[tuple[int, str]] = field(default_factory=list)
    event_positions: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))


def _parse(values: list[bytes | None]) -> tuple[list, list[int], list[tuple[int, str]]]:
    """Structs of the messages that parse, their indices, and ``(index, reason)`` of the rest."""
    try:  # the usual case: every message valid, one call per message and nothing else
        return decode_messages(values), list(range(len(values))), []
    except EventDecodeError:  # some message is bad: find which, one by one
        pass
    parsed, where, errors = [], [], []
    for i, raw in enumerate(values):
        try:
            if raw is None:
                raise EventDecodeError("empty message (null value)")
            parsed.append(decode_message(raw))
            where.append(i)
        except EventDecodeError as exc:
            errors.append((i, str(exc)))
        except Exception as exc:  # noqa: BLE001 - a decoder bug must dead-letter, not stop ingest
            errors.append((i, f"decoder failed: {type(exc).__name__}: {str(exc)[:200]}"))
    return parsed, where, errors


def _valid_states(
    events: list, where: list[int], errors: list[tuple[int, str]]
) -> tuple[list, list[int], list[int], list[bytes]]:
    """Drop events whose state is invalid (adding their errors); return the events left, their
    message indices, and the row and fp16 bytes of each state."""
    owners = [j for j, m in enumerate(events) if m.state is not None]
    blobs, dropped = [], {}
    for j in owners:
        try:
            blobs.append(state_bytes(events[j]))
        except EventDecodeError as exc:
            dropped[j] = str(exc)
            blobs.append(b"")
    if blobs:
        for k, reason in invalid_states(blobs).items():
            dropped.setdefault(owners[k], reason)
    if not dropped:
        return events, where, owners, blobs
    errors.extend((where[j], reason) for j, reason in dropped.items())
    keep = [j for j in range(len(events)) if j not in dropped]
    row = {j: n for n, j in enumerate(keep)}
    pairs = [(row[j], b) for j, b in zip(owners, blobs) if j not in dropped]
    return (
        [events[j] for j in keep],
        [where[j] for j in keep],
        [r for r, _ in pairs],
        [b for _, b in pairs],
    )


def _column(msgs: list, name: str) -> list:
    return list(map(attrgetter(name), msgs))


def _optional(values: list, arrow_type: pa.DataType) -> pa.Array:
    """A nullable column: None, ``msgspec.UNSET`` (a JSON message left it out) and, for the
    route, ``""`` (the route is the decision) are NULL."""
    if not any(values) and 0 not in values:  # the usual case: no gray zone (0.0 is a value)
        return pa.nulls(len(values), arrow_type)
    return pa.array([unset_to_none(v) if v != "" else None for v in values], arrow_type)


def _events_table(msgs: list) -> pa.Table:
    cols = {n: pa.array(_column(msgs, n), pa.string()) for n in _STRINGS}
    for name, dtype in _NUMBERS.items():
        cols[name] = np.array(_column(msgs, name), dtype=dtype)
    cols["route"] = _optional(_column(msgs, "route"), pa.string())
    cols["consistency"] = _optional(_column(msgs, "consistency"), pa.float64())
    cols["consistency_k"] = _optional(_column(msgs, "consistency_k"), pa.int32())
    return pa.Table.from_arrays([cols[n] for n in EVENT_SCHEMA.names], schema=EVENT_SCHEMA)


def _states_table(msgs: list, rows: list[int], blobs: list[bytes]) -> pa.Table:
    return pa.Table.from_arrays(
        [
            pa.array([msgs[j].event_id for j in rows], pa.string()),
            pa.array(np.array([msgs[j].ts for j in rows], dtype=np.float64)),
            pa.array(np.fromiter(map(len, blobs), np.int32, len(blobs)) // 2),
            pa.array(blobs, pa.binary()),
        ],
        schema=STATE_SCHEMA,
    )


def _labels_table(msgs: list) -> pa.Table:
    return pa.Table.from_arrays(
        [
            pa.array([m.event_id for m in msgs], pa.string()),
            pa.array([m.correct for m in msgs], pa.bool_()),
            pa.array(np.array([m.ts for m in msgs], dtype=np.float64)),
            pa.array([m.source for m in msgs], pa.string()),
        ],
        schema=LABEL_SCHEMA,
    )


def decode_batch(values: list[bytes | None]) -> DecodedBatch:
    """Decode a batch of message values into Arrow rows and errors.

    Parameters
    ----------
    values : list of bytes or None
        Message values in consumption order (``None`` for a null value), any wire
        version (:mod:`collectors.wire.schema`), mixed.

    Returns
    -------
    DecodedBatch
        Events (without states), states, labels, and the index and reason of every
        message that :func:`collectors.wire.codec.decode` would refuse.
    """
    parsed, where, errors = _parse(values)
    kinds = list(map(type, parsed))
    if PackedLabel not in kinds and JsonLabel not in kinds:
        events, labels = parsed, []
    else:
        events = [m for m, k in zip(parsed, kinds) if k in _EVENT_TYPES]
        where = [i for i, k in zip(where, kinds) if k in _EVENT_TYPES]
        labels = [m for m, k in zip(parsed, kinds) if k not in _EVENT_TYPES]
    events, where, rows, blobs = _valid_states(events, where, errors)
    errors.sort()
    return DecodedBatch(
        events=_events_table(events),
        states=_states_table(events, rows, blobs),
        labels=_labels_table(labels),
        errors=errors,
        event_positions=np.asarray(where, dtype=np.int64),
    )
