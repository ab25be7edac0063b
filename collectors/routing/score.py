"""The collector's verdict on one request."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from collectors.wire.events import ScoredEvent, new_event_id


@dataclass(frozen=True)
class Score:
    """The collector's verdict on one request.

    Attributes
    ----------
    raw_logit : float
        Probe logit before calibration (nats of log-odds); NaN when unscored.
    confidence : float
        Calibrated probability that the answer is correct; NaN when unscored.
    decision : str
        The gate's decision on ``confidence``: ``"serve"``, ``"fallback"`` or
        ``"self_consistency"``.
    state : ndarray of shape (hidden_dim,) or (k,), or None
        The pooled hidden state (projected to ``k`` dimensions when the probe
        carries a projection), when this request was sampled for capture.
    scored : bool
        False when a hook failed for this request's batch (the model ran normally).
    route : str
        Final route: ``decision``, or after self-consistency ``"serve"`` /
        ``"fallback"``.
    consistency : float or None
        Majority share of the self-consistency samples, in [1/K, 1].
    consensus : str or None
        The majority canonical answer of those samples.
    consistency_k : int or None
        K, the number of self-consistency samples drawn.
    """

    raw_logit: float
    confidence: float
    decision: str
    state: np.ndarray | None = None
    scored: bool = True
    route: str = ""
    consistency: float | None = None
    consensus: str | None = None
    consistency_k: int | None = None


def to_events(
    scores: Sequence[Score],
    answers: Sequence[str],
    tags: Sequence[str] | str,
    model_id: str,
    probe_version: str,
    layer: int,
    pooling: str,
    event_ids: Sequence[str | None] | None = None,
) -> list[ScoredEvent | None]:
    """One :class:`ScoredEvent` per scored request, ``None`` for an unscored one (aligned).

    Every event is stamped with the same time (seconds since the epoch). ``tags``:
    one per request, or one string for all. ``event_ids`` gives each event its id (a
    client's request id, so labels join); ``None`` entries, or no list, get fresh
    random ids. Each event carries the final route and, after self-consistency, its
    agreement and K.

    Raises
    ------
    ValueError
        ``scores`` and ``answers`` (or ``tags``, or ``event_ids``) differ in length.
    """
    n = len(scores)
    tags = [tags] * n if isinstance(tags, str) else list(tags)
    ids = list(event_ids) if event_ids is not None else [None] * n
    for name, values in (("answers", answers), ("tags", tags), ("event ids", ids)):
        if len(values) != n:
            raise ValueError(f"{n} scores but {len(values)} {name}")
    now = time.time()
    return [
        None
        if not s.scored
        else ScoredEvent(
            event_id=i or new_event_id(),
            ts=now,
            model_id=model_id,
            probe_version=probe_version,
            layer=layer,
            pooling=pooling,
            raw_logit=s.raw_logit,
            confidence=s.confidence,
            decision=s.decision,
            answer=a,
            tag=t,
            state=None if s.state is None else s.state.astype(float).tolist(),
            route="" if s.route in ("", s.decision) else s.route,
            consistency=s.consistency,
            consistency_k=s.consistency_k,
        )
        for s, a, t, i in zip(scores, answers, tags, ids)
    ]
