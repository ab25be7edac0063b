"""The store's window reads over all subjects: confidences, labelled events, states, counts.

Confidences and labelled events are :mod:`monitor.store.queries` over
:data:`~monitor.store.queries.EVERYTHING` (one implementation of each read).

A mixin of :class:`monitor.store.database.Store` (it uses the store's ``_con`` and ``_lock``).
Every read goes through the ``all_events`` / ``all_states`` / ``labelled_events``
views, so rows moved to the Parquet archive are read with the live ones.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from monitor.store import queries
from monitor.store.queries import EVERYTHING, Subject, window_clause
from monitor.store.writes import fetch_arrow


class ReadsMixin:
    """Methods of :class:`monitor.store.database.Store` that read windows."""

    _con: Any
    _lock: Any

    def confidences(
        self, start: float | None = None, end: float | None = None, model_id: str | None = None
    ) -> np.ndarray:
        """Calibrated confidences of events with ``start <= ts < end``, in time order.

        Returns
        -------
        ndarray of shape (n_events,), float64
            Probabilities in [0, 1].

        Raises
        ------
        ValueError
            ``start > end``.
        """
        return queries.scores(self, Subject(model_id, None), start, end, "confidence")

    def labelled(
        self, start: float | None = None, end: float | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Confidence and correctness of labelled events with ``start <= event ts < end``.

        Returns
        -------
        confidence : ndarray of shape (n_labelled,), float64
            Calibrated probabilities in [0, 1].
        correct : ndarray of shape (n_labelled,), bool
            Whether each answer was right.

        Raises
        ------
        ValueError
            ``start > end``.
        """
        return queries.labelled(self, EVERYTHING, start, end)

    def states(
        self,
        start: float | None = None,
        end: float | None = None,
        model_id: str | None = None,
        labelled_only: bool = False,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Pooled hidden states of events with ``start <= ts < end``, in time order.

        Parameters
        ----------
        start, end : float, optional
            Window on the event time, seconds since the Unix epoch.
        model_id : str, optional
            Only this model's events.
        labelled_only : bool
            Only events that have a label.

        Returns
        -------
        event_ids : ndarray of shape (n_samples,), object
        states : ndarray of shape (n_samples, hidden_dim), float32
            Decoded from fp16.
        correct : ndarray of shape (n_samples,), float64
            1.0 / 0.0 from the label, NaN where there is none.

        Raises
        ------
        ValueError
            ``start > end``, or the selected states differ in dimension (pass
            ``model_id``).
        """
        where, params = window_clause(start, end, "e.ts")
        if model_id is not None:
            where += " AND e.model_id = ?"
            params.append(model_id)
        join = "JOIN" if labelled_only else "LEFT JOIN"
        with self._lock:
            table = self._con.execute(
                "SELECT s.event_id, s.dim, s.state, l.correct FROM all_states AS s "
                "JOIN all_events AS e USING (event_id) "
                f"{join} labels AS l USING (event_id) WHERE {where} ORDER BY e.ts, s.event_id",
                params,
            )
            table = fetch_arrow(table)
        dims = set(table.column("dim").to_pylist())
        if len(dims) > 1:
            raise ValueError(f"states of several dimensions {sorted(dims)}; pass model_id")
        dim = dims.pop() if dims else 0
        blob = b"".join(table.column("state").to_pylist())
        states = np.frombuffer(blob, dtype="<f2").astype(np.float32).reshape(table.num_rows, dim)
        correct = np.array(
            [np.nan if c is None else float(c) for c in table.column("correct").to_pylist()]
        )
        return np.asarray(table.column("event_id").to_pylist(), dtype=object), states, correct

    def counts(self) -> dict[str, int]:
        """Row counts of ``events`` (live + archived), ``labels``, ``dead_letters``, ``alerts``."""
        with self._lock:
            return {
                t: int(self._con.execute(f"SELECT count(*) FROM {v}").fetchone()[0])
                for t, v in (
                    ("events", "all_events"),
                    ("labels", "labels"),
                    ("dead_letters", "dead_letters"),
                    ("alerts", "alerts"),
                )
            }
