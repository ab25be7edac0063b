"""Which unlabelled events to send for review first: the most novel against the reference.

When the label-free estimate cannot be trusted (:mod:`monitor.detection.trust`),
labels are the way back, and the events least like the reference are where the
probe's calibration is least known. Novelty is measured on the pooled hidden
states in a PCA of the reference states (``n_components``): the squared
Mahalanobis distance in the whitened components plus the squared reconstruction
error in units of its mean on the reference (the two terms of a PCA outlier score:
Hotelling's T-squared and the Q statistic; Jackson 1991, *A User's Guide to
Principal Components*, Sec. 1.7). Events without a captured state cannot be
ranked and are left out.

A ranked list is for *where* to look; to estimate the window's accuracy, the
labels must be drawn at random (:func:`detectors.calibration.labelling_budget.labels_needed`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.decomposition import PCA

from collectors.wire.events import unpack_state
from monitor.store import queries
from monitor.store.queries import _layout, window_clause


def review_queue(
    store: Any,
    subject: queries.Subject,
    reference: tuple[queries.Subject, tuple[float, float]],
    current: tuple[float, float],
    limit: int = 50,
    n_components: int = 16,
    max_scan: int = 20_000,
) -> list[dict[str, Any]]:
    """The ``limit`` most novel unlabelled events of ``subject`` in ``current``.

    Parameters
    ----------
    store : Store
    subject : Subject
    reference : (Subject, (float, float))
        Whose states, in which window, are the reference
        (:func:`monitor.detection.reference.state_reference`).
    current : (float, float)
        ``start <= ts < end``, seconds since the Unix epoch.
    limit : int
        Length of the list, >= 1.
    n_components : int
        PCA components (fewer when the reference is small).
    max_scan : int
        At most this many unlabelled events of the window are scored (a fixed
        hash-ordered sample beyond that).

    Returns
    -------
    list of dict
        Most novel first: ``event_id``, ``ts``, ``confidence``, ``novelty``
        (dimensionless). Empty when the reference holds fewer than 10 states or
        the window no unlabelled event with a state.

    Raises
    ------
    ValueError
        ``limit < 1``, or states of different widths.
    """
    if int(limit) < 1:
        raise ValueError(f"limit must be >= 1, got {limit}")
    ref_subject, ref_window = reference
    ref = queries.states(store, ref_subject, *ref_window, limit=4000)
    ids, ts, conf, cur = _unlabelled_states(store, subject, current, max_scan)
    if ref.shape[0] < 10 or cur.shape[0] == 0:
        return []
    if cur.shape[1] != ref.shape[1]:
        raise ValueError(f"current states are {cur.shape[1]}-wide, the reference's {ref.shape[1]}")
    k = max(1, min(int(n_components), ref.shape[0] - 1, ref.shape[1]))
    pca = PCA(n_components=k, whiten=True, random_state=0).fit(ref)

    def residual(x: np.ndarray) -> np.ndarray:
        back = pca.inverse_transform(pca.transform(x))
        return ((x - back) ** 2).sum(axis=1)

    q_ref = float(residual(ref).mean()) or 1.0
    novelty = (pca.transform(cur) ** 2).sum(axis=1) + residual(cur) / q_ref
    order = np.argsort(-novelty, kind="stable")[: int(limit)]
    return [
        {"event_id": ids[i], "ts": float(ts[i]), "confidence": float(conf[i]),
         "novelty": float(novelty[i])}
        for i in order
    ]  # fmt: skip


def _unlabelled_states(
    store: Any, subject: queries.Subject, window: tuple[float, float], max_scan: int
) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
    events, state_rel = _layout(store)
    if state_rel is None:
        return [], np.zeros(0), np.zeros(0), np.zeros((0, 0), dtype=np.float32)
    where, params = subject.where("e")
    win, wparams = window_clause(*window, "e.ts")
    rows = store.execute(
        f"SELECT e.event_id, e.ts, e.confidence, s.state FROM {events} AS e "
        f"JOIN {state_rel} AS s USING (event_id) "
        f"WHERE {where} AND {win} AND e.event_id NOT IN (SELECT event_id FROM labelled_events) "
        "ORDER BY hash(e.event_id) LIMIT ?",
        params + wparams + [int(max_scan)],
    )
    if not rows:
        return [], np.zeros(0), np.zeros(0), np.zeros((0, 0), dtype=np.float32)
    widths = {len(r[3]) for r in rows}
    if len(widths) > 1:
        raise ValueError(f"unlabelled states of several widths {sorted(w // 2 for w in widths)}")
    states = np.stack([unpack_state(r[3]) for r in rows])
    return ([str(r[0]) for r in rows], np.array([r[1] for r in rows], dtype=np.float64),
            np.array([r[2] for r in rows], dtype=np.float64), states)  # fmt: skip


def review_plan(
    cfg: Any,
    store: Any,
    subject: queries.Subject,
    limit: int = 50,
    now: float | None = None,
) -> dict[str, Any]:
    """The labelling budget and review queue of ``subject`` over the last ``detection_window``.

    Returns
    -------
    dict
        ``subject``, ``window``, ``n_events``, ``n_labelled``,
        ``labels_for_3_points`` (random draw, worst case p = 0.5), ``queue``
        (:func:`review_queue`) and ``reference`` (its subject name and window).
    """
    import time

    from detectors.calibration.labelling_budget import labels_needed
    from monitor.config.durations import parse_duration
    from monitor.detection.reference import state_reference

    now = time.time() if now is None else float(now)
    window = (now - parse_duration(cfg.reliability_monitor.monitoring.detection_window), now)
    events, _ = _layout(store)
    where, params = subject.where()
    win, wparams = window_clause(*window)
    n = int(store.execute(f"SELECT count(*) FROM {events} WHERE {where} AND {win}",
                          params + wparams)[0][0])  # fmt: skip
    n_lab = int(store.execute(f"SELECT count(*) FROM labelled_events WHERE {where} AND {win}",
                              params + wparams)[0][0])  # fmt: skip
    ref_subject, ref_window = state_reference(cfg, store, subject)
    queue = review_queue(store, subject, (ref_subject, ref_window), window, limit) if n else []
    return {
        "subject": subject.name, "window": list(window), "n_events": n, "n_labelled": n_lab,
        "labels_for_3_points": labels_needed(n) if n else 0,
        "reference": {"subject": ref_subject.name, "window": list(ref_window)},
        "queue": queue,
    }  # fmt: skip
