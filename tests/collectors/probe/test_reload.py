"""Hot reload: a running collector switches to a promoted probe at a request boundary."""

import logging
import time

import numpy as np
import pytest
import torch

from collectors.generate.collector import ReliabilityCollector
from collectors.probe.linear import LinearProbe
from collectors.probe.reload import ProbeWatcher, parse_announcement
from monitor.ingest.admin import ensure_topics
from retrain.announce import announce_promotion
from retrain.registry import ProbeRegistry

IMAGE_TOKEN, N_IMAGE_TOKENS = 49, 16  # must match conftest.tiny_llava


def _probe(version: str, seed: int, layer: int = 2) -> LinearProbe:
    rng = np.random.default_rng(seed)
    return LinearProbe(weight=rng.normal(size=64), bias=0.1 * seed, layer=layer, version=version)


def _inputs() -> dict:
    ids = torch.tensor([[IMAGE_TOKEN] * N_IMAGE_TOKENS + [3, 4, 5], [IMAGE_TOKEN] * 16 + [6, 7, 8]])
    return dict(
        input_ids=ids,
        pixel_values=torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(0)),
    )


def _serve(collector: ReliabilityCollector, model) -> tuple[list, list]:
    with torch.no_grad():
        model(**_inputs())
    scores = collector.collect()
    return scores, collector.emit(scores, ["yes"] * len(scores))


@pytest.fixture
def registry(tmp_path) -> ProbeRegistry:
    reg = ProbeRegistry(tmp_path / "registry")
    reg.publish(_probe("v1", 1))
    reg.promote("v1")
    return reg


def test_running_collector_picks_up_a_promoted_version(tiny_llava, registry):
    champion = registry.champion()
    with (
        ReliabilityCollector(tiny_llava, champion, capture_states=True) as collector,
        ProbeWatcher(registry.root, collector.swap_probe, current_version="v1", poll_s=0.05),
    ):
        _, events = _serve(collector, tiny_llava)
        assert {e.probe_version for e in events} == {"v1"}
        registry.publish(_probe("v2", 2))
        registry.promote("v2")
        deadline, versions = time.monotonic() + 20, set()
        while time.monotonic() < deadline and versions != {"v2"}:
            scores, events = _serve(collector, tiny_llava)
            versions = {e.probe_version for e in events}
            assert len(versions) == 1, "a batch was scored by two probes"
            time.sleep(0.05)
        assert versions == {"v2"}
        v2 = registry.load("v2")
        states = np.stack([s.state for s in scores])
        np.testing.assert_allclose([s.raw_logit for s in scores], v2.logits(states), rtol=1e-4)


def test_collector_defers_the_swap_until_scores_are_collected(tiny_llava):
    with ReliabilityCollector(tiny_llava, _probe("v1", 1)) as collector:
        with torch.no_grad():
            tiny_llava(**_inputs())
        collector.swap_probe(_probe("v2", 2))
        with torch.no_grad():
            tiny_llava(**_inputs())  # v1's scores still wait for collect(): no switch yet
        assert collector.probe.version == "v1"
        assert len(collector.collect()) == 4
        _, events = _serve(collector, tiny_llava)
        assert {e.probe_version for e in events} == {"v2"}


def test_probe_reading_another_layer_is_refused(tiny_llava):
    with ReliabilityCollector(tiny_llava, _probe("v1", 1)) as collector:
        with pytest.raises(ValueError, match="restart"):
            collector.swap_probe(_probe("v2", 2, layer=3))


@pytest.mark.parametrize("damage", ["corrupt", "missing", "pickle"])
def test_bad_probe_file_keeps_the_serving_probe(tiny_llava, registry, caplog, damage):
    registry.publish(_probe("v2", 2))
    registry.promote("v2")
    tensors = registry.versions_dir / "v2" / "probe.safetensors"
    if damage == "corrupt":
        tensors.write_bytes(tensors.read_bytes()[:-7] + b"garbage")
    elif damage == "missing":
        tensors.unlink()
    else:
        tensors.write_bytes(b"\x80\x04\x95" + b"\x00" * 64)
    with ReliabilityCollector(tiny_llava, registry.load("v1")) as collector:
        watcher = ProbeWatcher(registry.root, collector.swap_probe, current_version="v1")
        with caplog.at_level(logging.WARNING, logger="collectors.probe.reload"):
            assert watcher.check_now() is None
            assert watcher.check_now() is None
        _, events = _serve(collector, tiny_llava)
    assert {e.probe_version for e in events} == {"v1"}
    warnings = [r.getMessage() for r in caplog.records if "keeping v1" in r.getMessage()]
    assert len(warnings) == 1 and "v2" in warnings[0], caplog.text


def test_announcement_on_the_control_topic_reloads_at_once(
    tiny_llava, registry, broker, topic_prefix
):
    topic = f"{topic_prefix}.control"
    kwargs = {"bootstrap_servers": broker.bootstrap_servers}
    ensure_topics(kwargs, [topic])
    with ReliabilityCollector(tiny_llava, registry.load("v1")) as collector:
        watcher = ProbeWatcher(
            registry.root,
            collector.swap_probe,
            current_version="v1",
            poll_s=60.0,  # the pointer alone would not be re-read within this test
            control_topic=topic,
            client_kwargs=kwargs,
        )
        with watcher:
            assert watcher.control_ready.wait(30), "control consumer never positioned"
            registry.publish(_probe("v2", 2))
            registry.promote("v2")
            assert announce_promotion(kwargs, topic, {"type": "probe_promoted", "version": "v2"})
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and watcher.current_version != "v2":
                time.sleep(0.05)
        assert watcher.current_version == "v2"
        _, events = _serve(collector, tiny_llava)
        assert {e.probe_version for e in events} == {"v2"}


def test_parse_announcement_rejects_other_messages():
    assert parse_announcement(b'{"type": "probe_promoted", "version": "v3"}')["version"] == "v3"
    for raw in (b"", b"not json", b"[]", b'{"type": "other", "version": "v3"}', None):
        assert parse_announcement(raw) is None
