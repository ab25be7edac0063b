import numpy as np

from collectors import collector_from_config, emitter_from_config
from collectors.probe.linear import LinearProbe
from monitor.config.load import parse_config


def test_collector_and_emitter_from_config(tiny_llava, tmp_path):
    cfg = parse_config(
        {
            "reliability_monitor": {
                "family": "llava",
                "routing": {
                    "confidence_threshold": 0.6,
                    "gray_zone_bounds": [0.4, 0.7],
                    "gray_zone_action": "self_consistency_k3",
                },
                "logging": {"capture_states": 0.25, "projection_dims": 4, "projection_seed": 9},
                "model": {"id": "tiny"},
                "kafka": {
                    "bootstrap_servers": ["127.0.0.1:1"],
                    "spill_path": str(tmp_path / "spill.bin"),
                    "spill_max_bytes": 10_000,
                    "producer_queue_size": 7,
                    "wire_version": 3,
                },
            }
        }
    )
    probe = LinearProbe(weight=np.ones(64), bias=0.0, layer=1)
    col = collector_from_config(tiny_llava, probe, cfg)
    assert (col.gate.confidence_threshold, col.gate.gray_zone_bounds) == (0.6, (0.4, 0.7))
    assert col.self_consistency.k == 3 and col.capture_rate == 0.25 and col.model_id == "tiny"
    assert col.architecture.spec.name == "llava" and col.layer == 1
    assert probe.projection.k == 4 and probe.projection.seed == 9  # stored when the probe is saved
    emitter = emitter_from_config(cfg, bootstrap_timeout_ms=100)
    try:
        assert emitter.queue_size == 7 and emitter.topic == "vlm-monitor.events"
        assert emitter._spill.max_bytes == 10_000
        assert emitter.wire_version == 3  # JSON, for a monitor of an earlier release
    finally:
        emitter.close(timeout_s=0.1)
