"""Move decoded events that fail a check of the ingester's to the batch's dead letters."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from monitor.ingest.decode import DecodedBatch


def reject_events(batch: DecodedBatch, bad: np.ndarray, reasons: list[str]) -> None:
    """Drop the events where ``bad`` is True, with their states, and record each one's reason.

    Parameters
    ----------
    batch : DecodedBatch
        Modified in place: ``events``, ``event_positions``, ``states`` and ``errors``.
    bad : ndarray of shape (n_events,), bool
        Events to reject, aligned with ``batch.events``.
    reasons : list of str
        One reason per rejected event, in row order; it becomes the dead letter's error.
    """
    if not bad.any():
        return
    rows = np.flatnonzero(bad)
    if len(reasons) != len(rows):
        raise ValueError(f"{len(rows)} rejected events but {len(reasons)} reasons")
    batch.errors.extend((int(batch.event_positions[r]), reason) for r, reason in zip(rows, reasons))
    dropped = batch.events.column("event_id").take(pa.array(rows))
    batch.events = batch.events.filter(pa.array(~bad))
    batch.event_positions = batch.event_positions[~bad]
    if batch.states.num_rows:
        batch.states = batch.states.filter(
            pc.invert(pc.is_in(batch.states.column("event_id"), dropped))
        )
    batch.errors.sort()
