"""One pooled-state width per model and probe version: a state of another width is a dead letter.

The detectors on pooled states (MMD, the domain classifier) and the retrain job
need every state of a subject to have one width. The first width stored for a
``(model_id, probe_version)`` wins (read back from the store once per subject
and ingester); an event whose state has another width goes to ``dead_letters``
with its bytes and the reason, and everything else of the batch is stored.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from monitor.ingest.decode import DecodedBatch
from monitor.ingest.rejects import reject_events

Lookup = Callable[[str, str], "int | None"]


def store_lookup(store: object) -> Lookup:
    """Width already stored for a model and probe version, or None (one query per subject)."""

    def lookup(model_id: str, probe_version: str) -> int | None:
        rows = store.execute(  # type: ignore[attr-defined]
            "SELECT s.dim FROM all_states AS s JOIN all_events AS e USING (event_id) "
            "WHERE e.model_id = ? AND e.probe_version = ? LIMIT 1",
            [model_id, probe_version],
        )
        return int(rows[0][0]) if rows else None

    return lookup


class StateWidths:
    """Checks each batch's states against the width of their model and probe version.

    Parameters
    ----------
    lookup : callable
        ``lookup(model_id, probe_version) -> int or None``, e.g. :func:`store_lookup`.
    """

    def __init__(self, lookup: Lookup) -> None:
        self.lookup = lookup
        self.known: dict[tuple[str, str], int | None] = {}

    def check(self, batch: DecodedBatch) -> None:
        """Move events whose state width differs to ``batch.errors``; drop their states."""
        if batch.states.num_rows == 0:
            return
        width = dict(zip(batch.states.column("event_id").to_pylist(),
                         batch.states.column("dim").to_pylist()))  # fmt: skip
        ids = batch.events.column("event_id").to_pylist()
        models = batch.events.column("model_id").to_pylist()
        probes = batch.events.column("probe_version").to_pylist()
        bad = np.zeros(len(ids), dtype=bool)
        reasons = []
        for row, (event_id, model, probe) in enumerate(zip(ids, models, probes)):
            dim = width.get(event_id)
            if dim is None:
                continue
            key = (model, probe)
            if key not in self.known:
                self.known[key] = self.lookup(model, probe)
            if self.known[key] is None:
                self.known[key] = dim  # the first width of a new subject
            elif self.known[key] != dim:
                bad[row] = True
                reasons.append(
                    f"state width {dim} differs from the {self.known[key]} of {model}/{probe} "
                    "already stored"
                )
        reject_events(batch, bad, reasons)
