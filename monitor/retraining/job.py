"""The daemon's side of a retrain: read the window from DuckDB, run the job, record the probe."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from monitor.retraining.lifecycle import sync_probes
from monitor.store.labelled import read_labelled_states
from retrain.job import RetrainOutcome, RetrainSettings, champion_challenger
from retrain.registry import ProbeRegistry


def run_retrain(
    store: Any,
    registry: ProbeRegistry,
    window: tuple[float, float],
    settings: RetrainSettings,
    *,
    announce: Callable[[dict[str, Any]], object] | None = None,
) -> RetrainOutcome:
    """One champion/challenger round on the labelled states the store holds for ``window``.

    Parameters
    ----------
    store : monitor.store.database.Store
        Read through ``labelled_events``; its ``probes`` table is brought in line with
        the registry afterwards (:func:`monitor.retraining.lifecycle.sync_probes`).
    registry : ProbeRegistry
    window : (float, float)
        ``start <= ts < end``, seconds since the Unix epoch.
    settings : RetrainSettings
    announce : callable, optional
        Called with the promotion message.

    Returns
    -------
    RetrainOutcome
    """
    data = read_labelled_states(store, window[0], window[1], settings.model_id)
    outcome = champion_challenger(data, registry, window, settings, announce=announce)
    if hasattr(store, "record_probe"):  # not a read-only store (a test double)
        sync_probes(store, registry, settings.model_id or "")
    return outcome
