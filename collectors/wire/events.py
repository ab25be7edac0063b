"""Events the collector emits and the monitor ingests, and their one serializer.

Every message on the events and labels topics is a UTF-8 JSON object carrying
``"kind"`` and ``"schema_version"``. :func:`encode` and :func:`decode` are the
only places that know the wire format; anything that does not decode raises
:class:`EventDecodeError`, which the ingester turns into a dead letter.
(``monitor.ingest.decode`` parses whole batches faster; it hands every message it
is not sure of to :func:`decode`, and a test holds the two to the same answers.)

Wire versions: 1 carried ``state`` as a JSON list of numbers. 2 carries it as
the base64 text of the state in little-endian IEEE 754 half precision (fp16,
:func:`pack_state`): 1,368 characters for 512 dimensions instead of about
10,000, and the same bytes the store keeps in a ``BLOB``. 3 adds how the gray
zone resolved (``route``, ``consistency``, ``consistency_k``). :func:`encode`
writes the lowest version that holds the event (2 unless self-consistency ran),
so a monitor that reads 2 keeps reading every other event; :func:`decode` reads
all three.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import uuid
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import numpy as np

SCHEMA_VERSION = 3
"""The newest wire version (what :func:`decode` assumes when a message names none)."""
BASE_VERSION = 2
"""What :func:`encode` writes unless an event carries version-3 fields."""
READ_VERSIONS = (1, 2, 3)
GRAY_ZONE_FIELDS = ("route", "consistency", "consistency_k")
"""Fields of version 3: the final route after self-consistency, its agreement and K."""
STATE_DTYPE = np.dtype("<f2")
FP16_MAX = 65504.0
_INT32_MAX = 2**31 - 1


MAX_MESSAGE_BYTES = 1 << 20
"""Largest message decoded, bytes (an 8,192-wide fp16 state is 22 kB); bigger: a dead letter."""


MIN_TS, MAX_TS = 946_684_800.0, 4_102_444_800.0
"""Event and label times accepted on the wire: 2000-01-01 to 2100-01-01 UTC, seconds."""


class EventDecodeError(ValueError):
    """A message is not a valid vlm-monitor event (bad JSON, unknown kind or version, bad field)."""


def new_event_id() -> str:
    """Return a fresh random event id (32 hex characters)."""
    return uuid.uuid4().hex


@dataclass(frozen=True)
class ScoredEvent:
    """One scored request, emitted by the collector after the answer is known.

    Attributes
    ----------
    event_id : str
        Unique id; labels refer to it.
    ts : float
        Time the request was scored, seconds since the Unix epoch.
    model_id : str
        Name of the served model.
    probe_version : str
        Version of the probe that produced the score.
    layer : int
        Decoder layer index whose hidden state was read.
    pooling : str
        How the hidden state was pooled (e.g. ``"last_prompt_token"``).
    raw_logit : float
        Probe logit before calibration (nats of log-odds).
    confidence : float
        Calibrated probability, in [0, 1], that the answer is correct.
    decision : str
        Routing decision: ``"serve"``, ``"fallback"`` or ``"self_consistency"``.
    answer : str
        The model's generated answer text.
    tag : str
        Free-form request tag (route, tenant, traffic source), may be empty.
    state : list of float or None
        Optional captured pooled hidden state, shape ``(hidden_dim,)``. It travels
        and is stored as fp16 (:func:`pack_state`), so a decoded state holds the
        fp16-rounded values (relative error below 4.9e-4).
    route : str
        Final route after self-consistency (``"serve"`` or ``"fallback"``); empty
        when it is ``decision`` (no gray-zone resolution ran).
    consistency : float or None
        Majority share of the K self-consistency samples, in [1/K, 1].
    consistency_k : int or None
        K, the number of samples drawn.
    """

    event_id: str
    ts: float
    model_id: str
    probe_version: str
    layer: int
    pooling: str
    raw_logit: float
    confidence: float
    decision: str
    answer: str = ""
    tag: str = ""
    state: list[float] | None = None
    schema_version: int = field(default=BASE_VERSION, compare=False)  # the wire's, not the event's
    route: str = ""
    consistency: float | None = None
    consistency_k: int | None = None

    kind = "event"

    @property
    def final_route(self) -> str:
        """``route`` when self-consistency resolved the request, else ``decision``."""
        return self.route or self.decision


@dataclass(frozen=True)
class LabelEvent:
    """Delayed ground truth for one event: was the answer correct.

    Attributes
    ----------
    event_id : str
        Id of the :class:`ScoredEvent` this label is about.
    correct : bool
        Whether the served answer was right.
    ts : float
        Time the label was produced, seconds since the Unix epoch.
    source : str
        Who labelled it (``"reviewer"``, ``"benchmark"``, ...).
    """

    event_id: str
    correct: bool
    ts: float
    source: str = ""
    schema_version: int = field(default=BASE_VERSION)

    kind = "label"


_KINDS: dict[str, type] = {"event": ScoredEvent, "label": LabelEvent}
_TYPES: dict[str, dict[str, tuple[type, ...]]] = {
    "event": {
        "event_id": (str,),
        "ts": (int, float),
        "model_id": (str,),
        "probe_version": (str,),
        "layer": (int,),
        "pooling": (str,),
        "raw_logit": (int, float),
        "confidence": (int, float),
        "decision": (str,),
        "answer": (str,),
        "tag": (str,),
        "state": (str, list, type(None)),  # str from version 2, list in version 1
        "schema_version": (int,),
        "route": (str,),
        "consistency": (int, float, type(None)),
        "consistency_k": (int, type(None)),
    },
    "label": {
        "event_id": (str,),
        "correct": (bool,),
        "ts": (int, float),
        "source": (str,),
        "schema_version": (int,),
    },
}
_FLOATS = ("ts", "raw_logit", "confidence")


def pack_state(values: Any) -> bytes:
    """Encode a pooled hidden state as little-endian fp16 bytes (wire and store format).

    Parameters
    ----------
    values : array-like of shape (hidden_dim,)
        The state; values beyond the fp16 range (+-65504) saturate to it.

    Returns
    -------
    bytes
        ``2 * hidden_dim`` bytes.

    Raises
    ------
    ValueError
        Not one-dimensional, empty, or holding NaN or infinity.
    """
    arr = np.asarray(values, dtype=np.float32)
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"state must be a non-empty 1-D array, got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError("state holds NaN or infinite values")
    return np.clip(arr, -FP16_MAX, FP16_MAX).astype(STATE_DTYPE).tobytes()


def unpack_state(blob: bytes) -> np.ndarray:
    """Decode :func:`pack_state` bytes.

    Returns
    -------
    ndarray of shape (len(blob) // 2,), float32

    Raises
    ------
    ValueError
        An odd number of bytes, or none.
    """
    if len(blob) == 0 or len(blob) % 2:
        raise ValueError(f"a fp16 state needs a positive even byte count, got {len(blob)}")
    return np.frombuffer(blob, dtype=STATE_DTYPE).astype(np.float32)


def encode(event: ScoredEvent | LabelEvent) -> bytes:
    """Serialise an event to UTF-8 JSON bytes: wire version 3 when it carries the gray
    zone's resolution (:data:`GRAY_ZONE_FIELDS`), else :data:`BASE_VERSION`.

    Raises
    ------
    ValueError
        A float field or the state is NaN or infinite.
    """
    body: dict[str, Any] = asdict(event)
    body["kind"] = event.kind
    body["schema_version"] = BASE_VERSION
    if isinstance(event, ScoredEvent):
        gray = {k: body.pop(k) for k in GRAY_ZONE_FIELDS}
        if gray["route"] not in ("", event.decision) or gray["consistency"] is not None:
            body.update(gray, schema_version=3)  # self-consistency ran: version 3
    if body.get("state") is not None:
        body["state"] = base64.b64encode(pack_state(body["state"])).decode("ascii")
    return json.dumps(body, separators=(",", ":"), allow_nan=False).encode("utf-8")


def _reject_constant(name: str) -> Any:
    raise EventDecodeError(f"not standard JSON: {name}")


def decode(raw: bytes) -> ScoredEvent | LabelEvent:
    """Parse wire bytes (version 1 or 2) into an event.

    Raises
    ------
    EventDecodeError
        Over :data:`MAX_MESSAGE_BYTES`, not UTF-8 JSON (NaN and Infinity are not
        JSON), nested too deeply, an integer too long to convert, not an object, an
        unknown ``kind`` or ``schema_version``, a missing or unknown field, a field of
        the wrong type, a string that is not valid Unicode, a non-finite number, a
        time outside [:data:`MIN_TS`, :data:`MAX_TS`], a confidence outside [0, 1],
        a layer outside [0, 2**31), or a state that is
        not valid fp16 base64 (version 2) or a list of numbers (version 1).
    """
    if not isinstance(raw, (bytes, bytearray, memoryview)):
        raise EventDecodeError(f"expected bytes, got {type(raw).__name__}")
    if len(raw) > MAX_MESSAGE_BYTES:
        raise EventDecodeError(f"message of {len(raw)} bytes exceeds {MAX_MESSAGE_BYTES} bytes")
    try:
        body = json.loads(raw, parse_constant=_reject_constant)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise EventDecodeError(f"not UTF-8 JSON: {exc}") from exc
    except RecursionError:
        raise EventDecodeError("JSON nested too deeply") from None
    except (ValueError, OverflowError, MemoryError) as exc:  # e.g. an integer of 5,000 digits
        raise EventDecodeError(f"not decodable JSON: {str(exc)[:200]}") from None
    if not isinstance(body, dict):
        raise EventDecodeError(f"expected a JSON object, got {type(body).__name__}")
    kind = body.pop("kind", None)
    cls = _KINDS.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise EventDecodeError(f"unknown kind {kind!r}")
    version = body.get("schema_version", SCHEMA_VERSION)
    if isinstance(version, bool) or version not in READ_VERSIONS:
        raise EventDecodeError(
            f"unsupported schema_version {version!r} (this build reads {READ_VERSIONS})"
        )
    types = _TYPES[kind]
    names = {f.name for f in fields(cls)}
    if kind == "event" and version < 3:
        names -= set(GRAY_ZONE_FIELDS)
    unknown = set(body) - names
    if unknown:
        raise EventDecodeError(f"unknown field(s) {sorted(unknown)} for kind {kind!r}")
    for name, value in body.items():
        allowed = types[name]
        if isinstance(value, bool) and bool not in allowed:
            raise EventDecodeError(f"field {name!r} has type bool, expected {allowed[0].__name__}")
        if not isinstance(value, allowed):
            raise EventDecodeError(
                f"field {name!r} has type {type(value).__name__}, expected {allowed[0].__name__}"
            )
        if isinstance(value, str):
            try:
                value.encode("utf-8")
            except UnicodeEncodeError as exc:
                raise EventDecodeError(f"field {name!r} is not valid Unicode: {exc}") from exc
    for name in (*_FLOATS, "consistency"):
        if body.get(name) is not None:
            try:
                body[name] = float(body[name])
            except OverflowError as exc:
                raise EventDecodeError(f"field {name!r} is out of range: {exc}") from exc
            if not math.isfinite(body[name]):
                raise EventDecodeError(f"field {name!r} is not finite: {body[name]!r}")
    ts = body.get("ts")
    if isinstance(ts, float) and not (MIN_TS <= ts <= MAX_TS):
        raise EventDecodeError(
            f"field 'ts' {ts!r} outside [{MIN_TS:.0f}, {MAX_TS:.0f}] "
            "(2000-01-01 to 2100-01-01 UTC, seconds since the epoch)"
        )
    if kind == "event":
        body["state"] = _decode_state(body.get("state"), version)
    try:
        event = cls(**body)
    except TypeError as exc:
        raise EventDecodeError(f"missing field for kind {kind!r}: {exc}") from exc
    if kind == "event":
        if not (0.0 <= event.confidence <= 1.0):
            raise EventDecodeError(f"confidence {event.confidence!r} outside [0, 1]")
        if not (0 <= event.layer <= _INT32_MAX):
            raise EventDecodeError(f"layer {event.layer!r} outside [0, 2**31)")
        _check_gray_zone(event)
    return event


def _check_gray_zone(event: ScoredEvent) -> None:
    if event.consistency is not None and not (0.0 <= event.consistency <= 1.0):
        raise EventDecodeError(f"consistency {event.consistency!r} outside [0, 1]")
    k = event.consistency_k
    if k is not None and not (1 <= k <= _INT32_MAX):
        raise EventDecodeError(f"consistency_k {k!r} outside [1, 2**31)")


def _decode_state(value: Any, version: int) -> list[float] | None:
    if value is None:
        return None
    if version == 1:
        if not isinstance(value, list) or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in value
        ):
            raise EventDecodeError("field 'state' must be a list of numbers in version 1")
        try:
            return unpack_state(pack_state(value)).tolist()
        except (ValueError, OverflowError) as exc:
            raise EventDecodeError(f"field 'state': {exc}") from exc
    if not isinstance(value, str):
        raise EventDecodeError("field 'state' must be base64 text of fp16 values in version 2")
    try:
        state = unpack_state(base64.b64decode(value, validate=True))
    except (binascii.Error, ValueError) as exc:
        raise EventDecodeError(f"field 'state' is not fp16 base64: {exc}") from exc
    if not np.isfinite(state).all():
        raise EventDecodeError("field 'state' holds NaN or infinite values")
    return state.tolist()
