"""The events the collector emits and the monitor ingests, and the fp16 state format.

:class:`ScoredEvent` and :class:`LabelEvent` are what code on both sides handles;
how they travel (JSON in wire versions 1 to 3, MessagePack in version 4) is
:mod:`collectors.wire.schema`, and :mod:`collectors.wire.codec` is the one place
that turns them into bytes and back. A pooled hidden state travels and is stored
as little-endian IEEE 754 half precision (:func:`pack_state`).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from collectors.wire.schema import GRAY_ZONE_FIELDS, MAX_TS, MIN_TS, READ_VERSIONS

__all__ = [
    "GRAY_ZONE_FIELDS", "MAX_TS", "MIN_TS", "READ_VERSIONS", "WIRE_VERSION", "EventDecodeError",
    "LabelEvent", "ScoredEvent", "new_event_id", "pack_state", "unpack_state",
]  # fmt: skip

WIRE_VERSION = 4
"""The wire version :func:`collectors.wire.codec.encode` writes by default (MessagePack)."""
STATE_DTYPE = np.dtype("<f2")
FP16_MAX = 65504.0


class EventDecodeError(ValueError):
    """A message is not a valid vlm-monitor event (not JSON or MessagePack, unknown kind or
    version, a missing, unknown or out-of-range field); the message names the field."""


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
    schema_version: int = field(default=WIRE_VERSION, compare=False)  # the wire's, not the event's
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
    schema_version: int = field(default=WIRE_VERSION, compare=False)  # the wire's

    kind = "label"


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


def invalid_states(blobs: list[bytes]) -> dict[int, str]:
    """Which of many :func:`pack_state` blobs cannot be a state, checked in a few array passes.

    Parameters
    ----------
    blobs : list of bytes
        Candidate fp16 states (``2 * hidden_dim`` bytes each).

    Returns
    -------
    dict of int -> str
        Index of each invalid blob and why: no bytes, an odd byte count, or an
        fp16 NaN or infinity (exponent bits all set). Empty when all are valid.
    """
    lengths = np.fromiter(map(len, blobs), dtype=np.int64, count=len(blobs))
    bad = {
        int(i): f"field 'state' needs a positive even byte count of fp16 values, got {lengths[i]}"
        for i in np.flatnonzero((lengths == 0) | (lengths % 2 == 1))
    }
    sized = [i for i in range(len(blobs)) if i not in bad] if bad else range(len(blobs))
    if len(sized):
        bits = np.frombuffer(b"".join([blobs[i] for i in sized]), dtype="<u2")
        starts = np.concatenate([[0], np.cumsum(lengths[list(sized)] // 2)[:-1]])
        special = (bits & 0x7C00) == 0x7C00
        if not special.any():  # the usual case: one vectorised pass
            return bad
        for j in np.flatnonzero(np.logical_or.reduceat(special, starts)):
            bad[sized[j]] = "field 'state' holds NaN or infinite values"
    return bad
