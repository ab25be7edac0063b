"""The collector inside a real vLLM engine: states, scheduling cases, hot reload, events."""

from __future__ import annotations

import time

import numpy as np
import pytest

from tests.collectors.vllm.conftest import ENGINE, hf_states, make_probe, samples, vllm_requests

vllm = pytest.importorskip("vllm", reason="the vLLM tier runs in its own environment")

from collectors.vllm import VLLMCollector, VLLMCollectorSettings, monitored_llm_kwargs  # noqa: E402
from monitor.reference_vlm.model import CHECKPOINT_DIR  # noqa: E402


@pytest.fixture(scope="module")
def llm():
    """Chunked prefill (20-token budget: every 30-token prompt runs in two chunks) and
    prefix caching on, so decode steps share steps with prefill chunks."""
    engine = vllm.LLM(
        str(CHECKPOINT_DIR),
        **monitored_llm_kwargs(
            **ENGINE,
            enable_chunked_prefill=True,
            max_num_batched_tokens=20,
            enable_prefix_caching=True,
        ),
    )
    yield engine
    del engine


def _generate(llm, batch, max_tokens=4, **extra):
    params = vllm.SamplingParams(max_tokens=max_tokens, temperature=0.0, extra_args=extra or None)
    return llm.generate(vllm_requests(batch), params, use_tqdm=False)


def _stats(collector):
    return collector.stats()[0]["counts"]


def test_states_equal_transformers_in_mixed_chunked_steps(llm, hf_model, tmp_path):
    probe, path = make_probe(tmp_path)
    collector = VLLMCollector(llm, VLLMCollectorSettings(probe_path=path, capture_states=1.0))
    batch = samples(6, seed=11)
    scores = collector.collect(_generate(llm, batch))
    counts = _stats(collector)
    collector.close()
    assert counts["mixed_steps"] >= 1 and counts["partial_prefills"] >= 1, counts
    assert all(s.scored for s in scores)
    got = np.stack([s.state for s in scores])
    want = hf_states(hf_model, probe, batch)
    np.testing.assert_allclose(got, want, atol=1e-4, rtol=0)
    np.testing.assert_allclose(
        [s.confidence for s in scores], probe.predict_proba(want), atol=1e-5, rtol=0
    )


def test_prefix_cache_hit_keeps_last_token_exact_and_refuses_mean(llm, hf_model, tmp_path):
    batch = samples(2, seed=12, repeat=2)
    probe, path = make_probe(tmp_path)
    collector = VLLMCollector(llm, VLLMCollectorSettings(probe_path=path, capture_states=1.0))
    first = collector.collect(_generate(llm, batch))
    outputs = _generate(llm, batch)  # the same prompts again: prefix-cache hits
    assert all(o.num_cached_tokens > 0 for o in outputs)
    again = collector.collect(outputs)
    collector.close()
    want = hf_states(hf_model, probe, batch)
    for scores in (first, again):
        np.testing.assert_allclose(np.stack([s.state for s in scores]), want, atol=1e-4, rtol=0)

    mean_probe, mean_path = make_probe(tmp_path, pooling="mean_prompt_tokens")
    settings = VLLMCollectorSettings(probe_path=mean_path, capture_states=1.0)
    collector = VLLMCollector(llm, settings)
    cached = collector.collect(_generate(llm, batch))
    reasons = dict(collector.last_reasons)
    fresh_batch = samples(3, seed=13)
    fresh = collector.collect(_generate(llm, fresh_batch))  # summed over two chunks
    counts = _stats(collector)
    collector.close()
    assert not any(s.scored for s in cached) and counts["unscored"] == 2
    assert all("prefix cache" in r for r in reasons.values()), reasons
    np.testing.assert_allclose(
        np.stack([s.state for s in fresh]),
        hf_states(hf_model, mean_probe, fresh_batch),
        atol=1e-4,
        rtol=0,
    )


def test_mean_image_tokens_equal_transformers(llm, hf_model, tmp_path):
    probe, path = make_probe(tmp_path, pooling="mean_image_tokens", layer=1)
    collector = VLLMCollector(llm, VLLMCollectorSettings(probe_path=path, capture_states=1.0))
    batch = samples(3, seed=14)
    scores = collector.collect(_generate(llm, batch))
    stats = collector.close()[0]
    assert all(s.scored for s in scores), (collector.last_reasons, stats)
    np.testing.assert_allclose(
        np.stack([s.state for s in scores]), hf_states(hf_model, probe, batch), atol=1e-4, rtol=0
    )


def test_promoted_probe_reaches_the_worker(llm, tmp_path):
    from retrain.registry import ProbeRegistry

    registry = ProbeRegistry(tmp_path / "registry")
    v1, _ = make_probe(tmp_path, version="v1", seed=1)
    registry.publish(v1)
    registry.promote("v1")
    settings = VLLMCollectorSettings(registry_dir=str(registry.root), poll_s=0.1)
    collector = VLLMCollector(llm, settings)
    before = collector.take(None)
    first = collector.collect(_generate(llm, samples(2, seed=15)))
    v2, _ = make_probe(tmp_path, version="v2", seed=2)
    registry.publish(v2)
    registry.promote("v2")
    deadline = time.monotonic() + 20
    versions: set[str] = set()
    while time.monotonic() < deadline and "v2" not in versions:
        outputs = _generate(llm, samples(2, seed=16))
        results = collector.take([o.request_id for o in outputs]).values()
        versions = {r["probe_version"] for r in results}  # a switch may fall mid-batch
        time.sleep(0.1)
    after = collector.collect(_generate(llm, samples(3, seed=19)))
    stats = collector.close()[0]
    assert not before and all(s.scored for s in first)
    assert "v2" in versions and stats["probe_version"] == "v2"
    assert {r["probe_version"] for r in collector.last_results} == {"v2"}
    assert all(s.scored for s in after)
    assert stats["counts"]["probe_swaps"] == 1


def test_events_from_the_worker_land_in_duckdb_by_request_id(llm, broker, topic_prefix, tmp_path):
    from monitor.config.settings import KafkaConfig, TopicsConfig
    from monitor.ingest.consumer import Ingester
    from monitor.store.database import Store

    topics = TopicsConfig(
        events=f"{topic_prefix}-events", labels=f"{topic_prefix}-labels",
        alerts=f"{topic_prefix}-alerts", control=f"{topic_prefix}-control",
    )  # fmt: skip
    kafka = KafkaConfig(bootstrap_servers=broker.bootstrap_servers, topics=topics)
    _, path = make_probe(tmp_path)
    settings = VLLMCollectorSettings(
        probe_path=path, emit=True, topic=topics.events, model_id="reference-llava",
        kafka={"bootstrap_servers": broker.bootstrap_servers}, capture_states=0.5,
    )  # fmt: skip
    collector = VLLMCollector(llm, settings)
    batch = samples(4, seed=17)
    params = [
        vllm.SamplingParams(max_tokens=2, temperature=0.0, extra_args={"event_id": f"client-{i}"})
        for i in range(len(batch))
    ]
    llm.generate(vllm_requests(batch), params, use_tqdm=False)
    stats = collector.close()[0]
    assert stats["emitter"]["sent"] == 4, stats
    with Store(tmp_path / "m.duckdb") as store, Ingester(kafka, store) as ingester:
        ingester.run_until_idle(idle_s=0.5, max_s=60)
        rows = store.execute("SELECT event_id, model_id, probe_version FROM events ORDER BY 1")
    assert rows == [(f"client-{i}", "reference-llava", "v1") for i in range(4)]


def _break_the_scorer(worker) -> None:
    """Runs in the worker (``collective_rpc`` with a function): the next hook raises."""

    def boom(index, output):
        raise RuntimeError("injected fault")

    worker._vlm_monitor_collector.scorer.on_layer = boom


def test_a_failing_hook_leaves_requests_unscored_and_vllm_answering(llm, tmp_path):
    _, path = make_probe(tmp_path)
    batch = samples(3, seed=18)
    collector = VLLMCollector(llm, VLLMCollectorSettings(probe_path=path))
    healthy = [o.outputs[0].text for o in _generate(llm, batch)]
    collector.collect([])
    collector.take(None)
    llm.collective_rpc(_break_the_scorer)
    outputs = _generate(llm, batch)
    scores = collector.collect(outputs)
    stats = collector.close()[0]
    assert [o.outputs[0].text for o in outputs] == healthy
    assert not any(s.scored for s in scores) and stats["counts"]["errors"] >= 1
    assert all("injected fault" in r for r in collector.last_reasons.values())
    assert len(collector.last_reasons) == len(batch)
