import logging
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from monitor.config.load import REMOVED_KEYS, ConfigError, load_config, parse_config

ROOT = Path(__file__).resolve().parents[3]


def test_repo_config_is_valid():
    cfg = load_config(ROOT / "config.yaml").reliability_monitor
    assert cfg.monitoring.kl_divergence_threshold == 0.15
    assert cfg.routing.gray_zone_bounds == (0.65, 0.80)
    assert cfg.model.path == ROOT / "monitor" / "reference_vlm" / "hallucinating"


@pytest.mark.parametrize(
    ("patch", "key"),
    [
        (
            {"monitoring": {"kl_divergence_threshold": -1}},
            "reliability_monitor.monitoring.kl_divergence_threshold",
        ),
        ({"monitorin": {}}, "reliability_monitor.monitorin: unknown key"),
        ({"monitoring": {"mmd_permutations": 50}}, "mmd_permutations=50 cannot reach"),
        (
            {"routing": {"gray_zone_bounds": [0.9, 0.1]}},
            "reliability_monitor.routing.gray_zone_bounds",
        ),
        (
            {"kafka": {"bootstrap_servers": ["nohost"]}},
            "reliability_monitor.kafka.bootstrap_servers",
        ),
        ({"probe": {"pooling": "max"}}, "reliability_monitor.probe.pooling"),
        ({"target_layer": "three"}, "reliability_monitor.target_layer"),
    ],
)
def test_bad_values_name_the_key(patch, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        parse_config({"reliability_monitor": patch}, source="config.yaml")


@pytest.mark.parametrize("dotted", sorted(REMOVED_KEYS))
def test_removed_keys_are_refused_with_the_reason(dotted):
    *parents, leaf = dotted.split(".")
    patch: dict = {leaf: 1}
    for part in reversed(parents):
        patch = {part: patch}
    with pytest.raises(ConfigError, match=rf"reliability_monitor\.{dotted}: removed key: \w"):
        parse_config({"reliability_monitor": patch}, source="config.yaml")


def test_every_key_of_the_bundled_config_is_read():
    """Each leaf of config.yaml is an attribute some module reads (not only validated)."""
    data = yaml.safe_load((ROOT / "config.yaml").read_text())["reliability_monitor"]
    sources = "\n".join(
        p.read_text()
        for pkg in ("monitor", "collectors", "retrain")
        for p in (ROOT / pkg).rglob("*.py")
    )  # a read is ``.key``; a field definition is ``key:``

    def leaves(node, prefix=()):
        for k, v in node.items():
            if isinstance(v, dict) and k != "topics":
                yield from leaves(v, (*prefix, k))
            else:
                yield (*prefix, k)

    unread = [".".join(path) for path in leaves(data) if f".{path[-1]}" not in sources]
    assert not unread, f"config keys nothing reads: {unread}"


def _run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "monitor.cli", *args], capture_output=True, text=True, timeout=120
    )


def test_bad_config_exits_2_with_one_line(tmp_path):
    data = yaml.safe_load((ROOT / "config.yaml").read_text())
    data["reliability_monitor"]["monitoring"]["kl_divergence_treshold"] = 0.2  # typo
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(data))
    result = _run_cli("check-config", "--config", str(path))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "reliability_monitor.monitoring.kl_divergence_treshold: unknown key" in lines[0]


def test_broken_yaml_exits_2(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text("reliability_monitor: [unclosed\n")
    result = _run_cli("check-config", "--config", str(path))
    assert result.returncode == 2
    assert "not valid YAML" in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_missing_file_exits_2(tmp_path):
    result = _run_cli("check-config", "--config", str(tmp_path / "absent.yaml"))
    assert result.returncode == 2 and "cannot read config" in result.stderr


def test_good_config_exits_0():
    result = _run_cli("check-config", "--config", str(ROOT / "config.yaml"))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("ok:")


def test_environment_variables_expand_and_a_missing_one_names_the_key(tmp_path, monkeypatch):
    path = tmp_path / "config.yaml"
    path.write_text(
        "reliability_monitor:\n"
        "  kafka:\n"
        "    sasl_plain_password: ${VLM_TEST_SECRET}\n"
        "    client_id: ${VLM_TEST_UNSET:-fallback-id}\n"
        "  alerts: {webhook_url: 'https://hooks.example/$${literal}'}\n"
    )
    monkeypatch.setenv("VLM_TEST_SECRET", "s3cret")
    monkeypatch.delenv("VLM_TEST_UNSET", raising=False)
    kafka = load_config(path).reliability_monitor.kafka
    assert kafka.sasl_plain_password == "s3cret" and kafka.client_id == "fallback-id"
    assert load_config(path).reliability_monitor.alerts.webhook_url.endswith("/${literal}")
    monkeypatch.delenv("VLM_TEST_SECRET")
    with pytest.raises(ConfigError, match=r"kafka\.sasl_plain_password: environment variable"):
        load_config(path)


@pytest.mark.parametrize(
    ("patch", "key"),
    [
        ({"kafka": {"topics": {"events": ""}}}, "topics.events"),
        ({"kafka": {"topics": {"labels": "a b"}}}, "topics.labels"),
        ({"routing": {"gray_zone_action": "majority_vote"}}, "routing.gray_zone_action"),
        ({"routing": {"gray_zone_action": "self_consistency_k0"}}, "routing.gray_zone_action"),
        ({"kafka": {"wire_version": 5}}, "kafka.wire_version"),
        ({"kafka": {"wire_version": 2}}, "kafka.wire_version"),
        ({"store": {"ingest_batch_size": 0}}, "store.ingest_batch_size"),
        ({"store": {"ingest_linger_s": -1}}, "store.ingest_linger_s"),
    ],
)
def test_values_that_would_fail_at_run_time_fail_at_load(patch, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        parse_config({"reliability_monitor": patch}, source="config.yaml")


def test_a_non_utf8_config_is_one_line(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_bytes(b"reliability_monitor:\n  family: \xff\n")
    with pytest.raises(ConfigError, match="not UTF-8 text: byte 0xff at offset"):
        load_config(path)


def test_check_config_refuses_a_layer_beyond_the_models_depth(tmp_path):
    path = tmp_path / "config.yaml"
    model = ROOT / "monitor" / "reference_vlm" / "checkpoint"
    path.write_text(f"reliability_monitor:\n  target_layer: 9\n  model: {{path: '{model}'}}\n")
    result = _run_cli("check-config", "--config", str(path))
    assert result.returncode == 2
    assert "target_layer: layer 9 is beyond the 4 decoder layers" in result.stderr


def test_secrets_never_reach_a_log_line(caplog):
    from monitor.config.secrets import RedactSecrets, secrets_of

    cfg = parse_config(
        {
            "reliability_monitor": {
                "kafka": {"sasl_plain_password": "hunter2-pw"},
                "alerts": {"webhook_url": "https://hooks.example/services/T0/B0/TOKEN123"},
            }
        }
    )
    redact = RedactSecrets(secrets_of(cfg))
    logger = logging.getLogger("kafka.conn")
    logger.addFilter(redact)
    try:
        with caplog.at_level(logging.DEBUG, logger="kafka.conn"):
            logger.debug("config %s", {"sasl_plain_password": "hunter2-pw"})
            logger.warning("POST https://hooks.example/services/T0/B0/TOKEN123 failed")
    finally:
        logger.removeFilter(redact)
    assert "hunter2-pw" not in caplog.text and "TOKEN123" not in caplog.text
    assert caplog.text.count("***") == 2


def test_a_missing_tls_file_is_named_at_load(tmp_path):
    with pytest.raises(ConfigError, match=r"kafka\.ssl_cafile: no such file .*ca\.pem"):
        parse_config(
            {"reliability_monitor": {"kafka": {"ssl_cafile": "certs/ca.pem"}}}, base_dir=tmp_path
        )
    (tmp_path / "ca.pem").write_text("x")
    cfg = parse_config(
        {"reliability_monitor": {"kafka": {"ssl_cafile": "ca.pem"}}}, base_dir=tmp_path
    )
    assert cfg.reliability_monitor.kafka.ssl_cafile == str(tmp_path / "ca.pem")
