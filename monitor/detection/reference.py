"""Which reference each drift statistic is measured against.

- **Score drift** (KL, PSI, JS, KS on the confidence and raw logit) and the
  label-free accuracy compare a probe version with itself: the first
  ``reference_window`` of that version's traffic
  (:func:`monitor.store.queries.reference_start`). A new probe's confidences
  differ by construction, so its own start is the only fair reference.
- **Calibration** is judged per probe version on the window's own labels.
- **Pooled-state drift** (MMD, domain classifier) measures the model's inputs as
  its decoder layer sees them, which do not change when the probe does. Its
  reference stays put across probe versions (``monitoring.state_reference:
  model``, the default): the model's first ``reference_window`` of traffic over
  every version, or the range pinned in ``monitoring.pinned_references``.
  Otherwise each new probe version, promoted after a shift, would start a fresh
  reference from already-shifted traffic and state drift would read "no drift"
  from then on. ``state_reference: probe`` restores the per-version reference
  (needed when a new probe reads another decoder layer).
"""

from __future__ import annotations

from typing import Any

from monitor.config.durations import parse_duration
from monitor.store import queries


def state_reference(
    cfg: Any, store: Any, subject: queries.Subject
) -> tuple[queries.Subject, tuple[float, float]]:
    """``(subject, (start, end))`` whose states are the pooled-state reference of ``subject``.

    Parameters
    ----------
    cfg : monitor.config.settings.Config
    store : Store
    subject : Subject
        The scored subject (model, probe version, tag).

    Returns
    -------
    (Subject, (float, float))
        The reference subject (``probe_version`` None: every version) and window,
        seconds since the Unix epoch.
    """
    mon = cfg.reliability_monitor.monitoring
    span = parse_duration(mon.reference_window)
    pinned = mon.pinned_references.get(subject.model_id or "")
    if pinned is not None:
        return queries.Subject(subject.model_id, None, subject.tag), pinned.bounds()
    if mon.state_reference == "probe":
        first = queries.reference_start(store, subject, span, mon.min_window_events)
        return subject, (first, first + span)
    model = queries.Subject(subject.model_id, None, subject.tag)
    first = queries.reference_start(store, model, span, mon.min_window_events)
    return model, (first, first + span)
