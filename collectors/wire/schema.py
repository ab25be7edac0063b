"""The wire schema: every field, its type and its range, as msgspec structs.

Two encodings share one set of field names and checks:

- **JSON** (wire versions 1 to 3, what earlier releases wrote): a UTF-8 JSON object.
  Version 1 carries ``state`` as a list of numbers, 2 and 3 as the base64 text of
  its fp16 bytes; 3 adds the gray zone's resolution (``route``, ``consistency``,
  ``consistency_k``). A message that names no version is read as 3.
- **MessagePack** (wire version 4, what :func:`collectors.wire.codec.encode` writes):
  a map with the same keys, ``schema_version`` required, ``state`` the raw
  little-endian fp16 bytes as a ``bin`` (1,024 bytes for 512 dimensions instead of
  1,368 characters of base64 inside JSON), fields at their default omitted.

The first byte tells them apart: a MessagePack map starts with a byte in
0x80-0x8f, 0xde or 0xdf, which cannot begin UTF-8 text.

Each struct checks types (no bool for a number, no float for an integer), ranges
(:data:`MIN_TS` to :data:`MAX_TS` for times, [0, 1] for probabilities, finite
logits) and unknown fields while it is parsed, in C; what depends on two fields
(the version and the fields it allows) is checked in ``__post_init__``.
"""

from __future__ import annotations

import sys
from typing import Annotated, Literal

from msgspec import UNSET, Meta, Struct, UnsetType

MIN_TS, MAX_TS = 946_684_800.0, 4_102_444_800.0
"""Event and label times accepted on the wire: 2000-01-01 to 2100-01-01 UTC, seconds."""
INT32_MAX = 2**31 - 1
JSON_VERSIONS = (1, 2, 3)
MSGPACK_VERSIONS = (4,)
READ_VERSIONS = JSON_VERSIONS + MSGPACK_VERSIONS
GRAY_ZONE_FIELDS = ("route", "consistency", "consistency_k")
"""Fields from version 3 on: the final route after self-consistency, its agreement and K."""

Seconds = Annotated[float, Meta(ge=MIN_TS, le=MAX_TS)]
Probability = Annotated[float, Meta(ge=0.0, le=1.0)]
Finite = Annotated[float, Meta(ge=-sys.float_info.max, le=sys.float_info.max)]
Layer = Annotated[int, Meta(ge=0, le=INT32_MAX)]
SampleCount = Annotated[int, Meta(ge=1, le=INT32_MAX)]

# gc=False: a wire struct holds only scalars, bytes and a list of floats, so it can never be
# part of a reference cycle, and the garbage collector need not track millions of them
_STRUCT = {"forbid_unknown_fields": True, "frozen": True, "tag_field": "kind", "gc": False}


class JsonEvent(Struct, tag="event", **_STRUCT):
    """A scored event in wire versions 1 to 3 (JSON); see
    :class:`collectors.wire.events.ScoredEvent` for the meaning of each field."""

    event_id: str
    ts: Seconds
    model_id: str
    probe_version: str
    layer: Layer
    pooling: str
    raw_logit: Finite
    confidence: Probability
    decision: str
    answer: str = ""
    tag: str = ""
    state: bytes | list[Finite] | None = None  # bytes: base64 text (2, 3); list: version 1
    schema_version: Literal[1, 2, 3] = 3
    route: str | UnsetType = UNSET
    consistency: Probability | None | UnsetType = UNSET
    consistency_k: SampleCount | None | UnsetType = UNSET

    def __post_init__(self) -> None:
        version = self.schema_version
        if version < 3:
            extra = [n for n in GRAY_ZONE_FIELDS if getattr(self, n) is not UNSET]
            if extra:
                raise ValueError(f"field(s) {extra} need schema_version 3, not {version}")
        if self.state is not None and isinstance(self.state, list) != (version == 1):
            want = "a list of numbers" if version == 1 else "base64 text of fp16 values"
            raise ValueError(f"field 'state' must be {want} in version {version}")


class JsonLabel(Struct, tag="label", **_STRUCT):
    """A label in wire versions 1 to 3 (JSON); see :class:`collectors.wire.events.LabelEvent`."""

    event_id: str
    correct: bool
    ts: Seconds
    source: str = ""
    schema_version: Literal[1, 2, 3] = 3


class PackedEvent(Struct, tag="event", omit_defaults=True, **_STRUCT):
    """A scored event in wire version 4 (MessagePack), ``state`` as raw fp16 bytes."""

    schema_version: Literal[4]
    event_id: str
    ts: Seconds
    model_id: str
    probe_version: str
    layer: Layer
    pooling: str
    raw_logit: Finite
    confidence: Probability
    decision: str
    answer: str = ""
    tag: str = ""
    state: bytes | None = None
    route: str = ""
    consistency: Probability | None = None
    consistency_k: SampleCount | None = None


class PackedLabel(Struct, tag="label", omit_defaults=True, **_STRUCT):
    """A label in wire version 4 (MessagePack)."""

    schema_version: Literal[4]
    event_id: str
    correct: bool
    ts: Seconds
    source: str = ""


WireEvent = JsonEvent | PackedEvent
WireLabel = JsonLabel | PackedLabel
WireMessage = JsonEvent | JsonLabel | PackedEvent | PackedLabel
