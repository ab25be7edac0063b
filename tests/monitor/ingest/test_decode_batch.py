"""A poll decoded as a batch gives exactly what decoding each message gives, in Arrow rows."""

import base64
import dataclasses
import json

import msgspec
import numpy as np
import pyarrow as pa

from collectors.wire.codec import decode, encode
from collectors.wire.events import EventDecodeError, LabelEvent
from monitor.ingest.decode import decode_batch
from monitor.store.writes import events_to_arrow, labels_to_arrow


def _expected(values):
    events, labels, errors = [], [], []
    for i, raw in enumerate(values):
        try:
            if raw is None:
                raise EventDecodeError("empty message (null value)")
            obj = decode(raw)
        except EventDecodeError as exc:
            errors.append((i, str(exc)))
            continue
        (labels if isinstance(obj, LabelEvent) else events).append(obj)
    event_table, state_table = events_to_arrow(events)
    return event_table, state_table, labels_to_arrow(labels), errors


def _assert_same(values):
    got = decode_batch(values)
    events, states, labels, errors = _expected(values)
    assert got.errors == errors
    assert got.events.equals(events), (got.events.to_pylist()[:3], events.to_pylist()[:3])
    assert got.states.equals(states)
    assert got.labels.equals(labels)
    return got


def _base(make_event, make_label, version=3):
    rng = np.random.default_rng(0)
    return {
        "event": encode(make_event(1), version),
        "state": encode(make_event(2, state=rng.normal(size=16).tolist()), version),
        "label": encode(make_label(3), version),
        "gray": encode(dataclasses.replace(make_event(4), decision="self_consistency",
                                           route="fallback", consistency=0.4, consistency_k=5),
                       version),
    }  # fmt: skip


BAD_VALUES = (None, "x", 1, 1.5, True, [1], {"a": 1}, -1, 2**40, 1e308, b"\x00\x3c")


def _packed_mutations(make_event, make_label):
    """Every field of every version-4 message missing, and set to every wrong value."""
    base = _base(make_event, make_label, 4)
    out = list(base.values())
    for raw in base.values():
        body = msgspec.msgpack.decode(raw)
        for key in [*body, "extra"]:
            out.append(msgspec.msgpack.encode({k: v for k, v in body.items() if k != key}))
            out += [msgspec.msgpack.encode({**body, key: bad}) for bad in BAD_VALUES]
    nan = np.asarray([1.0, np.nan], "<f2").tobytes()
    ev = msgspec.msgpack.decode(base["event"])
    out += [msgspec.msgpack.encode({**ev, "state": s}) for s in (nan, b"\x00", b"", b"\x00" * 8)]
    return out


def _mutations(make_event, make_label):
    base = _base(make_event, make_label)
    ev, st, lb, gz = (json.loads(base[k]) for k in ("event", "state", "label", "gray"))
    dumps = lambda d: json.dumps(d, separators=(",", ":")).encode()  # noqa: E731
    fp16 = lambda a: base64.b64encode(np.asarray(a, "<f2").tobytes()).decode()  # noqa: E731
    out = list(base.values())
    out.append(dumps({**ev, "route": "serve"}))  # a version-3 field in a version-2 message
    for body in (ev, st, lb, gz):
        for key in body:
            out.append(dumps({k: v for k, v in body.items() if k != key}))  # missing field
            for bad in BAD_VALUES[:-1]:
                out.append(dumps({**body, key: bad}))  # every field, every wrong value
    out += [
        dumps({**ev, "schema_version": 1}),  # version 1 without a state: same meaning
        dumps({**st, "schema_version": 1}),  # version 1 with base64: wrong
        dumps({**ev, "schema_version": 1, "state": [0.5, 1, -2.25]}),  # version 1 list state
        dumps({**ev, "state": [0.5, 1.0]}),  # list state in version 2
        dumps({**ev, "state": fp16([1.0, np.inf])}),
        dumps({**ev, "state": fp16([np.nan, 1.0])}),
        dumps({**ev, "state": fp16([1.0, 2.0]) + "="}),
        dumps({**ev, "state": base64.b64encode(b"\x00\x01\x02").decode()}),  # odd byte count
        dumps({**ev, "state": ""}),
        dumps({**ev, "state": "@@@@"}),
        dumps({**ev, "confidence": 1.0000001}),
        dumps({**ev, "confidence": 0}),
        dumps({**ev, "ts": 1700000000}),
        dumps({**ev, "tag": "é \u2603 \U0001f600", "answer": 'quote " and \\ backslash'}),
        dumps({**ev, "kind": "metric"}),
        dumps({**ev, "extra": 1}),
        dumps({**lb, "confidence": 0.5}),  # an event field on a label
        dumps({**ev, "correct": True}),  # a label field on an event
        base["event"].replace(b'"tag":"t"', b'"tag":"t","tag":"u"'),  # duplicate key
        base["event"].replace(b'"raw_logit":0.1', b'"raw_logit":NaN'),
        base["event"].replace(b'"ts":', b'"ts":Infinity,"x":'),
        base["event"].replace(b'"ts":1700000001.0', b'"ts":1e400'),
        base["event"].replace(b'"tag":"t"', b'"tag":"\\ud800"'),  # lone surrogate
        base["event"].replace(b'"tag":"t"', b'"tag":"\xff"'),  # not UTF-8
        base["event"].replace(b'"tag":"t"', b'"tag":"a\tb"'),  # raw control character
        b"\xef\xbb\xbf" + base["event"],  # UTF-8 byte order mark
        b" " + base["event"],
        base["event"] + b" ",
        base["event"] + base["label"],  # two objects in one message
        base["event"][:-1] + b"\n}",  # a line break inside
        json.dumps(ev, indent=2).encode(),
        base["event"][:40],
        b"{}",
        b"[]",
        b"3",
        b"null",
        b"",
        b"   ",
        None,
        "é".encode("utf-16"),
        json.dumps(ev).encode("utf-16-le"),
    ]
    return out


def test_a_valid_batch_of_every_kind_and_version(make_event, make_label):
    rng = np.random.default_rng(1)
    values = []
    for version in (4, 3):  # collectors of this release and of earlier ones, mixed
        values += [
            encode(make_event(i), version) for i in range(500 * version, 500 * version + 250)
        ]
        values += [
            encode(make_event(i, state=rng.normal(size=64).tolist()), version)
            for i in range(500 * version + 250, 500 * version + 350)
        ]
        values += [
            encode(make_label(i), version) for i in range(150 * version, 150 * version + 150)
        ]
    values = [values[i] for i in rng.permutation(len(values))]
    got = _assert_same(values)
    assert (got.events.num_rows, got.states.num_rows, got.labels.num_rows) == (700, 200, 300)
    assert sorted(set(got.events.column("schema_version").to_pylist())) == [2, 4]


def test_every_mutation_gets_the_per_message_verdict(make_event, make_label):
    for values in (_mutations(make_event, make_label), _packed_mutations(make_event, make_label)):
        got = _assert_same(values)
        assert len(got.errors) > 100 and got.events.num_rows > 3  # both outcomes are exercised
        valid = [encode(make_event(i)) for i in range(10, 2010)]
        rng = np.random.default_rng(2)
        mixed = valid + values  # mixed into a large valid batch: each bad one isolated
        mixed = [mixed[i] for i in rng.permutation(len(mixed))]
        got = _assert_same(mixed)
        assert got.events.num_rows >= 2000
        kept = set(got.event_positions.tolist())
        assert kept.isdisjoint(i for i, _ in got.errors)
        assert len(kept) + len(got.errors) + got.labels.num_rows == len(mixed)


def test_random_byte_corruption_gets_the_per_message_verdict(make_event, make_label):
    rng = np.random.default_rng(3)
    base = [*_base(make_event, make_label).values(), *_base(make_event, make_label, 4).values()]
    values = []
    for _ in range(1500):
        raw = bytearray(base[rng.integers(len(base))])
        for _ in range(rng.integers(1, 4)):
            pos = int(rng.integers(len(raw)))
            op = rng.integers(3)
            if op == 0:
                raw[pos] = int(rng.integers(256))
            elif op == 1:
                del raw[pos]
            else:
                raw.insert(pos, int(rng.choice(list(b'{}[]",:0123456789eE.-+ \\tnul\x80\xde\xc3'))))
        values.append(bytes(raw))
    got = _assert_same(values)
    assert got.errors and got.events.num_rows  # some survive a corruption (e.g. in a digit)


def test_empty_batch():
    got = decode_batch([])
    assert got.events.num_rows == got.labels.num_rows == got.states.num_rows == 0
    assert got.errors == [] and isinstance(got.events, pa.Table)
