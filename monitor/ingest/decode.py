"""Batch decoding of wire messages straight into Arrow tables.

:func:`collectors.wire.events.decode` parses one message into Python objects (about
25,000 score-only events per second). :func:`decode_batch` hands a whole poll to
Arrow's C++ JSON reader (newline-delimited, explicit schema, unknown fields an
error), checks the columns with vectorised kernels, and decodes the fp16 states.
It accepts only what it can prove :func:`decode` would accept with the same
values; every other message goes to :func:`decode`, whose verdict stands (a
row, or a dead letter with its error). ``tests/monitor/test_ingest_fastdecode.py``
holds the two paths to identical output on valid and mutated messages.

Why a message can take the exact path: it is not bytes starting with ``{``, or
contains a line break; it sits in a chunk that Arrow rejects (bad JSON, wrong
type, unknown field, duplicate key; chunks are halved until the culprits are
isolated); a field is null or missing (defaults are :func:`decode`'s business);
a version, ``kind``, range or finiteness check fails; its state is not valid
fp16 base64; it carries the gray zone's resolution (version 3).
"""

from __future__ import annotations

import base64
import binascii
import io
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj

from collectors.wire.events import (
    MAX_TS,
    MIN_TS,
    READ_VERSIONS,
    STATE_DTYPE,
    EventDecodeError,
    LabelEvent,
    decode,
)
from monitor.store.schema import EVENT_OPTIONAL, EVENT_SCHEMA, LABEL_SCHEMA, STATE_SCHEMA
from monitor.store.writes import events_to_arrow, labels_to_arrow

#: The union of the event and label fields as Arrow parses them, plus ``kind``.
WIRE_SCHEMA = pa.schema(
    [("kind", pa.string())]
    + [f for f in EVENT_SCHEMA if f.name != "schema_version"]
    + [("state", pa.string()), ("schema_version", pa.int64())]
    + [("correct", pa.bool_()), ("source", pa.string())]
)
_EVENT_ONLY = [n for n in EVENT_SCHEMA.names if n not in LABEL_SCHEMA.names + ["schema_version"]]
_EVENT_ONLY.append("state")
_LABEL_ONLY = [n for n in LABEL_SCHEMA.names if n not in EVENT_SCHEMA.names]
_PARSE = pj.ParseOptions(explicit_schema=WIRE_SCHEMA, unexpected_field_behavior="error")
MIN_CHUNK = 16  # below this many messages, a rejected chunk goes to the exact decoder


@dataclass
class DecodedBatch:
    """The rows of one batch of messages.

    Attributes
    ----------
    events, states, labels : pyarrow.Table
        ``EVENT_SCHEMA``, ``STATE_SCHEMA`` and ``LABEL_SCHEMA`` rows, in message order.
    errors : list of (int, str)
        Index of each message that did not decode, and :func:`decode`'s error.
    n_exact : int
        Messages that went through :func:`decode` (whether they decoded or not).
    event_positions : ndarray of shape (n_events,), int64
        Message index of each ``events`` row.
    """

    events: pa.Table
    states: pa.Table
    labels: pa.Table
    errors: list[tuple[int, str]] = field(default_factory=list)
    n_exact: int = 0
    event_positions: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))


def _candidates(values: list[bytes | None]) -> tuple[np.ndarray, bytes | None]:
    """Indices of the messages Arrow may parse (bytes, starting with ``{``, no line break),
    and, when that is all of them, their newline-joined text."""
    if values and None not in values and b"" not in values:
        try:
            joined = b"\n".join(values)
        except TypeError:  # not all bytes
            joined = None
        if (
            joined is not None
            and joined.count(b"\n") == len(values) - 1
            and b"\r" not in joined
            and joined[:1] == b"{"
            and joined.count(b"\n{") == len(values) - 1
        ):  # the usual case, checked in a few passes over the joined text
            return np.arange(len(values), dtype=np.int64), joined
    index = [
        i
        for i, v in enumerate(values)
        if isinstance(v, bytes) and v[:1] == b"{" and b"\n" not in v and b"\r" not in v
    ]
    return np.asarray(index, dtype=np.int64), None


def _parse_chunks(
    values: list[bytes], index: np.ndarray, joined: bytes | None = None
) -> tuple[list, list[int]]:
    """Parse ``values[index]`` with Arrow, halving rejected chunks; return tables and leftovers.

    ``joined`` is ``b"\\n".join(values[index])`` when the caller already has it.
    """
    tables, leftovers = [], []
    stack = [index]
    while stack:
        idx = stack.pop()
        try:
            if joined is not None and len(idx) == len(index):
                data = joined
            else:
                data = b"\n".join([values[i] for i in idx])
            read = pj.ReadOptions(use_threads=True, block_size=max(1 << 20, len(data) // 2 + 1))
            table = pj.read_json(io.BytesIO(data), read_options=read, parse_options=_PARSE)
            # every message starts with "{" so yields >= 1 row or an error;
            # equal counts therefore mean exactly one row per message, aligned
            if table.num_rows != len(idx):
                raise ValueError("row count differs from message count")
            tables.append((idx, table))
        except (pa.ArrowException, ValueError, TypeError, UnicodeDecodeError, RecursionError):
            if len(idx) <= MIN_CHUNK:
                leftovers.extend(int(i) for i in idx)
            else:
                half = len(idx) // 2
                stack += [idx[half:], idx[:half]]  # first half popped first: order kept
    return tables, leftovers


def _all_valid(table: pa.Table, names: list[str]) -> pa.ChunkedArray | pa.Array:
    masks = [pc.is_valid(table.column(n)) for n in names]
    out = masks[0]
    for m in masks[1:]:
        out = pc.and_(out, m)
    return out


def _all_null(table: pa.Table, names: list[str]) -> pa.ChunkedArray | pa.Array:
    out = pc.is_null(table.column(names[0]))
    for n in names[1:]:
        out = pc.and_(out, pc.is_null(table.column(n)))
    return out


def _plausible_ts(col: pa.ChunkedArray) -> pa.ChunkedArray:
    """Finite and within [MIN_TS, MAX_TS], as :func:`collectors.wire.events.decode` requires."""
    inside = pc.and_(pc.greater_equal(col, MIN_TS), pc.less_equal(col, MAX_TS))
    return pc.and_(_finite(col), pc.fill_null(inside, False))


def _finite(col: pa.ChunkedArray) -> pa.ChunkedArray:
    return pc.fill_null(pc.is_finite(col), False)


def _masks(table: pa.Table) -> tuple[np.ndarray, np.ndarray]:
    """Rows the fast path keeps as events and as labels (everything else: exact path)."""
    kind = table.column("kind")
    version = table.column("schema_version")
    known = pc.fill_null(pc.is_in(version, pa.array(READ_VERSIONS, pa.int64())), False)
    state_ok = pc.or_(  # base64 states from version 2 on
        pc.is_null(table.column("state")), pc.greater_equal(version, pa.scalar(2, pa.int64()))
    )
    event_required = [n for n in EVENT_SCHEMA.names if n not in EVENT_OPTIONAL]
    is_event = pc.and_(
        pc.fill_null(pc.equal(kind, "event"), False),
        pc.and_(  # gray-zone fields (version 3, a minority of events) take the exact path
            _all_valid(table, event_required),
            _all_null(table, _LABEL_ONLY + list(EVENT_OPTIONAL)),
        ),
    )
    event_ok = pc.and_(
        pc.and_(is_event, pc.and_(known, pc.fill_null(state_ok, False))),
        pc.and_(
            pc.and_(_plausible_ts(table.column("ts")), _finite(table.column("raw_logit"))),
            pc.and_(
                pc.fill_null(
                    pc.and_(
                        pc.greater_equal(table.column("confidence"), 0.0),
                        pc.less_equal(table.column("confidence"), 1.0),
                    ),
                    False,
                ),
                pc.fill_null(pc.greater_equal(table.column("layer"), 0), False),
            ),
        ),
    )
    label_required = [n for n in LABEL_SCHEMA.names] + ["schema_version"]
    label_ok = pc.and_(
        pc.and_(
            pc.fill_null(pc.equal(kind, "label"), False),
            pc.and_(_all_valid(table, label_required), _all_null(table, _EVENT_ONLY)),
        ),
        pc.and_(known, _plausible_ts(table.column("ts"))),
    )
    return (
        np.asarray(event_ok.to_numpy(zero_copy_only=False), dtype=bool),
        np.asarray(label_ok.to_numpy(zero_copy_only=False), dtype=bool),
    )


def _states(events: pa.Table) -> tuple[pa.Table, np.ndarray]:
    """fp16 states of ``events`` rows that carry one, and a mask of rows whose state is bad."""
    texts = events.column("state").to_pylist()
    rows = [i for i, t in enumerate(texts) if t is not None]
    bad = np.zeros(events.num_rows, dtype=bool)
    blobs: list[bytes] = []
    kept: list[int] = []
    for i in rows:
        try:
            blob = base64.b64decode(texts[i], validate=True)
        except (binascii.Error, ValueError):
            bad[i] = True
            continue
        if len(blob) == 0 or len(blob) % 2:
            bad[i] = True
            continue
        blobs.append(blob)
        kept.append(i)
    if blobs:
        values = np.frombuffer(b"".join(blobs), dtype=STATE_DTYPE)
        lengths = np.array([len(b) // 2 for b in blobs])
        starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
        nonfinite = np.add.reduceat(~np.isfinite(values), starts) > 0
        for j in np.flatnonzero(nonfinite):
            bad[kept[j]] = True
        ok = [j for j in range(len(kept)) if not nonfinite[j]]
    else:
        lengths, ok = np.zeros(0, dtype=np.int64), []
    take = pa.array([kept[j] for j in ok], pa.int64())
    states = pa.Table.from_arrays(
        [
            events.column("event_id").take(take),
            events.column("ts").take(take),
            pa.array(lengths[ok] if len(ok) else [], pa.int32()),
            pa.array([blobs[j] for j in ok], pa.binary()),
        ],
        schema=STATE_SCHEMA,
    )
    return states, bad


def _exact(values: list[bytes | None], indices: list[int], out: DecodedBatch) -> tuple:
    """Decode ``values[indices]`` one by one; return (event rows, label rows) with positions."""
    events, event_pos, labels, label_pos = [], [], [], []
    for i in indices:
        raw = values[i]
        try:
            if raw is None:
                raise EventDecodeError("empty message (null value)")
            obj = decode(raw)
        except EventDecodeError as exc:
            out.errors.append((i, str(exc)))
            continue
        except Exception as exc:  # noqa: BLE001 - a decoder bug must dead-letter, not stop ingest
            out.errors.append((i, f"decoder failed: {type(exc).__name__}: {str(exc)[:200]}"))
            continue
        if isinstance(obj, LabelEvent):
            labels.append(obj)
            label_pos.append(i)
        else:
            events.append(obj)
            event_pos.append(i)
    out.n_exact += len(indices)
    return events, event_pos, labels, label_pos


def _ordered(parts: list[tuple[np.ndarray, pa.Table]], schema: pa.Schema) -> pa.Table:
    parts = [(p, t) for p, t in parts if t.num_rows]
    if not parts:
        return schema.empty_table()
    table = pa.concat_tables([t.select(schema.names).cast(schema) for _, t in parts])
    if len(parts) == 1:
        return table
    order = np.argsort(np.concatenate([p for p, _ in parts]), kind="stable")
    return table.take(pa.array(order))


def decode_batch(values: list[bytes | None]) -> DecodedBatch:
    """Decode a batch of message values into Arrow rows and errors.

    Parameters
    ----------
    values : list of bytes or None
        Message values in consumption order (``None`` for a null value).

    Returns
    -------
    DecodedBatch
        Events (without states), states, labels, and the errors of messages
        that :func:`collectors.wire.events.decode` rejects.
    """
    out = DecodedBatch(
        EVENT_SCHEMA.empty_table(), STATE_SCHEMA.empty_table(), LABEL_SCHEMA.empty_table()
    )
    candidates, joined = _candidates(values)
    exact = []
    if len(candidates) < len(values):
        exact = sorted(set(range(len(values))) - set(candidates.tolist()))
    tables, leftovers = _parse_chunks(values, candidates, joined) if len(candidates) else ([], [])
    ev_parts, st_parts, lb_parts = [], [], []
    exact += leftovers
    for idx, table in tables:
        try:
            parts = _fast_rows(idx, table)
        except Exception:  # noqa: BLE001 - an odd chunk goes the exact way, message by message
            exact += idx.tolist()
            continue
        ev_part, st_part, lb_part, rejected = parts
        ev_parts.append(ev_part)
        st_parts.append(st_part)
        lb_parts.append(lb_part)
        exact += rejected
    if exact:
        ex_events, ex_ev_pos, ex_labels, ex_lb_pos = _exact(values, sorted(exact), out)
        ev_table, st_table = events_to_arrow(ex_events)
        ev_parts.append((np.asarray(ex_ev_pos, dtype=np.int64), ev_table))
        with_state = [p for p, e in zip(ex_ev_pos, ex_events) if e.state is not None]
        st_parts.append((np.asarray(with_state, dtype=np.int64), st_table))
        lb_parts.append((np.asarray(ex_lb_pos, dtype=np.int64), labels_to_arrow(ex_labels)))
    out.events = _ordered(ev_parts, EVENT_SCHEMA)
    out.event_positions = np.sort(
        np.concatenate([np.asarray(p, dtype=np.int64) for p, _ in ev_parts] or [np.zeros(0)])
    ).astype(np.int64)
    out.states = _ordered(st_parts, STATE_SCHEMA)
    out.labels = _ordered(lb_parts, LABEL_SCHEMA)
    out.errors.sort()
    return out


def _fast_rows(idx: np.ndarray, table: pa.Table) -> tuple:
    """Event, state and label rows of one Arrow-parsed chunk, and the indices to decode exactly."""
    event_ok, label_ok = _masks(table)
    events = table.filter(pa.array(event_ok))
    states, bad_state = _states(events)
    ev_idx = idx[event_ok]
    rejected = idx[~(event_ok | label_ok)].tolist()
    if bad_state.any():
        rejected += ev_idx[bad_state].tolist()
        events = events.filter(pa.array(~bad_state))
        ev_idx = ev_idx[~bad_state]
    return (
        (ev_idx, events),
        (_state_positions(states, events, ev_idx), states),
        (idx[label_ok], table.filter(pa.array(label_ok))),
        rejected,
    )


def _state_positions(states: pa.Table, events: pa.Table, ev_idx: np.ndarray) -> np.ndarray:
    """Message index of each state row (states keep the order of their events)."""
    has_state = np.asarray(pc.is_valid(events.column("state")).to_numpy(zero_copy_only=False))
    positions = ev_idx[has_state]
    assert len(positions) == states.num_rows
    return positions
