"""The hook bodies: pool the chosen layers of a prefill, score on device.

:class:`PrefillScorer` holds the per-request state between the model's
pre-hook and the decoder-layer hooks, and the pending device tensors until
:meth:`PrefillScorer.drain` copies them to the host in one transfer. Nothing
here may raise into the model's forward: any error marks the batch unscored
and is counted.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from collectors.generate.prefill import PREFILL, UNSCORED, PrefillDetector, Verdict
from collectors.model.host_copy import to_host
from collectors.model.pooling import image_token_mask, pool_hidden
from collectors.probe.capture import CaptureRequest
from collectors.probe.linear import LinearProbe

log = logging.getLogger(__name__)


@dataclass
class _Pending:
    batch: int
    scores: torch.Tensor | None  # [batch, 2] float32: raw logit, calibrated probability
    states: torch.Tensor | None  # [len(rows), dim] float32
    rows: list[int]


class PrefillScorer:
    """Hook callbacks for one collector.

    Parameters
    ----------
    probe : LinearProbe
    layers : tuple of int
        Normalised decoder-layer indices, in the probe's concatenation order.
    image_token_ids : tuple of int
        For ``mean_image_tokens`` pooling.
    capture : CaptureRequest
    """

    def __init__(
        self,
        probe: LinearProbe,
        layers: tuple[int, ...],
        image_token_ids: tuple[int, ...],
        capture: CaptureRequest,
    ) -> None:
        self.probe, self.layers, self.capture = probe, layers, capture
        self.image_token_ids = image_token_ids
        self.detector = PrefillDetector()
        self.errors = 0
        self.unscored_rows = 0  # rows left unscored because prefill or padding was unclear
        self._reasons_logged: set[str] = set()
        self.paused = 0
        self._pending: list[_Pending] = []
        self.disarm()

    def disarm(self) -> None:
        self._armed = False
        self._batch = 0
        self._verdict: Verdict | None = None
        self._pooled: dict[int, torch.Tensor] = {}  # layer -> [batch, hidden]

    # -- hooks --------------------------------------------------------------
    def on_model_call(self, module: nn.Module, args: tuple, kwargs: dict) -> None:
        """Model pre-hook: arm on a prefill, mark the batch unscored when it cannot tell."""
        self.disarm()  # a previous call that raised before our layers left nothing to score
        if self.paused:
            return
        try:
            verdict = self.detector.on_forward(args, kwargs)
            if verdict.kind == UNSCORED:
                self._batch = verdict.batch
                self._unscored(verdict.reason)
            elif verdict.kind == PREFILL:
                self._verdict, self._batch, self._armed = verdict, verdict.batch, True
        except Exception:  # noqa: BLE001 - a monitoring bug must not fail the request
            self._count_error()

    def layer_hook(self, index: int) -> Callable[[nn.Module, tuple, Any], None]:
        """Forward hook for decoder layer ``index``."""

        def hook(module: nn.Module, args: tuple, output: Any) -> None:
            if not self._armed or index in self._pooled:
                return
            try:
                hidden = output[0] if isinstance(output, tuple) else output  # [batch, seq, hidden]
                verdict = self._verdict
                mismatch = self.detector.check_layer(verdict, hidden)
                if mismatch:
                    self._unscored(mismatch)
                    return
                self._batch = int(hidden.shape[0])
                image_mask = None
                if self.probe.pooling == "mean_image_tokens" and verdict.input_ids is not None:
                    image_mask = image_token_mask(verdict.input_ids, self.image_token_ids)
                with torch.no_grad():
                    self._pooled[index] = pool_hidden(
                        hidden, verdict.mask, self.probe.pooling, image_mask
                    )  # [batch, hidden], layer's device and dtype; no_grad: no autograd graph
                    if len(self._pooled) == len(set(self.layers)):
                        self._score()
            except Exception:  # noqa: BLE001
                self._fail()

        return hook

    def _unscored(self, reason: str) -> None:
        """Fail closed: the batch's rows come back unscored; each kind of reason logged once."""
        if self._batch:
            self._pending.append(_Pending(self._batch, None, None, []))
            self.unscored_rows += self._batch
        key = re.sub(r"\d+", "N", reason)
        if key not in self._reasons_logged:
            self._reasons_logged.add(key)
            log.warning("vlm-monitor collector left a batch unscored: %s", reason)
        self.disarm()

    def _score(self) -> None:
        last = self._pooled[self.layers[-1]]
        parts = [self._pooled[i].to(last.device) for i in self.layers]
        states = parts[0] if len(parts) == 1 else torch.cat(parts, dim=-1)  # [batch, n * hidden]
        logits = self.probe.logits_torch(states)  # [batch] float32, layer's device
        probs = self.probe.confidence_torch(logits)  # [batch] float32
        rows = self.capture.rows(self._batch)
        captured = None
        if rows:
            kept = states if len(rows) == self._batch else torch.stack([states[i] for i in rows])
            proj = self.capture.projection
            captured = kept.float() if proj is None else proj.apply_torch(kept)  # [rows, dim]
        self._pending.append(_Pending(self._batch, torch.stack([logits, probs], 1), captured, rows))
        self.disarm()

    def _fail(self) -> None:  # a bug of ours, logged with its traceback
        if self._batch:
            self._pending.append(_Pending(self._batch, None, None, []))
        self.disarm()
        self._count_error()

    def _count_error(self) -> None:
        self.errors += 1
        if self.errors == 1:
            log.exception("vlm-monitor collector hook failed; the request continues unscored")

    # -- results ------------------------------------------------------------
    def drain(self) -> Iterator[tuple[float, float, np.ndarray | None]]:
        """Yield ``(raw_logit, probability, state)`` per row of every pending batch.

        All pending device tensors are concatenated on one device and copied to
        the host in a single transfer; unscored rows yield NaNs.
        """
        pending, self._pending = self._pending, []
        host = iter(to_host([t for p in pending for t in (p.scores, p.states)]))
        for p in pending:
            scores, block = next(host), next(host)
            if scores is None:
                scores = np.full((p.batch, 2), np.nan, dtype=np.float32)
            states = {} if block is None else dict(zip(p.rows, block))
            for i in range(p.batch):
                yield float(scores[i, 0]), float(scores[i, 1]), states.get(i)
