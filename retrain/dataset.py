"""The arrays a retrain runs on: labelled events with their pooled states."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class LabelledStates:
    """Labelled events with their pooled states, in time order.

    Attributes
    ----------
    event_ids : ndarray of shape (n_samples,), object
    ts : ndarray of shape (n_samples,), float64
        Event time, seconds since the Unix epoch.
    states : ndarray of shape (n_samples, dim), float32
        Pooled (possibly projected) hidden states.
    correct : ndarray of shape (n_samples,), bool
    probe_version : ndarray of shape (n_samples,), object
        Probe that scored each event at serving time.
    confidence : ndarray of shape (n_samples,), float64
        Serving-time calibrated confidence of that probe.
    """

    event_ids: np.ndarray
    ts: np.ndarray
    states: np.ndarray
    correct: np.ndarray
    probe_version: np.ndarray
    confidence: np.ndarray

    def __len__(self) -> int:
        return int(self.correct.shape[0])

    def since(self, index: int) -> LabelledStates:
        """The rows from ``index`` on (time order kept)."""
        return LabelledStates(*(getattr(self, f)[index:] for f in (
            "event_ids", "ts", "states", "correct", "probe_version", "confidence")))  # fmt: skip
