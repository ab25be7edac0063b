"""Map one vLLM step's flattened tokens back to requests, and plan what each request pools.

vLLM runs every request of a step as one flattened ``[num_tokens, hidden]`` tensor:
request ``i`` owns rows ``query_start_loc[i] : query_start_loc[i + 1]``, which hold
its token positions ``num_computed_tokens[i] ...`` (tokens already in the KV cache,
prefix-cache hits included, come before them). A request in prefill may be split
over several steps (chunked prefill), and a decode step of one request may share a
step with prefill chunks of others. This module is pure arithmetic on host integers
(no torch, no vLLM), so every scheduling case is testable without an engine.

Which rows each pooling reads (positions are 0-based, ``P`` prompt tokens):

- ``last_prompt_token``: position ``P - 1``, read in the chunk that holds it. vLLM
  always recomputes the last prompt token, even on a full prefix-cache hit, so this
  pooling is exact under prefix caching.
- ``mean_prompt_tokens`` / ``mean_image_tokens``: every prompt (or image) position,
  summed chunk by chunk. Positions served from the prefix cache are never computed
  again, so a request whose prefill starts after position 0 cannot be pooled
  exactly: it is planned unscored with that reason.

A request seen again from an earlier position (preemption, then re-prefill) restarts
its sums; one already scored is not scored again (one event per request).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np

MEAN_POOLINGS = ("mean_prompt_tokens", "mean_image_tokens")


@dataclass(frozen=True)
class StepRequest:
    """One request's share of a step.

    Attributes
    ----------
    req_id : str
        vLLM's internal request id.
    start : int
        Flat row of its first token in this step (``query_start_loc[i]``).
    num_scheduled : int
        Tokens it runs in this step.
    num_computed : int
        Tokens already in its KV cache before this step (prefix-cache hits included).
    num_prompt : int
        Prompt length in tokens, image placeholders included.
    """

    req_id: str
    start: int
    num_scheduled: int
    num_computed: int
    num_prompt: int

    @property
    def holds_last_prompt_token(self) -> bool:
        last = self.num_prompt - 1
        return self.num_computed <= last < self.num_computed + self.num_scheduled

    def prompt_positions(self) -> np.ndarray:
        """Prompt positions computed in this step, shape (n,), int64 (empty in decode)."""
        stop = min(self.num_computed + self.num_scheduled, self.num_prompt)
        return np.arange(self.num_computed, max(stop, self.num_computed), dtype=np.int64)


def step_requests(
    req_ids: Iterable[str],
    query_start_loc: np.ndarray,
    num_computed: np.ndarray,
    num_prompt: np.ndarray,
) -> list[StepRequest]:
    """Build :class:`StepRequest` rows from a step's batch arrays.

    Parameters
    ----------
    req_ids : iterable of str, length n
        Requests in the step's batch order.
    query_start_loc : ndarray of shape (n + 1,), integer
        Cumulative token offsets (vLLM's ``query_start_loc``).
    num_computed, num_prompt : ndarray of shape (>= n,), integer
    """
    ids = list(req_ids)
    qsl = np.asarray(query_start_loc)
    return [
        StepRequest(
            req_id=r,
            start=int(qsl[i]),
            num_scheduled=int(qsl[i + 1] - qsl[i]),
            num_computed=int(num_computed[i]),
            num_prompt=int(num_prompt[i]),
        )
        for i, r in enumerate(ids)
    ]


@dataclass
class StepPlan:
    """What the decoder-layer hooks read in one step.

    Attributes
    ----------
    rows : ndarray of shape (g,), int64
        Flat rows of the step tensor to gather.
    slots : ndarray of shape (g,), int64
        For each gathered row, the index into ``req_ids`` whose sum it adds to.
    req_ids : list of str
        One per slot: the requests pooling in this step.
    counts : list of int
        Rows summed into each slot in this step.
    covered : list of int
        Prompt positions covered up to (exclusive) once this step runs, per slot.
    restart : list of bool
        Whether the slot's running sum starts afresh in this step.
    complete : list of bool
        Whether the slot's request finishes pooling (its last prompt token is here).
    unscored : dict of str to str
        Requests that cannot be pooled exactly, with the reason.
    decoding : int
        Requests of the step past their prompt (decode, or speculative tokens).
    partial : int
        Requests whose prompt chunk here does not hold their last prompt token.
    prefilling_again : list of str
        Requests already scored that run prompt tokens again (re-prefill after
        preemption): skipped, one event per request.
    """

    rows: np.ndarray
    slots: np.ndarray
    req_ids: list[str] = field(default_factory=list)
    counts: list[int] = field(default_factory=list)
    covered: list[int] = field(default_factory=list)
    restart: list[bool] = field(default_factory=list)
    complete: list[bool] = field(default_factory=list)
    unscored: dict[str, str] = field(default_factory=dict)
    decoding: int = 0
    partial: int = 0
    prefilling_again: list[str] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not self.req_ids


def plan_step(
    requests: Iterable[StepRequest],
    pooling: str,
    scored: Callable[[str], bool],
    progress: Mapping[str, int],
    image_positions: Callable[[str], np.ndarray] | None = None,
) -> StepPlan:
    """Plan one step's gathers for ``pooling``.

    Parameters
    ----------
    requests : iterable of StepRequest
    pooling : {"last_prompt_token", "mean_prompt_tokens", "mean_image_tokens"}
    scored : callable
        ``scored(req_id)`` is True for a request already scored (skipped: one event
        per request, also after preemption and re-prefill).
    progress : mapping of str to int
        For mean poolings, prompt positions already summed per request (the next
        position expected); a request whose step starts elsewhere restarts.
    image_positions : callable, optional
        ``image_positions(req_id)`` -> sorted prompt positions of image placeholder
        tokens, int64; required for ``"mean_image_tokens"``.

    Returns
    -------
    StepPlan

    Raises
    ------
    ValueError
        Unknown pooling, or ``mean_image_tokens`` without ``image_positions``.
    """
    if pooling == "mean_image_tokens" and image_positions is None:
        raise ValueError("mean_image_tokens needs the image placeholder positions")
    if pooling not in ("last_prompt_token", *MEAN_POOLINGS):
        raise ValueError(f"unknown pooling {pooling!r}")
    rows: list[np.ndarray] = []
    plan = StepPlan(np.empty(0, np.int64), np.empty(0, np.int64))
    for req in requests:
        if req.num_computed >= req.num_prompt:
            plan.decoding += 1
            continue
        if scored(req.req_id):
            plan.prefilling_again.append(req.req_id)
            continue
        plan.partial += not req.holds_last_prompt_token
        if pooling == "last_prompt_token":
            if not req.holds_last_prompt_token:
                continue
            picked = np.array([req.start + req.num_prompt - 1 - req.num_computed], np.int64)
            restart = True
        else:
            restart = progress.get(req.req_id) != req.num_computed
            if restart and req.num_computed > 0:
                plan.unscored[req.req_id] = (
                    f"{pooling} needs every prompt token, but positions 0-"
                    f"{req.num_computed - 1} came from the prefix cache (not recomputed); "
                    "use last_prompt_token or disable prefix caching"
                )
                continue
            positions = req.prompt_positions()
            if pooling == "mean_image_tokens":
                positions = np.intersect1d(positions, image_positions(req.req_id))  # type: ignore[misc]
            picked = req.start + positions - req.num_computed
        plan.req_ids.append(req.req_id)
        plan.counts.append(int(picked.size))
        plan.covered.append(min(req.num_computed + req.num_scheduled, req.num_prompt))
        plan.restart.append(restart)
        plan.complete.append(req.holds_last_prompt_token)
        rows.append(picked)
    if rows:
        plan.rows = np.concatenate(rows)
        plan.slots = np.repeat(np.arange(len(rows), dtype=np.int64), [r.size for r in rows])
    return plan
