"""The worker's results by the caller's request id, bounded; read by RPC and middleware."""

from __future__ import annotations

import threading
from collections import Counter, OrderedDict
from typing import Any

import numpy as np

from collectors.routing.score import Score


class ResultBook:
    """The last ``keep`` results, oldest dropped first; thread-safe.

    Parameters
    ----------
    keep : int
        Results kept (``VLLMCollectorSettings.keep_results``).
    counts : Counter
        Where ``results_dropped`` is counted.
    """

    def __init__(self, keep: int, counts: Counter[str]) -> None:
        self.keep, self.counts = int(keep), counts
        self._results: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._lock = threading.Lock()

    def scored(self, key: str, event_id: str, tag: str, score: Score, where: dict[str, Any]):
        """Keep a scored request; ``where`` holds ``probe_version``, ``layer`` and ``pooling``."""
        state = None if score.state is None else np.asarray(score.state, np.float32).tolist()
        self._put(key, {
            "request_id": key, "event_id": event_id, "scored": True, "reason": None,
            "raw_logit": score.raw_logit, "confidence": score.confidence,
            "decision": score.decision, "tag": tag, "state": state, **where,
        })  # fmt: skip

    def unscored(self, key: str, reason: str) -> None:
        """Keep a request left unscored, with the reason."""
        self._put(key, {"request_id": key, "scored": False, "reason": reason})

    def _put(self, key: str, record: dict[str, Any]) -> None:
        with self._lock:
            self._results[key] = record
            while len(self._results) > self.keep:
                self._results.popitem(last=False)
                self.counts["results_dropped"] += 1

    def take(self, request_ids: list[str] | None = None) -> dict[str, dict[str, Any]]:
        """Remove and return results by request id (all when ``None``)."""
        with self._lock:
            keys = list(self._results) if request_ids is None else request_ids
            return {k: self._results.pop(k) for k in keys if k in self._results}

    def peek(self, request_ids: list[str]) -> dict[str, dict[str, Any]]:
        """Results by request id without removing them (``state`` left out)."""
        with self._lock:
            found = {k: self._results[k] for k in request_ids if k in self._results}
        return {k: {f: v for f, v in r.items() if f != "state"} for k, r in found.items()}

    def __len__(self) -> int:
        return len(self._results)
