"""Step planning without an engine: every vLLM scheduling case as host arithmetic."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collectors.vllm.steps import StepRequest, plan_step, step_requests


def _never(_: str) -> bool:
    return False


def test_mixed_step_reads_only_the_rows_holding_last_prompt_tokens():
    # a: decoding; b: whole 10-token prompt; c: first 6 of 12 prompt tokens (chunked)
    reqs = step_requests(["a", "b", "c"], np.array([0, 1, 11, 17]), [40, 0, 0], [40, 10, 12])
    plan = plan_step(reqs, "last_prompt_token", _never, {})
    assert plan.req_ids == ["b"] and plan.rows.tolist() == [10]
    assert (plan.decoding, plan.partial) == (1, 1)
    second = plan_step(
        step_requests(["c"], np.array([0, 6]), [6], [12]), "last_prompt_token", _never, {}
    )
    assert second.rows.tolist() == [5] and second.complete == [True]


def test_prefix_cache_hit_last_token_exact_mean_refused():
    hit = [StepRequest("r", start=3, num_scheduled=1, num_computed=31, num_prompt=32)]
    assert plan_step(hit, "last_prompt_token", _never, {}).rows.tolist() == [3]
    plan = plan_step(hit, "mean_prompt_tokens", _never, {})
    assert plan.empty and "prefix cache" in plan.unscored["r"]


def test_re_prefill_after_preemption_is_not_scored_twice():
    again = [StepRequest("r", start=0, num_scheduled=10, num_computed=0, num_prompt=10)]
    plan = plan_step(again, "last_prompt_token", lambda r: r == "r", {})
    assert plan.empty and plan.prefilling_again == ["r"]


def test_mean_image_tokens_need_positions():
    with pytest.raises(ValueError, match="placeholder"):
        plan_step([], "mean_image_tokens", _never, {})
    with pytest.raises(ValueError, match="unknown pooling"):
        plan_step([], "max", _never, {})


@settings(max_examples=200, deadline=None)
@given(
    prompts=st.lists(st.integers(1, 40), min_size=1, max_size=6),
    budget=st.integers(1, 50),
    pooling=st.sampled_from(["last_prompt_token", "mean_prompt_tokens"]),
)
def test_any_chunk_schedule_reads_each_prompt_position_once(prompts, budget, pooling):
    """Run prompts through a chunked scheduler with a token budget per step; the rows
    planned, mapped back to positions, cover each request's wanted positions exactly once."""
    computed = [0] * len(prompts)
    seen: dict[str, list[int]] = {f"r{i}": [] for i in range(len(prompts))}
    progress: dict[str, int] = {}
    while any(c < p for c, p in zip(computed, prompts)):
        left, ids, starts, sched, comp = budget, [], [0], [], []
        for i, (c, p) in enumerate(zip(computed, prompts)):
            n = min(p - c, left)
            if n <= 0:
                continue
            ids.append(f"r{i}")
            comp.append(c)
            sched.append(n)
            starts.append(starts[-1] + n)
            left -= n
        reqs = step_requests(ids, np.array(starts), comp, [prompts[int(r[1:])] for r in ids])
        plan = plan_step(reqs, pooling, _never, progress)
        assert not plan.unscored
        for slot, req_id in enumerate(plan.req_ids):
            req = reqs[ids.index(req_id)]
            rows = plan.rows[plan.slots == slot]
            seen[req_id] += (rows - req.start + req.num_computed).tolist()
            progress[req_id] = plan.covered[slot]
        for req, n in zip(reqs, sched):
            computed[int(req.req_id[1:])] += n
    for i, p in enumerate(prompts):
        want = [p - 1] if pooling == "last_prompt_token" else list(range(p))
        assert seen[f"r{i}"] == want
