"""Events the collector emits and the monitor ingests, and their one serializer.

Every message on the events and labels topics is a UTF-8 JSON object carrying
``"kind"`` and ``"schema_version"``. :func:`encode` and :func:`decode` are the
only places that know the wire format; anything that does not decode raises
:class:`EventDecodeError`, which the ingester turns into a dead letter.
"""

from __future__ import annotations

import json
import math
import uuid
from dataclasses import asdict, dataclass, field, fields
from typing import Any

SCHEMA_VERSION = 1


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
        Optional captured pooled hidden state, shape ``(hidden_dim,)``.
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
    schema_version: int = field(default=SCHEMA_VERSION)

    kind = "event"


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
    schema_version: int = field(default=SCHEMA_VERSION)

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
        "state": (list, type(None)),
        "schema_version": (int,),
    },
    "label": {
        "event_id": (str,),
        "correct": (bool,),
        "ts": (int, float),
        "source": (str,),
        "schema_version": (int,),
    },
}


def encode(event: ScoredEvent | LabelEvent) -> bytes:
    """Serialise an event to UTF-8 JSON bytes (the wire format)."""
    body: dict[str, Any] = asdict(event)
    body["kind"] = event.kind
    return json.dumps(body, separators=(",", ":"), allow_nan=False).encode("utf-8")


def decode(raw: bytes) -> ScoredEvent | LabelEvent:
    """Parse wire bytes into an event.

    Raises
    ------
    EventDecodeError
        Not UTF-8 JSON, not an object, unknown ``kind`` or ``schema_version``,
        a missing or unknown field, a field of the wrong type, or a confidence
        outside [0, 1].
    """
    try:
        body = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise EventDecodeError(f"not UTF-8 JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise EventDecodeError(f"expected a JSON object, got {type(body).__name__}")
    kind = body.pop("kind", None)
    cls = _KINDS.get(kind)  # type: ignore[arg-type]
    if cls is None:
        raise EventDecodeError(f"unknown kind {kind!r}")
    version = body.get("schema_version", SCHEMA_VERSION)
    if version != SCHEMA_VERSION:
        raise EventDecodeError(
            f"unsupported schema_version {version!r} (this build reads {SCHEMA_VERSION})"
        )
    types = _TYPES[kind]
    names = {f.name for f in fields(cls)}
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
    try:
        event = cls(**body)
    except TypeError as exc:
        raise EventDecodeError(f"missing field for kind {kind!r}: {exc}") from exc
    if kind == "event":
        if not (0.0 <= event.confidence <= 1.0) or math.isnan(event.raw_logit):
            raise EventDecodeError(f"confidence {event.confidence!r} outside [0, 1] or NaN logit")
        if event.state is not None and not all(isinstance(v, (int, float)) for v in event.state):
            raise EventDecodeError("field 'state' must be a list of numbers")
    return event
