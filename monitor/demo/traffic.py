"""Drive generated POPE-style traffic through a monitored model (demo and tests).

Each request is answered with ``generate()`` while a :class:`ReliabilityCollector`
is attached; its event goes to the events topic and, because the generator knows
the truth, a delayed label goes to the labels topic, as a reviewer would send it.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from collectors.generate.collector import ReliabilityCollector
from collectors.probe.linear import LinearProbe
from collectors.wire.events import LabelEvent, ScoredEvent
from monitor.reference_vlm.model import answer_batch
from monitor.reference_vlm.shapes import Sample


@dataclass(frozen=True)
class Window:
    """A stretch of traffic: its name, time bounds (seconds since epoch), truth and the
    probe version that served it (None: none, or more than one)."""

    name: str
    start: float
    end: float
    events: tuple[ScoredEvent, ...]
    correct: np.ndarray  # bool, shape (n_events,)
    probe_version: str | None = None

    @property
    def accuracy(self) -> float:
        return float(self.correct.mean()) if len(self.correct) else float("nan")


def capture_states(
    model: torch.nn.Module,
    processor: object,
    samples: Sequence[Sample],
    *,
    layer: int,
    pooling: str,
    batch_size: int = 128,
) -> tuple[np.ndarray, np.ndarray]:
    """Pooled hidden states and answer correctness for labelled reference traffic.

    Uses the same hook as serving (a collector with an all-zero probe and state
    capture on), so the probe is fitted on exactly what it will read.

    Returns
    -------
    states : ndarray of shape (n_samples, hidden_dim)
    correct : ndarray of shape (n_samples,), bool
    """
    hidden_dim = model.config.text_config.hidden_size
    blank = LinearProbe(
        weight=np.zeros(hidden_dim), bias=0.0, layer=layer, pooling=pooling, version="capture"
    )
    with ReliabilityCollector(model, blank, capture_states=True) as col:
        answers = answer_batch(model, processor, samples, batch_size=batch_size)
        scores = col.collect()
    states = np.stack([s.state for s in scores])
    correct = np.array([a == s.answer for a, s in zip(answers, samples)])
    return states, correct


def run_window(
    name: str,
    model: torch.nn.Module,
    processor: object,
    collector: ReliabilityCollector,
    samples: Sequence[Sample],
    emit_label: Callable[[LabelEvent], object],
    *,
    batch_size: int = 64,
    progress: Callable[[int], None] | None = None,
) -> Window:
    """Answer ``samples`` batch by batch with the collector attached; emit events and labels.

    Event ids are a fresh prefix per window and the request's index in it, so rows
    that share a time stamp (one ``generate()`` batch) still sort in serving order:
    the retrain's seeded split then draws the same requests on every run.
    """
    start = time.time()
    prefix = uuid.uuid4().hex[:16]
    events: list[ScoredEvent] = []
    correct: list[bool] = []
    for i in range(0, len(samples), batch_size):
        batch = samples[i : i + batch_size]
        answers = answer_batch(model, processor, batch, batch_size=batch_size)
        ids = [f"{prefix}-{j:06d}" for j in range(i, i + len(batch))]
        batch_events = collector.emit(collector.collect(), answers, tags=name, event_ids=ids)
        for event, answer, sample in zip(batch_events, answers, batch):
            if event is None:  # unscored (a collector hook failed): no event to label
                continue
            ok = answer == sample.answer
            emit_label(
                LabelEvent(event_id=event.event_id, correct=ok, ts=time.time(), source="generator")
            )
            correct.append(ok)
            events.append(event)
        if progress is not None:
            progress(len(batch))
    end = time.time()
    versions = {e.probe_version for e in events}
    return Window(
        name=name,
        start=start,
        end=end,
        events=tuple(events),
        correct=np.array(correct),
        probe_version=versions.pop() if len(versions) == 1 else None,
    )


def capture_all_layers(
    model: object, processor: object, samples: Sequence, *, pooling: str, batch_size: int = 128
) -> tuple[dict[int, np.ndarray], np.ndarray]:
    """Pooled states of every decoder layer in one pass, with answer correctness.

    Uses the serving hook (a stacked all-zero probe over every layer, state
    capture on), so the sweep reads exactly what a collector would.

    Returns
    -------
    states : dict of int to ndarray of shape (n_samples, hidden_dim)
    correct : ndarray of shape (n_samples,), bool
    """
    from collectors.model.registry import resolve_architecture

    n_layers = len(resolve_architecture(model).layers)
    width = model.config.get_text_config().hidden_size
    layers = tuple(range(n_layers))
    blank = LinearProbe(
        weight=np.zeros(width * n_layers), bias=0.0, layers=layers, pooling=pooling, version="sweep"
    )
    with ReliabilityCollector(model, blank, capture_states=True) as col:
        answers = answer_batch(model, processor, samples, batch_size=batch_size)
        scores = col.collect()
    stacked = np.stack([s.state for s in scores])  # [n, n_layers * width]
    correct = np.array([a == s.answer for a, s in zip(answers, samples)])
    return {i: stacked[:, i * width : (i + 1) * width] for i in layers}, correct
