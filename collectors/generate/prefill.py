"""Tell a request's prefill from a decode step, whatever the generation loop calls its inputs.

transformers renames the keywords its ``generate`` loop passes to the model's
forward between minor releases (the KV cache arrived as ``past_key_values`` up
to 5.23 and as ``cache`` from 5.24, and an all-ones ``attention_mask`` is no
longer passed at all). Nothing here reads those names. A forward is a prefill
when all of these hold:

- no KV cache among its inputs holds tokens yet; a cache is recognised by what
  it is (an object with ``get_seq_length()``), not by its keyword;
- inside ``generate``, it is the first forward of that call: the collector
  wraps the model's ``generate`` and sees the caller's own ``input_ids`` and
  ``attention_mask``, which are the public API and do not move;
- the decoder layer then sees as many positions as the prompt has (checked in
  :meth:`PrefillDetector.check_layer`).

Where those sources disagree, or the padding of a batch cannot be known, the
forward is *unscored* with a reason (:class:`Verdict`), never scored as a
prefill: a decode step scored by mistake would be a silent wrong number.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch

PREFILL, DECODE, UNSCORED = "prefill", "decode", "unscored"


@dataclass(frozen=True)
class Verdict:
    """What one model forward is, and what the pooling needs to read it.

    Attributes
    ----------
    kind : {"prefill", "decode", "unscored"}
    batch : int
        Rows of the forward (0 when unknown).
    seq : int or None
        Positions the decoder layers will see, when known.
    input_ids : Tensor of shape (batch, seq), integer, or None
    mask : Tensor of shape (batch, seq) or None
        Padding mask, 1 = real token; ``None`` means no padding.
    reason : str
        Why a forward is unscored ("" otherwise): one line for the log.
    """

    kind: str
    batch: int = 0
    seq: int | None = None
    input_ids: torch.Tensor | None = None
    mask: torch.Tensor | None = None
    reason: str = ""


def cached_tokens(args: tuple, kwargs: Mapping[str, Any]) -> int | None:
    """Tokens already in the KV cache passed to a forward, found by type, not by keyword.

    Returns
    -------
    int or None
        The cache's ``get_seq_length()``; ``None`` when no cache object is among
        the inputs. A legacy tuple cache (transformers 4.x) counts by its key
        tensors' sequence length.
    """
    for value in (*kwargs.values(), *args):
        length = getattr(value, "get_seq_length", None)
        if callable(length):
            return int(length())
        if isinstance(value, tuple) and value and isinstance(value[0], tuple) and value[0]:
            keys = value[0][0]
            if isinstance(keys, torch.Tensor) and keys.dim() == 4:
                return int(keys.shape[-2])  # [batch, heads, cached, head_dim]
    return None


def _matrix(value: Any) -> torch.Tensor | None:
    return value if isinstance(value, torch.Tensor) and value.dim() == 2 else None


def _request_tensors(args: tuple, kwargs: Mapping[str, Any]) -> tuple[Any, Any, Any]:
    ids = kwargs.get("input_ids", kwargs.get("inputs", args[0] if args else None))
    return ids, kwargs.get("attention_mask"), kwargs.get("inputs_embeds")


@dataclass
class _Generation:
    input_ids: torch.Tensor | None  # [batch, prompt_len], the caller's
    mask: torch.Tensor | None  # [batch, prompt_len], the caller's
    prefill_seen: bool = False


class PrefillDetector:
    """Per-forward verdicts for one collector; not thread-safe (one batch at a time)."""

    def __init__(self) -> None:
        self._generations: list[_Generation] = []

    # -- the generate wrapper ------------------------------------------------
    def enter_generate(self, args: tuple, kwargs: Mapping[str, Any]) -> None:
        """Record the caller's inputs of a ``generate`` call (before it runs)."""
        ids, mask, _ = _request_tensors(args, kwargs)
        self._generations.append(_Generation(_matrix(ids), _matrix(mask)))

    def exit_generate(self) -> None:
        """The ``generate`` call entered last has returned or raised."""
        if self._generations:
            self._generations.pop()

    # -- per forward ---------------------------------------------------------
    def on_forward(self, args: tuple, kwargs: Mapping[str, Any]) -> Verdict:
        """Classify one forward of the model from its inputs (model pre-hook).

        Parameters
        ----------
        args, kwargs
            The model forward's inputs, whatever their names.

        Returns
        -------
        Verdict
        """
        ids, mask, embeds = _request_tensors(args, kwargs)
        ids = _matrix(ids)
        rows = next((t for t in (ids, mask, embeds) if isinstance(t, torch.Tensor)), None)
        batch = int(rows.shape[0]) if rows is not None else 0
        seq = int(rows.shape[1]) if rows is not None and rows.dim() >= 2 else None
        gen = self._generations[-1] if self._generations else None
        if gen is not None and gen.prefill_seen:
            return Verdict(DECODE, batch)  # also use_cache=False: later full forwards
        if gen is not None:
            gen.prefill_seen = True
        cached = cached_tokens(args, kwargs)
        if cached:
            if gen is None:
                return Verdict(DECODE, batch)
            return Verdict(
                UNSCORED,
                batch,
                reason=f"the KV cache already held {cached} tokens at generate's first forward "
                "(a reused prefix): the prompt's state cannot be pooled",
            )
        if gen is not None:
            return self._first_forward(gen, batch, seq, ids, mask)
        if mask is not None and _matrix(mask) is None:
            return Verdict(
                UNSCORED,
                batch,
                seq,
                reason=f"attention_mask of type {type(mask).__name__} and shape "
                f"{tuple(getattr(mask, 'shape', ()))} is not a 2-D padding mask: padding unknown",
            )
        return Verdict(PREFILL, batch, seq, ids, _matrix(mask))

    @staticmethod
    def _first_forward(
        gen: _Generation, batch: int, seq: int | None, ids: Any, mask: Any
    ) -> Verdict:
        prompt = gen.input_ids if gen.input_ids is not None else gen.mask
        copies = 1  # beam search and num_return_sequences repeat each prompt row
        if prompt is not None:
            want_batch, want_seq = int(prompt.shape[0]), int(prompt.shape[1])
            batch, seq = batch or want_batch, want_seq if seq is None else seq
            if seq != want_seq or batch % want_batch:
                return Verdict(
                    UNSCORED,
                    batch,
                    seq,
                    reason=f"generate was called with {want_batch} x {want_seq} prompt tokens "
                    f"but its first forward saw {batch} x {seq}",
                )
            copies = batch // want_batch
        shape = (batch, seq)

        def caller(t: torch.Tensor | None) -> torch.Tensor | None:
            if t is None or copies == 1:
                return t
            return t.repeat_interleave(copies, dim=0)  # as generate expands its inputs

        if ids is None or tuple(ids.shape) != shape:
            ids = caller(gen.input_ids)
        if gen.mask is not None:
            mask = caller(gen.mask)  # the caller's padding, however generate passes it on
        elif mask is not None and (_matrix(mask) is None or tuple(mask.shape) != shape):
            return Verdict(
                UNSCORED,
                batch,
                seq,
                reason=f"attention_mask of shape {tuple(getattr(mask, 'shape', ()))} is not a "
                f"2-D padding mask of shape {shape}: padding unknown",
            )
        return Verdict(PREFILL, batch, seq, ids, mask)

    @staticmethod
    def check_layer(verdict: Verdict, hidden: torch.Tensor) -> str:
        """Why a decoder layer's output does not fit the verdict's request ("" when it does).

        Parameters
        ----------
        verdict : Verdict
            A prefill verdict.
        hidden : Tensor of shape (batch, seq, hidden_dim)
        """
        if hidden.dim() != 3:
            return f"decoder layer output has shape {tuple(hidden.shape)}, not (batch, seq, hidden)"
        got = (int(hidden.shape[0]), int(hidden.shape[1]))
        want = (verdict.batch or got[0], verdict.seq if verdict.seq is not None else got[1])
        if got != want:
            return (
                f"decoder layer saw {got[0]} x {got[1]} positions, "
                f"the request has {want[0]} x {want[1]}"
            )
        return ""


_ABSENT = object()


class GenerateWrapper:
    """Wrap ``model.generate`` (an instance attribute) so the detector sees the caller's inputs.

    :meth:`remove` restores whatever was there before, also another wrapper's
    instance attribute; a model without ``generate`` is left alone.
    """

    def __init__(self, model: Any, detector: PrefillDetector) -> None:
        self.model = model
        inner: Callable[..., Any] | None = getattr(model, "generate", None)
        self._wrapper: Callable[..., Any] | None = None
        if not callable(inner):
            return

        @functools.wraps(inner)
        def generate(*args: Any, **kwargs: Any) -> Any:
            detector.enter_generate(args, kwargs)
            try:
                return inner(*args, **kwargs)
            finally:
                detector.exit_generate()

        self._saved = model.__dict__.get("generate", _ABSENT)
        self._wrapper = model.generate = generate

    def remove(self) -> None:
        """Undo the wrap; idempotent."""
        if self._wrapper is not None and self.model.__dict__.get("generate") is self._wrapper:
            if self._saved is _ABSENT:
                del self.model.generate
            else:
                self.model.generate = self._saved
        self._wrapper = None
