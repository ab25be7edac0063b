"""Labelled pooled states for a time window, read from the DuckDB store.

Reads the ``labelled_events`` view through ``store.execute``. Two layouts are
handled: the walking skeleton's ``state FLOAT[]`` column on the events (so on
the view), and schema version 2's ``states`` table (fp16 ``BLOB``, decoded with
:func:`collectors.wire.events.unpack_state`), read through ``all_states`` (live +
archive) when that view exists. Rows without a state are skipped.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from collectors.wire.events import unpack_state
from monitor.store.queries import window_clause
from retrain.dataset import LabelledStates


def _columns(store: Any, relation: str) -> set[str]:
    rows = store.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_name = ?", [relation]
    )
    return {r[0] for r in rows}


def _decode(value: Any) -> np.ndarray:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return unpack_state(bytes(value))
    return np.asarray(value, dtype=np.float32)


def read_labelled_states(
    store: Any, start: float | None, end: float | None, model_id: str | None = None
) -> LabelledStates:
    """Labelled events with ``start <= ts < end`` that carry a pooled state.

    Parameters
    ----------
    store : monitor.store.database.Store
        Anything with ``execute(sql, params) -> list[tuple]``.
    start, end : float or None
        Window on the event time, seconds since the Unix epoch (None: unbounded).
    model_id : str, optional

    Returns
    -------
    LabelledStates

    Raises
    ------
    ValueError
        ``start > end``, or the states differ in dimension.
    """
    clause, params = window_clause(start, end, "e.ts")
    where = [clause]
    if model_id is not None:
        where.append("e.model_id = ?")
        params.append(model_id)
    cols = "e.event_id, e.ts, e.probe_version, e.confidence, e.correct"
    if "state" in _columns(store, "labelled_events"):
        sql = f"SELECT {cols}, e.state FROM labelled_events AS e WHERE e.state IS NOT NULL AND "
    else:
        states = "all_states" if _columns(store, "all_states") else "states"
        sql = (
            f"SELECT {cols}, s.state FROM labelled_events AS e "
            f"JOIN {states} AS s USING (event_id) WHERE "
        )
    rows = store.execute(sql + " AND ".join(where) + " ORDER BY e.ts, e.event_id", params)
    vectors = [_decode(r[5]) for r in rows]
    dims = {v.shape[0] for v in vectors}
    if len(dims) > 1:
        raise ValueError(f"labelled states of several dimensions {sorted(dims)}; pass model_id")
    dim = dims.pop() if dims else 0
    return LabelledStates(
        event_ids=np.array([r[0] for r in rows], dtype=object),
        ts=np.array([r[1] for r in rows], dtype=np.float64),
        states=np.stack(vectors).astype(np.float32) if vectors else np.zeros((0, dim), np.float32),
        correct=np.array([bool(r[4]) for r in rows], dtype=bool),
        probe_version=np.array([r[2] for r in rows], dtype=object),
        confidence=np.array([r[3] for r in rows], dtype=np.float64),
    )
