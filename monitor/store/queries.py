"""Window queries for the detectors, the alert policy, the metrics and the reports.

Everything goes through :meth:`monitor.store.database.Store.execute`, against the
store's tables and views: events (``all_events`` when the store keeps an
archive view, else ``events``), pooled states (``all_states``: fp16 ``BLOB``
plus ``dim``; or the older ``events.state FLOAT[]``), ``labelled_events``,
``detector_runs`` and ``alerts``. Which of the two layouts a store has is read
from ``information_schema`` once per store.

A *subject* is what one set of detector results is about: a model, a probe
version and a request tag, or all tags of a model and probe (``tag=None``,
written ``*``). Time windows are ``start <= ts < end`` in seconds since the epoch.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from typing import Any

import numpy as np

SCORE_COLUMNS = ("confidence", "raw_logit")
"""Event columns whose distribution the score detectors compare."""

_LAYOUT: weakref.WeakKeyDictionary[Any, tuple[str, str | None]] = weakref.WeakKeyDictionary()


@dataclass(frozen=True, order=True)
class Subject:
    """A model, a probe version and a request tag (None: all tags together).

    Attributes
    ----------
    model_id, probe_version : str
        As in the events.
    tag : str or None
        One request tag, or None for all of them.
    """

    model_id: str | None
    probe_version: str | None
    tag: str | None = None

    @property
    def name(self) -> str:
        """``model/probe/tag``, with ``*`` for all, e.g. ``"shapes-llava/v1/*"``."""
        parts = (self.model_id, self.probe_version, self.tag)
        return "/".join("*" if p is None else p for p in parts)

    def where(self, alias: str = "") -> tuple[str, list[Any]]:
        """SQL condition (with ``?`` parameters) selecting this subject's events."""
        p = f"{alias}." if alias else ""
        sql, params = ["TRUE"], []
        for column, value in (
            ("model_id", self.model_id), ("probe_version", self.probe_version), ("tag", self.tag)
        ):  # fmt: skip
            if value is not None:
                sql.append(f"{p}{column} = ?")
                params.append(value)
        return " AND ".join(sql), params


EVERYTHING = Subject(None, None)
"""Every event of every model, probe version and tag."""


def _layout(store: Any) -> tuple[str, str | None]:
    """``(events relation, states relation or None)`` for this store, cached."""
    try:
        return _LAYOUT[store]
    except (KeyError, TypeError):
        pass
    names = {r[0] for r in store.execute("SELECT table_name FROM information_schema.tables")}
    events = "all_events" if "all_events" in names else "events"
    states = "all_states" if "all_states" in names else ("states" if "states" in names else None)
    try:
        _LAYOUT[store] = (events, states)
    except TypeError:  # not weak-referenceable: just do not cache
        pass
    return events, states


def window_clause(
    start: float | None, end: float | None, column: str = "ts"
) -> tuple[str, list[float]]:
    """SQL condition ``start <= column < end`` (either bound may be None) and its parameters.

    Raises
    ------
    ValueError
        ``start > end``.
    """
    if start is not None and end is not None and start > end:
        raise ValueError(f"window start {float(start)} is after end {float(end)}")
    sql, params = [], []
    if start is not None:
        sql.append(f"{column} >= ?")
        params.append(float(start))
    if end is not None:
        sql.append(f"{column} < ?")
        params.append(float(end))
    return (" AND ".join(sql) or "TRUE"), params


def subjects(store: Any, start: float | None = None, end: float | None = None) -> list[Subject]:
    """Every (model, probe, all tags) seen in the window, plus (model, probe, tag) per tag
    when a model and probe have more than one tag. Sorted."""
    events, _ = _layout(store)
    where, params = window_clause(start, end)
    rows = store.execute(
        f"SELECT DISTINCT model_id, probe_version, tag FROM {events} WHERE {where}", params
    )
    found: dict[tuple[str, str], set[str]] = {}
    for model, probe, tag in rows:
        found.setdefault((model, probe), set()).add(tag)
    out = []
    for (model, probe), tags in found.items():
        out.append(Subject(model, probe, None))
        if len(tags) > 1:
            out.extend(Subject(model, probe, t) for t in tags)
    return sorted(out, key=lambda s: (s.model_id, s.probe_version, s.tag or ""))


def first_ts(store: Any, subject: Subject) -> float | None:
    """Time of the subject's first event, or None when it has none."""
    events, _ = _layout(store)
    where, params = subject.where()
    return store.execute(f"SELECT min(ts) FROM {events} WHERE {where}", params)[0][0]


def reference_start(
    store: Any, subject: Subject, span_s: float, min_events: int, scan: int = 100_000
) -> float | None:
    """Start of the subject's reference window: where its traffic begins, not its oldest stamp.

    The earliest event time ``t`` whose window ``[t, t + span_s]`` holds at least
    ``min_events`` events, among the subject's first ``scan`` events; the first
    event's time when no such window starts there. A few stray early events (a
    late replay, a skewed clock inside the ingest bounds) therefore cannot pin
    the reference to a window holding only themselves.

    Parameters
    ----------
    span_s : float
        Length of the reference window, seconds.
    min_events : int
        Events the window must hold (the detectors' ``min_window_events``).

    Returns
    -------
    float or None
        Seconds since the Unix epoch; None when the subject has no event.
    """
    events, _ = _layout(store)
    where, params = subject.where()
    k = max(int(min_events), 1)
    rows = store.execute(
        f"SELECT min(ts) FILTER (WHERE later <= ts + ?), min(ts) FROM ("
        f"SELECT ts, lead(ts, {k - 1}) OVER (ORDER BY ts) AS later FROM ("
        f"SELECT ts FROM {events} WHERE {where} ORDER BY ts LIMIT {int(scan)}))",
        [float(span_s)] + params,
    )
    dense, first = rows[0]
    return first if dense is None else dense


def scores(
    store: Any, subject: Subject, start: float | None, end: float | None, column: str
) -> np.ndarray:
    """Values of ``column`` (``confidence`` or ``raw_logit``), shape (n_events,), float64.

    Raises
    ------
    ValueError
        ``column`` is not one of :data:`SCORE_COLUMNS`, or ``start > end``.
    """
    if column not in SCORE_COLUMNS:
        raise ValueError(f"column must be one of {SCORE_COLUMNS}, got {column!r}")
    events, _ = _layout(store)
    where, params = subject.where()
    win, wparams = window_clause(start, end)
    rows = store.execute(
        f"SELECT list({column} ORDER BY ts, event_id) FROM {events} WHERE {where} AND {win}",
        params + wparams,
    )
    return np.asarray(rows[0][0] or [], dtype=np.float64)


def labelled(
    store: Any, subject: Subject, start: float | None, end: float | None
) -> tuple[np.ndarray, np.ndarray]:
    """Confidence (float64) and correctness (bool) of the subject's labelled events.

    The window applies to the *event* time, not the label's.
    """
    where, params = subject.where()
    win, wparams = window_clause(start, end)
    rows = store.execute(
        "SELECT list(confidence ORDER BY ts, event_id), list(correct ORDER BY ts, event_id) "
        f"FROM labelled_events WHERE {where} AND {win}",
        params + wparams,
    )
    conf, correct = rows[0]
    return np.asarray(conf or [], dtype=np.float64), np.asarray(correct or [], dtype=bool)


def states(
    store: Any,
    subject: Subject,
    start: float | None,
    end: float | None,
    limit: int | None = None,
) -> np.ndarray:
    """Pooled hidden states of the subject's events, shape (n_samples, hidden_dim), float32.

    Parameters
    ----------
    limit : int, optional
        At most this many rows, chosen by a hash of ``event_id``: a fixed,
        pseudo-random sample, the same rows on every run.

    Returns
    -------
    ndarray of shape (n_samples, hidden_dim)
        ``(0, 0)`` when no event carried a state.

    Raises
    ------
    ValueError
        The selected states differ in width (states of several layers or models).
    """
    events, state_rel = _layout(store)
    where, params = subject.where("e")
    win, wparams = window_clause(start, end, "e.ts")
    order = "ORDER BY hash(e.event_id)" + (" LIMIT ?" if limit is not None else "")
    extra = [int(limit)] if limit is not None else []
    if state_rel is not None:
        rows = store.execute(
            f"SELECT s.dim, s.state FROM {state_rel} AS s JOIN {events} AS e USING (event_id) "
            f"WHERE {where} AND {win} {order}",
            params + wparams + extra,
        )
        dims = {int(r[0]) for r in rows}
        _check_dims(dims, subject)
        if not rows:
            return np.zeros((0, 0), dtype=np.float32)
        blob = b"".join(r[1] for r in rows)
        return np.frombuffer(blob, dtype="<f2").astype(np.float32).reshape(len(rows), dims.pop())
    rows = store.execute(
        f"SELECT state FROM {events} AS e WHERE state IS NOT NULL AND {where} AND {win} {order}",
        params + wparams + extra,
    )
    _check_dims({len(r[0]) for r in rows}, subject)
    if not rows:
        return np.zeros((0, 0), dtype=np.float32)
    return np.asarray([r[0] for r in rows], dtype=np.float32)


def _check_dims(dims: set[int], subject: Subject) -> None:
    if len(dims) > 1:
        raise ValueError(
            f"{subject.name}: states of several widths {sorted(dims)} in one window "
            "(were states captured at different layers?)"
        )


def newest_event_ts(store: Any) -> float | None:
    """Event time of the newest stored event (for the ingest lag), or None."""
    events, _ = _layout(store)
    return store.execute(f"SELECT max(ts) FROM {events}")[0][0]
