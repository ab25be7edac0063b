"""The one serializer: events to wire bytes and back, through the structs of the wire schema.

:func:`encode` writes wire version 4 (MessagePack, the state as raw fp16 bytes) unless
asked for JSON, which monitors of earlier releases read. :func:`decode_message` is
the only parser: it reads every version (:mod:`collectors.wire.schema`) and raises
:class:`~collectors.wire.events.EventDecodeError` naming what was wrong, which the
ingester turns into a dead letter. :func:`decode` adds the state checks and returns
the event types; ``monitor.ingest.decode`` runs the same two steps over a whole
poll and builds Arrow columns from the structs.

Rolling upgrades: upgrade the monitor first (it reads 1 to 4), then the collectors;
a collector whose monitor is older sets ``wire_version=3`` on its emitter.
"""

from __future__ import annotations

import math
import sys

import msgspec

from collectors.wire.events import (
    WIRE_VERSION,
    EventDecodeError,
    LabelEvent,
    ScoredEvent,
    invalid_states,
    pack_state,
    unpack_state,
)
from collectors.wire.schema import (
    JSON_VERSIONS,
    MAX_TS,
    MIN_TS,
    MSGPACK_VERSIONS,
    JsonEvent,
    JsonLabel,
    PackedEvent,
    PackedLabel,
    WireEvent,
    WireMessage,
)

MAX_MESSAGE_BYTES = 1 << 20
"""Largest message decoded, bytes (an 8,192-wide fp16 state is 16 kB); bigger: a dead letter."""
WRITE_VERSIONS = (2, 3, 4)

_JSON = msgspec.json.Decoder(JsonEvent | JsonLabel)
_PACKED = msgspec.msgpack.Decoder(PackedEvent | PackedLabel)
_JSON_OUT = msgspec.json.Encoder()
_PACKED_OUT = msgspec.msgpack.Encoder()
PACKED_FIRST_BYTES = frozenset(range(0x80, 0x90)) | {0xDE, 0xDF}
"""First byte of a MessagePack map (fixmap, map 16, map 32); never the first byte of UTF-8."""


def encode(event: ScoredEvent | LabelEvent, version: int = WIRE_VERSION) -> bytes:
    """Serialise an event for the wire.

    Parameters
    ----------
    event : ScoredEvent or LabelEvent
    version : int
        4 (default): MessagePack with the state as raw fp16 bytes. 2 or 3: JSON
        with the state as base64 text, for monitors of earlier releases; an event
        carrying the gray zone's resolution (:data:`GRAY_ZONE_FIELDS`) is written
        as 3, any other as 2 (so a monitor that reads only 2 reads it).

    Raises
    ------
    ValueError
        A float field or the state is NaN or infinite, the state is empty or not
        1-D, or ``version`` is not one of 2, 3, 4.
    TypeError
        ``event`` is neither event type.
    """
    if version not in WRITE_VERSIONS:
        raise ValueError(f"wire version must be one of {WRITE_VERSIONS}, got {version!r}")
    if isinstance(event, LabelEvent):
        _check_finite(event, ("ts",))
        if version in MSGPACK_VERSIONS:
            return _PACKED_OUT.encode(
                PackedLabel(version, event.event_id, bool(event.correct), event.ts, event.source)
            )
        return _JSON_OUT.encode(JsonLabel(event.event_id, bool(event.correct), event.ts,
                                          event.source, schema_version=2))  # fmt: skip
    if not isinstance(event, ScoredEvent):
        raise TypeError(f"expected a ScoredEvent or LabelEvent, got {type(event).__name__}")
    _check_finite(event, ("ts", "raw_logit", "confidence", "consistency"))
    state = None if event.state is None else pack_state(event.state)
    common = (event.event_id, float(event.ts), event.model_id, event.probe_version,
              int(event.layer), event.pooling, float(event.raw_logit), float(event.confidence),
              event.decision, event.answer, event.tag, state)  # fmt: skip
    consistency = None if event.consistency is None else float(event.consistency)
    k = None if event.consistency_k is None else int(event.consistency_k)
    if version in MSGPACK_VERSIONS:
        return _PACKED_OUT.encode(PackedEvent(version, *common, event.route, consistency, k))
    if event.route in ("", event.decision) and consistency is None:
        return _JSON_OUT.encode(JsonEvent(*common, schema_version=2))
    return _JSON_OUT.encode(
        JsonEvent(*common, schema_version=3, route=event.route, consistency=consistency,
                  consistency_k=k)
    )  # fmt: skip


def _check_finite(event: ScoredEvent | LabelEvent, names: tuple[str, ...]) -> None:
    for name in names:
        value = getattr(event, name)
        if value is not None and not math.isfinite(value):
            raise ValueError(f"field {name!r} is not finite: {value!r}")


def decode_message(raw: bytes) -> WireMessage:
    """Parse and schema-check one message of any wire version.

    Returns
    -------
    JsonEvent, JsonLabel, PackedEvent or PackedLabel
        The wire struct; its state (if any) is not checked yet (:func:`state_bytes`,
        :func:`collectors.wire.events.invalid_states`).

    Raises
    ------
    EventDecodeError
        Not bytes, empty, over :data:`MAX_MESSAGE_BYTES`; not UTF-8 JSON or a
        MessagePack map (NaN and Infinity are not JSON); an unknown ``kind`` or
        ``schema_version``; a missing, unknown or wrongly typed field (a bool is
        not a number, a float not an integer), a string that is not valid
        Unicode, a time outside [``MIN_TS``, ``MAX_TS``], a probability outside
        [0, 1], a non-finite logit, a layer outside [0, 2**31), or a field that
        the message's version does not have. The text names the field
        (msgspec's ``$.field`` path).
    """
    if not isinstance(raw, (bytes, bytearray, memoryview)):
        raise EventDecodeError(f"expected bytes, got {type(raw).__name__}")
    if len(raw) > MAX_MESSAGE_BYTES:
        raise EventDecodeError(f"message of {len(raw)} bytes exceeds {MAX_MESSAGE_BYTES} bytes")
    if len(raw) == 0:
        raise EventDecodeError("empty message (no bytes)")
    packed = raw[0] in PACKED_FIRST_BYTES
    try:
        return (_PACKED if packed else _JSON).decode(raw)
    except msgspec.ValidationError as exc:
        raise EventDecodeError(_explain(str(exc), packed)) from None
    except msgspec.DecodeError as exc:
        raise EventDecodeError(f"not {_FORMATS[packed]}: {exc}") from None
    except UnicodeDecodeError as exc:  # msgspec < 0.19 raises it for a MessagePack string
        raise EventDecodeError(
            f"not {_FORMATS[packed]}: Invalid UTF-8 encoded string ({exc.reason})"
        ) from None
    except (RecursionError, MemoryError, OverflowError, ValueError) as exc:
        raise EventDecodeError(f"not decodable {_FORMATS[packed]}: {str(exc)[:200]}") from None


_FORMATS = {False: "UTF-8 JSON", True: "MessagePack"}


def decode_messages(values: list[bytes]) -> list[WireMessage]:
    """Parse a batch in which every message is valid, in one call per encoding.

    The same decoders as :func:`decode_message` (a message parses as MessagePack
    exactly when it starts with a map byte), without its per-message Python checks.

    Raises
    ------
    EventDecodeError
        Some message is not valid or the batch mixes encodings; call
        :func:`decode_message` on each to learn which and why.
    """
    if not values:
        return []
    try:
        if max(map(len, values)) <= MAX_MESSAGE_BYTES:
            return list(map(_PACKED.decode, values))
    except Exception:  # noqa: BLE001 - not all MessagePack maps: try JSON, then one by one
        pass
    try:
        if max(map(len, values)) <= MAX_MESSAGE_BYTES:
            return list(map(_JSON.decode, values))
    except Exception:  # noqa: BLE001
        pass
    raise EventDecodeError("some message is not valid")


def _explain(error: str, packed: bool) -> str:
    """msgspec's validation error in the words of a dead letter: the field first, so that
    dead letters group by what was wrong (``Store.dead_letter_counts``)."""
    if error.endswith("`$.schema_version`") and "enum value" in error:
        version = error.split("enum value ", 1)[1].split(" ", 1)[0]
        other = "JSON" if version in map(str, JSON_VERSIONS) else "MessagePack"
        if version in map(str, JSON_VERSIONS + MSGPACK_VERSIONS):
            return f"schema_version {version} is written as {other}, not {_FORMATS[packed]}"
        return (
            f"unsupported schema_version {version} (this build reads {JSON_VERSIONS} as JSON "
            f"and {MSGPACK_VERSIONS} as MessagePack)"
        )
    if error.endswith("`$.kind`") and error.startswith("Invalid value"):
        return f"unknown kind {error.split('Invalid value ', 1)[1].split(' - ', 1)[0]}"
    where = f"({_FORMATS[packed]} message)"
    for start, said in (("Object missing required field `", "missing field"),
                        ("Object contains unknown field `", "unknown field")):  # fmt: skip
        if error.startswith(start):
            name = error[len(start) :].split("`", 1)[0]
            return f"{said} {name!r} {where}"
    text, sep, path = error.rpartition(" - at `$.")
    if sep:
        name = path.rstrip("`")
        text = _RANGES.get((name, text), f"{text[:1].lower()}{text[1:]}")
        return f"field {name!r}: {text} {where}"
    if error.startswith("field"):  # a check of __post_init__, already in these words
        return f"{error} {where}"
    return f"invalid event {where}: {error}"


_FINITE = "must be a finite number (not NaN or infinite)"
_TIME = "must be a time from 2000-01-01 to 2100-01-01 UTC, in seconds since the epoch"
_RANGES = {
    ("raw_logit", f"Expected `float` >= {-sys.float_info.max}"): _FINITE,
    ("raw_logit", f"Expected `float` <= {sys.float_info.max}"): _FINITE,
    ("ts", f"Expected `float` >= {MIN_TS}"): _TIME,
    ("ts", f"Expected `float` <= {MAX_TS}"): _TIME,
}


def state_bytes(message: WireEvent) -> bytes | None:
    """The fp16 bytes of a decoded event's state (a version-1 list packed), or None.

    Raises
    ------
    EventDecodeError
        A version-1 list that is empty.
    """
    state = message.state
    if state is None or isinstance(state, bytes):
        return state
    try:
        return pack_state(state)
    except ValueError as exc:
        raise EventDecodeError(f"field 'state': {exc}") from None


def decode(raw: bytes) -> ScoredEvent | LabelEvent:
    """Parse wire bytes of any version into an event (the path ``decode_batch`` takes, for one).

    Raises
    ------
    EventDecodeError
        Everything :func:`decode_message` refuses, and a state that is not whole
        fp16 values or holds NaN or infinity.
    """
    message = decode_message(raw)
    if isinstance(message, (JsonLabel, PackedLabel)):
        return LabelEvent(message.event_id, message.correct, message.ts, message.source,
                          message.schema_version)  # fmt: skip
    blob = state_bytes(message)
    if blob is not None:
        bad = invalid_states([blob])
        if bad:
            raise EventDecodeError(bad[0])
    return ScoredEvent(
        event_id=message.event_id, ts=message.ts, model_id=message.model_id,
        probe_version=message.probe_version, layer=message.layer, pooling=message.pooling,
        raw_logit=message.raw_logit, confidence=message.confidence, decision=message.decision,
        answer=message.answer, tag=message.tag,
        state=None if blob is None else unpack_state(blob).tolist(),
        schema_version=message.schema_version, route=message.route or "",
        consistency=unset_to_none(message.consistency),
        consistency_k=unset_to_none(message.consistency_k),
    )  # fmt: skip


def unset_to_none(value: object) -> object:
    """A field a JSON message left out (``msgspec.UNSET``) as None; any other value as is."""
    return None if value is msgspec.UNSET else value
