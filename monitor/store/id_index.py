"""Which event ids a store already holds, whatever timestamp their copies carry.

A copy of an event may carry another ``ts`` (a producer that re-stamps on retry, a
client that reuses an id), so a duplicate check bounded by the batch's time range
misses it, and DuckDB's primary-key index (ART) costs about 3 µs per insert and
grows with the table. :class:`IdIndex` keeps the 64-bit DuckDB ``hash()`` of every
stored ``event_id`` in memory, as a few sorted ``uint64`` runs merged like a
binary counter (a log-structured merge: each hash is copied O(log n) times in
all), so membership of a batch is one ``searchsorted`` per run. Memory: 8 bytes
per stored event (80 MB for 10 million).

A hash present in the index is only a candidate: :mod:`monitor.store.writes`
confirms candidates against the stored ids themselves, so a hash collision never
drops an event. A hash absent from the index proves the id is new, and most
batches have no candidate at all.
"""

from __future__ import annotations

from typing import Any

import numpy as np

EMPTY = np.zeros(0, dtype=np.uint64)


class IdIndex:
    """Hashes of stored event ids.

    Build it with :meth:`load`; after each committed insert, :meth:`add` the
    inserted rows' hashes.
    """

    def __init__(self) -> None:
        self._runs: list[np.ndarray] = []

    @classmethod
    def load(cls, con: Any, source: str = "all_events") -> IdIndex:
        """Index every ``event_id`` of ``source`` (a table or view of ``con``)."""
        index = cls()
        rows = con.execute(f"SELECT hash(event_id) AS h FROM {source} ORDER BY h").fetchnumpy()
        index.add(np.asarray(rows["h"], dtype=np.uint64))
        return index

    def __len__(self) -> int:
        """Hashes held (one added twice in separate calls counts twice until runs merge)."""
        return sum(len(r) for r in self._runs)

    def contains(self, hashes: np.ndarray) -> np.ndarray:
        """Membership of each hash.

        Parameters
        ----------
        hashes : ndarray of shape (n,), uint64
            DuckDB ``hash(event_id)`` values.

        Returns
        -------
        ndarray of shape (n,), bool
            True where the hash is indexed (a candidate duplicate).
        """
        hashes = np.asarray(hashes, dtype=np.uint64)
        found = np.zeros(hashes.shape[0], dtype=bool)
        if not self._runs or hashes.shape[0] == 0:
            return found
        needles = np.sort(hashes)  # sorted needles walk each run in order: cache-friendly
        if not any(_hits(run, needles).any() for run in self._runs):
            return found  # the usual batch: no candidate at all
        for run in self._runs:
            found |= _hits(run, hashes)
        return found

    def add(self, hashes: np.ndarray) -> None:
        """Index more hashes, shape (n,), uint64 (repeats are harmless)."""
        run = np.sort(np.asarray(hashes, dtype=np.uint64))
        if run.shape[0] == 0:
            return
        run = run[np.concatenate([[True], run[1:] != run[:-1]])]  # unique, as np.unique
        self._runs.append(run)
        while len(self._runs) > 1 and self._runs[-2].shape[0] <= 2 * self._runs[-1].shape[0]:
            top = self._runs.pop()
            merged = np.concatenate([self._runs[-1], top])
            merged.sort(kind="stable")  # timsort: a linear merge of the two sorted runs
            self._runs[-1] = merged


def _hits(run: np.ndarray, hashes: np.ndarray) -> np.ndarray:
    """Whether each of ``hashes`` is in the sorted ``run``."""
    pos = np.searchsorted(run, hashes)
    inside = pos < run.shape[0]
    hit = np.zeros(hashes.shape[0], dtype=bool)
    hit[inside] = run[pos[inside]] == hashes[inside]
    return hit


def batch_hashes(con: Any, table: str) -> np.ndarray:
    """DuckDB ``hash(event_id)`` of each row of ``table``, in row order, shape (n,), uint64."""
    rows = con.execute(f"SELECT hash(event_id) AS h FROM {table}").fetchnumpy()
    return np.asarray(rows["h"], dtype=np.uint64)
