"""Property-based fuzzing of the wire decoder: every input, JSON or MessagePack, is a row or a
dead letter, never an exception; a batch and its messages one by one agree."""

from __future__ import annotations

import json

import msgspec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from collectors.wire.codec import decode, encode
from collectors.wire.events import EventDecodeError, LabelEvent, ScoredEvent
from monitor.ingest.decode import decode_batch

EVENT = json.loads(
    encode(
        ScoredEvent(
            event_id="e1", ts=1_700_000_000.0, model_id="m", probe_version="v1", layer=3,
            pooling="last_prompt_token", raw_logit=0.3, confidence=0.7, decision="serve",
            state=[0.5, -1.0, 2.0, 0.0],
        ),
        3,
    )
)  # fmt: skip
GRAY = json.loads(
    encode(
        ScoredEvent(
            event_id="e2",
            ts=1_700_000_001.0,
            model_id="m",
            probe_version="v1",
            layer=3,
            pooling="last_prompt_token",
            raw_logit=0.0,
            confidence=0.5,
            decision="self_consistency",
            route="serve",
            consistency=0.8,
            consistency_k=5,
        ),
        3,
    )
)  # fmt: skip  (wire version 3: the gray zone's resolution)
LABEL = json.loads(encode(LabelEvent("e1", True, 1_700_000_100.0, "review"), 3))
PACKED = [
    msgspec.msgpack.decode(encode(decode(json.dumps(m).encode()))) for m in (EVENT, GRAY, LABEL)
]


def _values(scalars: st.SearchStrategy) -> st.SearchStrategy:
    return st.recursive(
        scalars,
        lambda inner: (
            st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
        ),
        max_leaves=12,
    )


json_values = _values(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
packed_values = _values(  # what MessagePack can hold: 64-bit integers, NaN, bytes
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats()
    | st.text(max_size=20)
    | st.binary(max_size=12)
)
POISON = [
    b"[" * 50_000 + b"]" * 50_000,
    b'{"a":' * 3_000 + b"1" + b"}" * 3_000,
    b'{"kind":"event","schema_version":2,"ts":' + b"9" * 6_000 + b"}",
    b'{"kind":"event","schema_version":2,"ts":1e999}',
    json.dumps({**EVENT, "ts": 0.0}).encode(),  # 1970
    json.dumps({**EVENT, "ts": -1e300}).encode(),
    json.dumps({**EVENT, "confidence": 1e308}).encode(),
    b"{" + b" " * (2 << 20) + b"}",  # over the size limit
    b"\xff\xfe{}",
]


def _mutated(base: dict, dumps=lambda d: json.dumps(d).encode()) -> st.SearchStrategy[bytes]:
    keys = st.sampled_from(sorted(base) + ["extra"])
    values = packed_values if dumps is msgspec.msgpack.encode else json_values
    return st.builds(
        lambda k, v, drop: dumps(
            {kk: vv for kk, vv in {**base, k: v}.items() if not (drop and kk == k)}
        ),
        keys, values, st.booleans(),
    )  # fmt: skip


messages = st.one_of(
    st.just(json.dumps(EVENT).encode()),
    st.just(json.dumps(LABEL).encode()),
    st.just(json.dumps(GRAY).encode()),
    _mutated(EVENT),
    _mutated(GRAY),
    _mutated(LABEL),
    *(_mutated(m, msgspec.msgpack.encode) for m in PACKED),
    st.sampled_from([msgspec.msgpack.encode(m) for m in PACKED]),
    packed_values.map(msgspec.msgpack.encode),
    st.sampled_from(POISON),
    st.binary(max_size=64),
    json_values.map(lambda v: json.dumps(v).encode()),
    st.none(),
)


def _single(raw: bytes | None) -> str:
    if raw is None:
        return "error"
    try:
        obj = decode(raw)
    except EventDecodeError:
        return "error"
    return "label" if isinstance(obj, LabelEvent) else "event"


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(messages, min_size=1, max_size=12))
def test_every_message_is_a_row_or_a_dead_letter_and_both_paths_agree(values):
    kinds = [_single(v) for v in values]  # raises (fails the test) on anything but a decode error
    out = decode_batch(values)
    assert out.events.num_rows + out.labels.num_rows + len(out.errors) == len(values)
    assert out.events.num_rows == kinds.count("event")
    assert out.labels.num_rows == kinds.count("label")
    assert sorted(i for i, _ in out.errors) == [i for i, k in enumerate(kinds) if k == "error"]
    assert all(isinstance(err, str) and err for _, err in out.errors)


def test_each_poison_message_is_a_dead_letter_naming_why():
    out = decode_batch(list(POISON) + [json.dumps(EVENT).encode()])
    assert out.events.num_rows == 1 and len(out.errors) == len(POISON)
    reasons = " | ".join(e for _, e in out.errors)
    for word in ("field 'ts'", "Expected `object`", "exceeds", "not UTF-8 JSON", "recursion"):
        assert word in reasons, reasons
