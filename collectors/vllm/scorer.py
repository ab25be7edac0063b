"""Device side of the vLLM collector: gather, pool and score one step's rows per layer.

The decoder-layer hooks hand :meth:`StepScorer.on_layer` vLLM's layer output
``(hidden_states, residual)``; the residual stream after the layer, the tensor
transformers returns as that layer's hidden state, is their sum. Only the rows the
:class:`~collectors.vllm.steps.StepPlan` names are read (one gather and one
``index_add_`` per hooked layer), summed in float32 on the layer's device. When a
request's last prompt token has run, its pooled state goes through the probe and
calibration on that device; :meth:`StepScorer.to_host` then copies every score of
the step to the host at once.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from collectors.model.host_copy import to_host
from collectors.probe.capture import CaptureRequest
from collectors.probe.linear import LinearProbe
from collectors.vllm.steps import StepPlan


@dataclass
class _Scored:
    req_ids: list[str]
    scores: torch.Tensor  # [n, 2] float32: raw logit, calibrated probability
    states: torch.Tensor | None  # [len(rows), dim] float32
    rows: list[int]


def residual_stream(output: object) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Split a decoder layer's output into ``(hidden_states, residual)``.

    vLLM's decoder layers (Llama, Qwen2, Gemma, ...) return both, flattened to
    shape ``(num_tokens, hidden_dim)``; the residual stream is their sum. A layer
    returning one tensor (or a 1-tuple) has no separate residual.
    """
    if isinstance(output, tuple):
        if len(output) >= 2 and isinstance(output[1], torch.Tensor):
            return output[0], output[1]
        return output[0], None
    return output, None  # type: ignore[return-value]


class StepScorer:
    """Pool and score the rows of each step that a plan names.

    Parameters
    ----------
    probe : LinearProbe
    layers : tuple of int
        Normalised decoder-layer indices, in the probe's concatenation order.
    capture : CaptureRequest
        Which requests keep their pooled state (projected when the probe has a projection).
    """

    def __init__(self, probe: LinearProbe, layers: tuple[int, ...], capture: CaptureRequest):
        self.probe, self.layers, self.capture = probe, layers, capture
        self._running: dict[int, dict[str, torch.Tensor]] = {i: {} for i in set(layers)}
        self._counts: dict[str, int] = {}  # rows summed so far (the mean's divisor)
        self._covered: dict[str, int] = {}  # prompt positions covered so far
        self._pending: list[_Scored] = []
        self.begin(None)

    def begin(self, plan: StepPlan | None) -> None:
        """Start a step; ``None`` disarms the hooks (dummy and profiling runs)."""
        self.plan = plan
        self._sums: dict[int, torch.Tensor] = {}
        self._rows: torch.Tensor | None = None
        self._slots: torch.Tensor | None = None

    def forget(self, req_id: str) -> None:
        """Drop a request's running sums (finished, aborted or restarted)."""
        self._counts.pop(req_id, None)
        self._covered.pop(req_id, None)
        for running in self._running.values():
            running.pop(req_id, None)

    def progress(self) -> dict[str, int]:
        """Prompt positions summed so far per request in a multi-step prefill (mean poolings)."""
        return dict(self._covered)

    def on_layer(self, index: int, output: object) -> None:
        """Decoder-layer hook body: gather and sum this step's planned rows.

        Raises
        ------
        RuntimeError, IndexError
            The layer's output does not match the plan (the caller marks the step's
            requests unscored).
        """
        plan = self.plan
        if plan is None or plan.empty or index in self._sums:
            return
        hidden, residual = residual_stream(output)  # (num_tokens, hidden_dim) each
        if self._rows is None or self._rows.device != hidden.device:
            self._rows = torch.as_tensor(plan.rows, device=hidden.device)
            self._slots = torch.as_tensor(plan.slots, device=hidden.device)
        with torch.no_grad():
            picked = hidden.index_select(0, self._rows).float()  # (g, hidden_dim)
            if residual is not None:
                picked = picked + residual.index_select(0, self._rows).float()
            sums = torch.zeros(len(plan.req_ids), picked.shape[1], device=picked.device)
            self._sums[index] = sums.index_add_(0, self._slots, picked)  # (slots, hidden_dim)
            if len(self._sums) == len(self._running):
                self._finish(plan)

    def _finish(self, plan: StepPlan) -> None:
        totals: dict[int, torch.Tensor] = {}
        for index, sums in self._sums.items():
            running = self._running[index]
            for slot, req_id in enumerate(plan.req_ids):
                if not plan.restart[slot] and req_id in running:
                    sums[slot] += running.pop(req_id)
                if not plan.complete[slot]:
                    running[req_id] = sums[slot].clone()
            totals[index] = sums
        done = [s for s, complete in enumerate(plan.complete) if complete]
        for slot, req_id in enumerate(plan.req_ids):
            before = 0 if plan.restart[slot] else self._counts.get(req_id, 0)
            self._counts[req_id] = before + plan.counts[slot]
            if plan.complete[slot]:
                self._covered.pop(req_id, None)
            else:
                self._covered[req_id] = plan.covered[slot]
        if not done:
            return
        ids = [plan.req_ids[s] for s in done]
        device = totals[self.layers[-1]].device
        index = torch.as_tensor(done, device=device)
        counts = torch.tensor([max(self._counts.pop(r), 1) for r in ids], device=device)
        parts = [totals[i].to(device).index_select(0, index) / counts[:, None] for i in self.layers]
        states = parts[0] if len(parts) == 1 else torch.cat(parts, dim=-1)  # (n, n_layers * hidden)
        logits = self.probe.logits_torch(states)  # (n,) float32
        probs = self.probe.confidence_torch(logits)  # (n,) float32
        rows = self.capture.rows(len(ids))
        captured = None
        if rows:
            kept = states.index_select(0, torch.as_tensor(rows, device=device))
            proj = self.capture.projection
            captured = kept if proj is None else proj.apply_torch(kept)
        self._pending.append(_Scored(ids, torch.stack([logits, probs], 1), captured, rows))
        self.plan = None  # every hooked layer has run for this step

    def to_host(self) -> list[tuple[str, float, float, np.ndarray | None]]:
        """``(req_id, raw_logit, probability, state)`` of every request scored since the last call.

        One device-to-host copy for all of them.
        """
        pending, self._pending = self._pending, []
        host = iter(to_host([t for p in pending for t in (p.scores, p.states)]))
        out = []
        for p in pending:
            scores, block = next(host), next(host)
            states = {} if block is None else dict(zip(p.rows, block))
            for i, req_id in enumerate(p.req_ids):
                out.append((req_id, float(scores[i, 0]), float(scores[i, 1]), states.get(i)))
        return out
