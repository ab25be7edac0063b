"""The serving-side collector: forward hooks, pooling, probe score, gate, emission.

One request batch flows like this::

    model.generate(...)                      # or model(...)
      wrapper on model.generate  -> the caller's input_ids and attention_mask
      pre-hook on the model      -> prefill? (first forward, empty KV cache: see .prefill)
      forward hook on layer(s) L -> hidden [batch, seq, hidden] -> pooled [batch, hidden]
                                    -> probe logit and calibrated probability [batch]
                                    (on the layer's device and dtype, no host sync)
    collector.collect()          -> one host sync: logits, probabilities, sampled states
                                    -> gate decisions
    collector.resolve(...)       -> gray zone only: K sampled answers, majority share
    collector.emit(scores, answers)  -> events handed to a background emitter (never blocks)

During ``generate`` the layer sees the prefill ``[batch, prompt_len, hidden]``
first, then ``[batch, 1, hidden]`` per new token; only the prefill is read,
so each request is scored once, also with ``use_cache=False``. A forward the
detector cannot classify is left unscored with a reason (``unscored_rows``).
Where the decoder layers are and which positions hold image tokens comes from
:mod:`collectors.model.registry`.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch
from torch import nn

from collectors.generate.hooks import PrefillScorer
from collectors.generate.prefill import GenerateWrapper
from collectors.model.pooling import POOLINGS
from collectors.model.pooling import pool_hidden as pool_hidden  # re-exported
from collectors.model.probe_layers import check_swap, probe_layers
from collectors.model.registry import resolve_architecture
from collectors.probe.capture import CaptureRequest
from collectors.probe.linear import LinearProbe
from collectors.routing.gate import RoutingGate
from collectors.routing.score import Score, to_events
from collectors.routing.self_consistency import SelfConsistency, resolve_gray_zone
from collectors.wire.events import ScoredEvent

log = logging.getLogger(__name__)
__all__ = ["POOLINGS", "ReliabilityCollector", "Score", "pool_hidden"]


def _text_width(model: nn.Module) -> int | None:
    config = getattr(model, "config", None)
    try:
        width = config.get_text_config().hidden_size
    except AttributeError:
        return None
    return width if isinstance(width, int) else None


class ReliabilityCollector:
    """Score every request of a HuggingFace VLM with a hidden-state probe.

    The handle attaches hooks to ``model`` and removes every one of them on
    :meth:`close` or when its ``with`` block ends, even after an error. Not
    thread-safe: one collector per model replica serving one batch at a time.

    Parameters
    ----------
    model : torch.nn.Module
        A transformers VLM (any family in :mod:`collectors.model.registry`, or any
        ``*ForConditionalGeneration`` through the generic fallback); may be
        dispatched over devices with accelerate's ``device_map``.
    probe : LinearProbe
        Its ``read_layers``, ``pooling``, calibration and projection are used.
    gate : RoutingGate, optional
    emitter : object with ``emit(event) -> bool``, optional
        Usually a :class:`collectors.transport.emitter.KafkaEmitter`.
    model_id : str
    layer : int or "auto", optional
        Decoder layer index overriding ``probe.layer`` (not for stacked probes);
        ``"auto"`` takes the family's default from the registry.
    capture_states : bool or float
        Share of requests, in [0, 1], whose pooled state (projected by
        ``probe.projection`` when it has one) is kept on the score and event;
        ``True`` means 1.0. Rows are drawn with a seeded host RNG.
    family : str, optional
        Registry key overriding detection from ``model.config.model_type``.
    self_consistency : SelfConsistency, optional
        Used by :meth:`resolve` for gray-zone requests.
    seed : int
        Seed of the state-capture sampler.

    Raises
    ------
    LayerResolutionError
        No decoder layers, or a layer index out of range.
    ValueError
        Unknown pooling, ``capture_states`` outside [0, 1], ``layer`` given
        with a stacked probe, or probe width not matching the model.
    """

    def __init__(
        self,
        model: nn.Module,
        probe: LinearProbe,
        *,
        gate: RoutingGate | None = None,
        emitter: Any = None,
        model_id: str = "model",
        layer: int | str | None = None,
        capture_states: bool | float = False,
        family: str | None = None,
        self_consistency: SelfConsistency | None = None,
        seed: int = 0,
    ) -> None:
        if probe.pooling not in POOLINGS:
            raise ValueError(f"unknown pooling {probe.pooling!r}; expected one of {POOLINGS}")
        rate = float(capture_states)
        if not 0.0 <= rate <= 1.0:
            raise ValueError(f"capture_states must be a bool or a rate in [0, 1], got {rate}")
        self.model, self.probe, self.emitter, self.model_id = model, probe, emitter, model_id
        self.gate = gate or RoutingGate()
        self.self_consistency = self_consistency
        self.capture_rate = rate
        self.architecture = resolve_architecture(model, family)
        self.layers = probe_layers(self.architecture, probe, layer, _text_width(model))
        self.layer = self.layers[0]
        self.layer_path = f"{self.architecture.layers_path}.{self.layer}"
        self._scorer = PrefillScorer(
            probe,
            self.layers,
            self.architecture.image_token_ids,
            CaptureRequest(rate, probe.projection, np.random.default_rng(seed)),
        )
        self._handles: list[torch.utils.hooks.RemovableHandle] = []
        self._generate: GenerateWrapper | None = None
        self._layer_override = layer is not None
        self._next_probe: LinearProbe | None = None  # set by swap_probe, any thread

    def swap_probe(self, probe: LinearProbe) -> None:
        """Serve ``probe`` from the next request boundary (:mod:`collectors.probe.reload`).

        The switch happens in the model pre-hook of the next call that is not
        paused and finds no scores waiting for :meth:`collect`, so every event
        carries the version that scored it. Safe to call from another thread.

        Raises
        ------
        ValueError
            ``probe`` reads other decoder layers, another pooling or width.
        """
        check_swap(self.architecture, self.probe, self.layers, probe, self._layer_override)
        self._next_probe = probe

    def _before_call(self, module: nn.Module, args: tuple, kwargs: dict) -> None:
        probe = self._next_probe
        if probe is not None and not self._scorer.paused and not self._scorer._pending:
            self._next_probe = None
            self.probe = self._scorer.probe = probe
            self._scorer.capture.projection = probe.projection
            log.info("collector now serves probe %s", probe.version)
        self._scorer.on_model_call(module, args, kwargs)

    @property
    def hook_errors(self) -> int:
        """Request batches left unscored because a hook failed (the model was unaffected)."""
        return self._scorer.errors

    @property
    def unscored_rows(self) -> int:
        """Requests left unscored because their prefill or padding could not be told apart."""
        return self._scorer.unscored_rows

    # -- hook lifecycle -------------------------------------------------
    def attach(self) -> ReliabilityCollector:
        """Register the hooks and wrap ``model.generate``; idempotent."""
        if not self._handles:
            layers = self.architecture.layers
            self._handles = [
                self.model.register_forward_pre_hook(self._before_call, with_kwargs=True)
            ] + [
                layers[i].register_forward_hook(self._scorer.layer_hook(i))
                for i in sorted(set(self.layers))
            ]
            self._generate = GenerateWrapper(self.model, self._scorer.detector)
        return self

    def close(self) -> None:
        """Remove every hook this collector registered and its ``generate`` wrapper; idempotent."""
        for handle in self._handles:
            handle.remove()
        self._handles = []
        if self._generate is not None:
            self._generate.remove()
            self._generate = None
        self._scorer.disarm()

    def __enter__(self) -> ReliabilityCollector:
        return self.attach()

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def paused(self) -> Iterator[None]:
        """Forward passes inside this block are not scored (e.g. self-consistency samples)."""
        self._scorer.paused += 1
        try:
            yield
        finally:
            self._scorer.paused -= 1

    # -- results ---------------------------------------------------------
    def collect(self) -> list[Score]:
        """Scores of every request since the last call, in order; one host sync.

        Returns
        -------
        list of Score
            One per batch row of each prefill seen. A batch whose hook failed
            gets unscored rows (NaN confidence, ``scored=False``, decision
            ``"fallback"``), so scores stay aligned with the caller's answers.
        """
        rows = []
        for logit, prob, state in self._scorer.drain():
            decision = self.gate.decide(prob)
            rows.append(
                Score(
                    raw_logit=logit,
                    confidence=prob,
                    decision=decision,
                    state=state,
                    scored=not math.isnan(prob),
                    route=decision,
                )
            )
        return rows

    def resolve(
        self,
        scores: Sequence[Score],
        make_inputs: Callable[[list[int]], Mapping[str, Any]],
        decode: Callable[[torch.Tensor], list[str]],
        self_consistency: SelfConsistency | None = None,
    ) -> list[Score]:
        """Run self-consistency on the gray-zone requests and set their final route.

        Parameters
        ----------
        scores : sequence of Score
            From :meth:`collect`, for one batch.
        make_inputs : callable
            Row indices -> processor outputs for those requests only (the caller
            re-encodes them; pixel layouts differ per family).
        decode : callable
            Generated token ids (n, new_tokens) -> n strings.
        self_consistency : SelfConsistency, optional
            Defaults to the collector's.

        Returns
        -------
        list of Score
            Gray-zone rows carry ``consistency``, ``consensus`` and ``route``
            (``"serve"`` or ``"fallback"``); other rows are returned unchanged.

        Raises
        ------
        ValueError
            Gray-zone rows exist and no :class:`SelfConsistency` is configured.
        """
        sc = self_consistency or self.self_consistency
        with self.paused():
            return resolve_gray_zone(self.model, self.gate, sc, scores, make_inputs, decode)

    def emit(
        self,
        scores: Sequence[Score],
        answers: Sequence[str],
        tags: Sequence[str] | str = "",
        event_ids: Sequence[str | None] | None = None,
    ) -> list[ScoredEvent | None]:
        """Build one :class:`ScoredEvent` per scored request; hand them to the emitter.

        Never blocks on Kafka. The result is aligned with ``scores``; an unscored
        row (a failed hook) produces no event and ``None`` in its place.
        ``event_ids`` gives each event its id (the client's request ids, so labels
        sent later join); ``None`` entries, or no list, get fresh random ids.

        Raises
        ------
        ValueError
            ``scores`` and ``answers`` (or ``tags``, or ``event_ids``) differ in length.
        """
        events = to_events(scores, answers, tags, self.model_id, self.probe.version,
                           self.layer, self.probe.pooling, event_ids)  # fmt: skip
        if self.emitter is not None:
            for event in events:
                if event is not None:
                    self.emitter.emit(event)
        return events
