"""Collector settings that cross into vLLM's workers; response headers built from results."""

from __future__ import annotations

import json

import pytest

from collectors.vllm.headers import headers_for
from collectors.vllm.runner import external_id
from collectors.vllm.settings import ENV, SettingsError, VLLMCollectorSettings


def test_settings_round_trip_through_the_environment(tmp_path):
    settings = VLLMCollectorSettings(probe_path="p.json", model_id="m", capture_states=0.5)
    assert VLLMCollectorSettings.from_env({ENV: json.dumps(settings.to_dict())}) == settings
    path = tmp_path / "s.json"
    path.write_text(json.dumps(settings.to_dict()))
    assert VLLMCollectorSettings.from_env({ENV: str(path)}) == settings
    assert VLLMCollectorSettings.from_env({}) is None


@pytest.mark.parametrize(
    ("value", "match"),
    [
        ('{"probe_path": "p", "registry_dir": "r"}', "exactly one"),
        ("{}", "exactly one"),
        ('{"probe_path": "p", "lyer": 3}', "unknown collector settings \\['lyer'\\]"),
        ('{"probe_path": "p", "capture_states": 2}', "capture_states"),
        ('{"probe_path": "p", "emit": true}', "bootstrap_servers"),
        ("{not json", "not valid JSON"),
        ("[1, 2]", "JSON object, got list"),
        ("/no/such/settings.json", "cannot be read"),
    ],
)
def test_bad_settings_name_what_is_wrong(value, match):
    with pytest.raises(SettingsError, match=match):
        VLLMCollectorSettings.from_env({ENV: value})


def test_headers_say_the_score_or_why_there_is_none():
    scored = {"scored": True, "confidence": 0.25, "decision": "fallback", "probe_version": "v3"}
    assert headers_for(scored) == {
        "x-vlm-monitor-confidence": "0.250000",
        "x-vlm-monitor-decision": "fallback",
        "x-vlm-monitor-probe": "v3",
    }
    unscored = headers_for({"scored": False, "reason": "prefix cache"})
    assert unscored == {"x-vlm-monitor-unscored": "prefix cache"}
    assert headers_for(None) == {}


def test_external_id_strips_only_vllms_suffix():
    assert external_id("chatcmpl-abc-1f2e3d4c") == "chatcmpl-abc"
    assert external_id("0-8706dae8") == "0"
    assert external_id("client-id") == "client-id"
