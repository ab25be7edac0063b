"""The serving-side collector: forward hooks, pooling, probe score, gate, emission.

One request batch flows like this::

    model.generate(...)                      # or model(...)
      pre-hook on the model      -> is this the prefill? keep the 2-D attention mask
      forward hook on layer L    -> hidden [batch, seq, hidden] -> pooled [batch, hidden]
                                    -> probe logits [batch] (on the layer's device, no sync)
    collector.collect()          -> one host sync: logits -> confidences -> gate decisions
    collector.emit(scores, answers)  -> events handed to a background emitter (never blocks)

During ``generate`` the layer sees the prefill ``[batch, prompt_len, hidden]``
first, then ``[batch, 1, hidden]`` per new token; only the prefill is read,
so each request is scored once.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import torch
from torch import nn

from collectors.events import ScoredEvent, new_event_id
from collectors.gate import RoutingGate
from collectors.layers import resolve_layer
from collectors.probe import LinearProbe

log = logging.getLogger(__name__)
POOLINGS = ("last_prompt_token", "mean_prompt_tokens")


class Emitter(Protocol):
    def emit(self, event: Any, topic: str | None = None) -> bool: ...


@dataclass(frozen=True)
class Score:
    """The collector's verdict on one request.

    Attributes
    ----------
    raw_logit : float
        Probe logit before calibration.
    confidence : float
        Calibrated probability that the answer is correct.
    decision : str
        Routing decision from the gate.
    state : ndarray of shape (hidden_dim,) or None
        The pooled hidden state, when state capture is on.
    """

    raw_logit: float
    confidence: float
    decision: str
    state: np.ndarray | None = None


def pool_hidden(hidden: torch.Tensor, mask: torch.Tensor | None, pooling: str) -> torch.Tensor:
    """Pool one decoder layer's output over the prompt tokens.

    Parameters
    ----------
    hidden : Tensor of shape (batch, seq, hidden_dim)
    mask : Tensor of shape (batch, seq) or None
        Attention mask (1 = real token, 0 = padding); ``None`` means no padding.
    pooling : {"last_prompt_token", "mean_prompt_tokens"}

    Returns
    -------
    Tensor of shape (batch, hidden_dim), on ``hidden``'s device and dtype.
    """
    batch, seq, _ = hidden.shape
    if mask is None:
        if pooling == "last_prompt_token":
            return hidden[:, -1, :]
        return hidden.mean(dim=1)
    mask = mask.to(hidden.device)
    if pooling == "last_prompt_token":
        positions = torch.arange(seq, device=hidden.device).expand(batch, seq)
        last = (positions * (mask > 0)).argmax(dim=1)  # [batch]: last real token, any padding side
        return hidden[torch.arange(batch, device=hidden.device), last]
    weights = (mask > 0).to(hidden.dtype).unsqueeze(-1)  # [batch, seq, 1]
    return (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp_min(1)


class ReliabilityCollector:
    """Score every request of a HuggingFace VLM with a hidden-state probe.

    Use as a context manager (hooks are removed on exit, even after an error)
    or call :meth:`attach` and :meth:`close`. Not thread-safe: one collector
    per model replica that serves one batch at a time.

    Parameters
    ----------
    model : torch.nn.Module
        A transformers VLM, e.g. ``LlavaForConditionalGeneration``.
    probe : LinearProbe
        The probe; its ``layer`` and ``pooling`` are used unless overridden.
    gate : RoutingGate, optional
    emitter : object with ``emit(event) -> bool``, optional
        Usually a :class:`collectors.emitter.KafkaEmitter`.
    model_id : str
    layer : int, optional
        Decoder layer index; defaults to ``probe.layer``.
    capture_states : bool
        Keep the pooled state on each :class:`Score` and event.
    """

    def __init__(
        self,
        model: nn.Module,
        probe: LinearProbe,
        *,
        gate: RoutingGate | None = None,
        emitter: Emitter | None = None,
        model_id: str = "model",
        layer: int | None = None,
        capture_states: bool = False,
    ) -> None:
        self.model = model
        self.probe = probe
        self.gate = gate or RoutingGate()
        self.emitter = emitter
        self.model_id = model_id
        self.layer = probe.layer if layer is None else layer
        self.capture_states = capture_states
        if probe.pooling not in POOLINGS:
            raise ValueError(f"unknown pooling {probe.pooling!r}; expected one of {POOLINGS}")
        self.layer_path, self._layer_module = resolve_layer(model, self.layer)
        self._handles: list[torch.utils.hooks.RemovableHandle] = []
        self._armed = False
        self._mask: torch.Tensor | None = None
        self._pending_logits: list[torch.Tensor] = []
        self._pending_states: list[torch.Tensor] = []
        self.hook_errors = 0

    # -- hook lifecycle -------------------------------------------------
    def attach(self) -> ReliabilityCollector:
        """Register the hooks; idempotent."""
        if not self._handles:
            self._handles = [
                self.model.register_forward_pre_hook(self._on_model_call, with_kwargs=True),
                self._layer_module.register_forward_hook(self._on_layer_output),
            ]
        return self

    def close(self) -> None:
        """Remove every hook this collector registered."""
        for handle in self._handles:
            handle.remove()
        self._handles = []
        self._armed = False

    def __enter__(self) -> ReliabilityCollector:
        return self.attach()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- hooks (must never raise into the model) -------------------------
    def _on_model_call(self, module: nn.Module, args: tuple, kwargs: dict) -> None:
        try:
            cache = kwargs.get("past_key_values")
            past = 0 if cache is None else int(cache.get_seq_length())
            self._armed = past == 0  # prefill: nothing cached yet
            mask = kwargs.get("attention_mask")
            self._mask = mask if (self._armed and mask is not None and mask.dim() == 2) else None
        except Exception:  # noqa: BLE001 - a monitoring bug must not fail the request
            self._armed = False
            self._count_error()

    def _on_layer_output(self, module: nn.Module, args: tuple, output: Any) -> None:
        if not self._armed:
            return
        self._armed = False
        try:
            hidden = output[0] if isinstance(output, tuple) else output  # [batch, seq, hidden]
            with torch.no_grad():
                pooled = pool_hidden(hidden, self._mask, self.probe.pooling)  # [batch, hidden]
                self._pending_logits.append(self.probe.logits_torch(pooled))  # [batch]
                if self.capture_states:
                    self._pending_states.append(pooled.detach().float())
        except Exception:  # noqa: BLE001
            self._count_error()
        finally:
            self._mask = None

    def _count_error(self) -> None:
        self.hook_errors += 1
        if self.hook_errors == 1:
            log.exception("vlm-monitor collector hook failed; the request continues unscored")

    # -- results ---------------------------------------------------------
    def collect(self) -> list[Score]:
        """Scores of every request since the last call, in order; one host sync.

        Returns
        -------
        list of Score, one per batch row of each prefill seen.
        """
        if not self._pending_logits:
            return []
        logits = torch.cat(self._pending_logits).cpu().numpy().astype(np.float64)
        states = torch.cat(self._pending_states).cpu().numpy() if self._pending_states else None
        self._pending_logits, self._pending_states = [], []
        confidence = self.probe.confidence_from_logits(logits)
        return [
            Score(
                raw_logit=float(z),
                confidence=float(p),
                decision=self.gate.decide(float(p)),
                state=None if states is None else states[i],
            )
            for i, (z, p) in enumerate(zip(logits, confidence))
        ]

    def emit(
        self, scores: Sequence[Score], answers: Sequence[str], tags: Sequence[str] | str = ""
    ) -> list[ScoredEvent]:
        """Build one :class:`ScoredEvent` per score and hand them to the emitter (never blocks).

        Raises
        ------
        ValueError
            ``scores`` and ``answers`` differ in length.
        """
        if len(scores) != len(answers):
            raise ValueError(f"{len(scores)} scores but {len(answers)} answers")
        tag_list = [tags] * len(scores) if isinstance(tags, str) else list(tags)
        now = time.time()
        events = [
            ScoredEvent(
                event_id=new_event_id(),
                ts=now,
                model_id=self.model_id,
                probe_version=self.probe.version,
                layer=self.layer,
                pooling=self.probe.pooling,
                raw_logit=s.raw_logit,
                confidence=s.confidence,
                decision=s.decision,
                answer=a,
                tag=t,
                state=None if s.state is None else [float(v) for v in s.state],
            )
            for s, a, t in zip(scores, answers, tag_list)
        ]
        if self.emitter is not None:
            for event in events:
                self.emitter.emit(event)
        return events
