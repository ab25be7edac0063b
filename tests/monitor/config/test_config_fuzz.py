"""Property-based fuzzing of the config loader: a Config or a one-line ConfigError, nothing else."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.config.load import ConfigError, load_config, parse_config
from monitor.config.settings import Config

SECTIONS = ["probe", "routing", "monitoring", "logging", "model", "kafka", "store", "alerts",
            "metrics", "retrain", "target_layer", "family"]  # fmt: skip
scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.sampled_from(SECTIONS) | st.text(max_size=10), inner, max_size=3)
    ),
    max_leaves=10,
)


def _check(call):
    try:
        assert isinstance(call(), Config)
    except ConfigError as exc:
        assert "\n" not in str(exc) and str(exc)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.sampled_from(SECTIONS), values, max_size=4))
def test_any_mapping_gives_a_config_or_one_line(section):
    _check(lambda: parse_config({"reliability_monitor": section}, source="config.yaml"))


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=200) | st.text(max_size=200).map(str.encode))
def test_any_file_gives_a_config_or_one_line(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("cfg") / "config.yaml"
    path.write_bytes(data)
    _check(lambda: load_config(path))
