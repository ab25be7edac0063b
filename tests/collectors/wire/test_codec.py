"""The one codec: every wire version round-trips or is read, and every bad field is named."""

from __future__ import annotations

import base64
import dataclasses
import json

import msgspec
import numpy as np
import pytest

from collectors.wire.codec import MAX_MESSAGE_BYTES, decode, encode
from collectors.wire.events import EventDecodeError, LabelEvent, ScoredEvent, pack_state

STATE = [0.5, -1.0, 2.0, 0.0, 65504.0, -0.25]  # every value exact in fp16
EVENT = ScoredEvent(
    event_id="e1", ts=1_700_000_000.5, model_id="m", probe_version="v1", layer=3,
    pooling="last_prompt_token", raw_logit=-0.3, confidence=0.7, decision="serve",
    answer="yes", tag="route-a", state=STATE,
)  # fmt: skip
GRAY = dataclasses.replace(
    EVENT, event_id="e2", state=None, decision="self_consistency", route="fallback",
    consistency=0.4, consistency_k=5,
)  # fmt: skip
LABEL = LabelEvent("e1", True, 1_700_000_100.0, "review")


@pytest.mark.parametrize("version", [2, 3, 4])
@pytest.mark.parametrize("event", [EVENT, GRAY, LABEL, dataclasses.replace(EVENT, state=None)])
def test_every_written_version_round_trips(event, version):
    back = decode(encode(event, version))
    assert back == event  # dataclass equality: every field but the wire's schema_version
    want = 4 if version == 4 else (3 if event is GRAY else 2)
    assert back.schema_version == want


def test_version_4_carries_the_state_as_raw_fp16_bytes():
    raw = encode(EVENT)
    assert raw[0] in (0xDE, *range(0x80, 0x90))  # a MessagePack map
    assert pack_state(STATE) in raw  # the bytes themselves, no base64
    body = msgspec.msgpack.decode(raw)
    assert body["schema_version"] == 4 and body["state"] == pack_state(STATE)
    assert "route" not in body and "consistency" not in body  # defaults are left out
    wide = dataclasses.replace(EVENT, state=np.linspace(-3, 3, 512))
    assert len(encode(wide)) < len(encode(wide, 3)) - 300  # 1,024 bytes instead of 1,368


def test_messages_of_earlier_releases_are_read():
    v1 = {**json.loads(encode(EVENT, 2)), "schema_version": 1, "state": STATE}
    assert decode(json.dumps(v1).encode()) == EVENT
    v2 = json.loads(encode(EVENT, 2))
    del v2["schema_version"]  # no version named: read as 3
    back = decode(json.dumps(v2, indent=2).encode())
    assert back == EVENT and back.schema_version == 3
    gray = json.dumps({**json.loads(encode(GRAY, 3)), "ts": 1_700_000_000}).encode()
    assert decode(gray) == dataclasses.replace(GRAY, ts=1_700_000_000.0)  # an integer time


def test_numpy_scalars_and_arrays_are_encoded():
    event = dataclasses.replace(
        EVENT, ts=np.float64(EVENT.ts), raw_logit=np.float32(-0.25), confidence=np.float32(0.5),
        layer=np.int64(3), state=np.asarray(STATE, dtype=np.float32),
    )  # fmt: skip
    assert decode(encode(event)) == dataclasses.replace(
        EVENT, raw_logit=-0.25, confidence=0.5, layer=3
    )


@pytest.mark.parametrize("version", [2, 4])
@pytest.mark.parametrize(
    "change",
    [{"ts": float("nan")}, {"raw_logit": float("inf")}, {"confidence": float("nan")},
     {"state": [1.0, float("nan")]}, {"state": []}],
)  # fmt: skip
def test_encode_refuses_what_no_monitor_would_read(change, version):
    with pytest.raises(ValueError):
        encode(dataclasses.replace(EVENT, **change), version)


@pytest.mark.parametrize("version", [1, 5, "4"])
def test_encode_refuses_an_unknown_version(version):
    with pytest.raises(ValueError, match="wire version"):
        encode(EVENT, version)


def _packed(**change) -> bytes:
    body = {**msgspec.msgpack.decode(encode(EVENT)), **change}
    return msgspec.msgpack.encode({k: v for k, v in body.items() if v is not ...})


def _json(**change) -> bytes:
    body = {**json.loads(encode(EVENT, 2)), **change}
    return json.dumps({k: v for k, v in body.items() if v is not ...}).encode()


fp16 = np.asarray
BAD = {
    # MessagePack (version 4): each field's type and range
    "packed confidence": (_packed(confidence=1.5), "field 'confidence'"),
    "packed NaN logit": (_packed(raw_logit=float("nan")), "field 'raw_logit'"),
    "packed inf ts": (_packed(ts=float("inf")), "field 'ts'"),
    "packed 1970": (_packed(ts=0.0), "field 'ts'"),
    "packed bool ts": (_packed(ts=True), "field 'ts'"),
    "packed float layer": (_packed(layer=3.0), "field 'layer'"),
    "packed negative layer": (_packed(layer=-1), "field 'layer'"),
    "packed huge layer": (_packed(layer=2**31), "field 'layer'"),
    "packed missing id": (_packed(event_id=...), "event_id"),
    "packed missing version": (_packed(schema_version=...), "schema_version"),
    "packed unknown field": (_packed(extra=1), "extra"),
    "packed unknown kind": (_packed(kind="metric"), "unknown kind 'metric'"),
    "packed version 2": (_packed(schema_version=2), "schema_version 2 is written as JSON"),
    "packed version 9": (_packed(schema_version=9), "unsupported schema_version 9"),
    "packed text state": (_packed(state="AAA="), "field 'state'"),
    "packed odd state": (_packed(state=b"\x00\x01\x02"), "positive even byte count"),
    "packed empty state": (_packed(state=b""), "positive even byte count"),
    "packed NaN state": (_packed(state=fp16([1, np.nan], "<f2").tobytes()), "NaN or infinite"),
    "packed inf state": (_packed(state=fp16([np.inf], "<f2").tobytes()), "NaN or infinite"),
    "packed bytes as text": (_packed(tag=b"t"), "field 'tag'"),
    "packed bad k": (_packed(consistency_k=0), "field 'consistency_k'"),
    "packed bad consistency": (_packed(consistency=2.0), "field 'consistency'"),
    "packed not UTF-8": (encode(EVENT).replace(b"\xa7route-a", b"\xa7route-\xff"), "UTF-8"),
    "packed truncated": (encode(EVENT)[:-3], "MessagePack"),
    "packed trailing": (encode(EVENT) + b"\x00", "trailing"),
    "packed label as event": (_packed(correct=True), "correct"),
    # JSON (versions 1 to 3)
    "json wrong type": (_json(confidence="high"), "field 'confidence'"),
    "json version 4": (_json(schema_version=4), "schema_version 4 is written as MessagePack"),
    "json version 99": (_json(schema_version=99), "unsupported schema_version 99"),
    "json gray in 2": (_json(route="serve"), "need schema_version 3"),
    "json list in 2": (_json(state=[0.5, 1.0]), "base64 text"),
    "json base64 in 1": (_json(schema_version=1), "a list of numbers"),
    "json bad base64": (_json(state="@@@@"), "field 'state'"),
    "json NaN state": (
        _json(state=base64.b64encode(fp16([np.nan], "<f2").tobytes()).decode()),
        "NaN or infinite",
    ),  # fmt: skip
    "json empty list state": (_json(schema_version=1, state=[]), "state"),
    "json NaN literal": (_json().replace(b'"raw_logit": -0.3', b'"raw_logit": NaN'), "JSON"),
    "json 1e400": (_json().replace(b'"raw_logit": -0.3', b'"raw_logit": 1e400'), "raw_logit"),
    "json lone surrogate": (_json(tag="\ud800"), "JSON"),
    "json not UTF-8": (_json(tag="t").replace(b'"t"', b'"\xff"'), "UTF-8"),
    "json two objects": (_json() + _json(), "trailing"),
    "json array": (b"[]", "object"),
    "json nested": (b"[" * 50_000 + b"]" * 50_000, "object"),
    "json deep unknown": (b'{"a":' * 3_000 + b"1" + b"}" * 3_000, "JSON"),
    "json long integer": (_json().replace(b'"layer": 3', b'"layer": ' + b"9" * 5_000), "layer"),
    # whatever the encoding
    "empty": (b"", "empty message"),
    "too big": (b"{" + b" " * MAX_MESSAGE_BYTES + b"}", "exceeds"),
    "not bytes": ("{}", "expected bytes"),
    "utf-16": (json.dumps(json.loads(_json())).encode("utf-16"), "JSON"),
}


@pytest.mark.parametrize("name", sorted(BAD))
def test_each_bad_message_is_refused_naming_what_was_wrong(name):
    raw, named = BAD[name]
    with pytest.raises(EventDecodeError) as info:
        decode(raw)
    assert named in str(info.value), str(info.value)


def test_the_boundaries_themselves_are_valid():
    for change in ({"confidence": 0}, {"confidence": 1.0}, {"ts": 946_684_800}, {"layer": 0},
                   {"layer": 2**31 - 1}, {"ts": 4_102_444_800.0}):  # fmt: skip
        for raw in (_packed(**change), _json(**change)):
            assert isinstance(decode(raw), ScoredEvent)
