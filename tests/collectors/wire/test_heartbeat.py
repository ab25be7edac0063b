"""The collector heartbeat's wire format: round trip, and every other input a named error."""

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collectors.wire.heartbeat import (
    CollectorHeartbeat,
    HeartbeatDecodeError,
    decode_heartbeat,
    encode_heartbeat,
)

BEAT = CollectorHeartbeat("host:1", 1_700_000_000.5, "m", sent=10, dropped=2, spilled=3,
                          spill_bytes=4096, connected=False)  # fmt: skip


def test_round_trip():
    assert decode_heartbeat(encode_heartbeat(BEAT)) == BEAT


@pytest.mark.parametrize(
    "change, named",
    [
        ({"kind": "event"}, "kind"),
        ({"schema_version": 9}, "schema_version"),
        ({"sent": -1}, "'sent'"),
        ({"dropped": 1.5}, "'dropped'"),
        ({"spilled": True}, "'spilled'"),
        ({"ts": "now"}, "'ts'"),
        ({"collector_id": ""}, "'collector_id'"),
        ({"connected": 1}, "'connected'"),
        ({"extra": 1}, "unknown field"),
    ],
)
def test_a_bad_field_is_named(change, named):
    body = {**json.loads(encode_heartbeat(BEAT)), **change}
    with pytest.raises(HeartbeatDecodeError, match=named):
        decode_heartbeat(json.dumps(body).encode())


def test_missing_and_non_finite_fields_are_named():
    body = json.loads(encode_heartbeat(BEAT))
    del body["collector_id"]
    with pytest.raises(HeartbeatDecodeError, match="missing"):
        decode_heartbeat(json.dumps(body).encode())
    raw = encode_heartbeat(BEAT).replace(b"1700000000.5", b"NaN")
    with pytest.raises(HeartbeatDecodeError, match="not finite"):
        decode_heartbeat(raw)


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=6)
    ),  # fmt: skip
    max_leaves=20,
)


_FIELDS = list(json.loads(encode_heartbeat(BEAT)))
_near = st.dictionaries(st.sampled_from(_FIELDS), _json, max_size=len(_FIELDS)).map(
    lambda d: json.dumps({**json.loads(encode_heartbeat(BEAT)), **d, "kind": "heartbeat"}).encode()
)  # every field of a heartbeat, some replaced by any JSON value


@settings(max_examples=400, deadline=None)
@given(st.one_of(st.binary(max_size=300), _json.map(lambda v: json.dumps(v).encode()), _near))
def test_any_input_is_a_heartbeat_or_a_named_error(raw):
    try:
        beat = decode_heartbeat(raw)
    except HeartbeatDecodeError as exc:
        assert str(exc)
    else:
        assert isinstance(beat, CollectorHeartbeat) and beat.collector_id
