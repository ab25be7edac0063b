"""Probe registry: atomic writes, crash safety, digests, and no pickle ever loaded."""

import json
import os
import pickle
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
import torch

from collectors.probe.linear import LinearProbe, ProbeFileError
from retrain import registry as registry_module
from retrain.registry import ProbeRegistry


def _probe(version: str, dim: int = 16, seed: int = 0) -> LinearProbe:
    rng = np.random.default_rng(seed)
    return LinearProbe(weight=rng.normal(size=dim), bias=0.5, layer=1, version=version)


def test_publish_promote_and_load_round_trip(tmp_path):
    reg = ProbeRegistry(tmp_path)
    assert reg.champion() is None and reg.next_version() == "v1"
    reg.publish(_probe("v1"))
    reg.promote("v1", reason="first")
    reg.publish(_probe("v2", seed=1))
    assert reg.versions() == ["v1", "v2"] and reg.next_version() == "v3"
    assert reg.champion().version == "v1"
    pointer = reg.promote("v2")
    assert pointer["previous"] == "v1"
    np.testing.assert_array_equal(reg.champion().weight, _probe("v2", seed=1).weight)
    with pytest.raises(FileExistsError):
        reg.publish(_probe("v2"))
    with pytest.raises(ValueError, match="v<N>"):
        reg.publish(_probe("latest"))


def test_promoting_a_missing_version_is_refused(tmp_path):
    reg = ProbeRegistry(tmp_path)
    with pytest.raises(ProbeFileError):
        reg.promote("v7")
    assert reg.champion() is None


def test_failure_between_write_and_rename_leaves_the_old_champion(tmp_path, monkeypatch):
    reg = ProbeRegistry(tmp_path)
    reg.publish(_probe("v1"))
    reg.promote("v1")
    reg.publish(_probe("v2", seed=1))

    def crash(src, dst):  # the temp file is written and fsynced; the rename never happens
        raise OSError("injected crash before rename")

    monkeypatch.setattr(registry_module.os, "replace", crash)
    with pytest.raises(OSError, match="injected"):
        reg.promote("v2")
    monkeypatch.setattr(registry_module.os, "rename", crash)
    with pytest.raises(OSError, match="injected"):
        reg.publish(_probe("v3", seed=2))
    monkeypatch.undo()
    assert reg.champion().version == "v1"
    assert reg.versions() == ["v1", "v2"]
    assert not [p for p in tmp_path.rglob("*") if p.name.startswith(".")], "temp files left"


_WRITER = textwrap.dedent(
    """
    import sys, numpy as np
    from collectors.probe.linear import LinearProbe
    from retrain.registry import ProbeRegistry
    reg = ProbeRegistry(sys.argv[1])
    rng = np.random.default_rng(0)
    print("ready", flush=True)
    while True:
        v = reg.next_version()
        reg.publish(LinearProbe(weight=rng.normal(size=500_000), bias=0.0, version=v))
        reg.promote(v)
    """
)


def test_killing_a_writer_mid_write_leaves_a_loadable_registry(tmp_path):
    root = tmp_path / "reg"
    env = dict(os.environ, PYTHONPATH=os.getcwd())
    delays = [0.05, 0.2, 0.35, 0.6, 0.9]
    for delay in delays:
        proc = subprocess.Popen(
            [sys.executable, "-c", _WRITER, str(root)], stdout=subprocess.PIPE, env=env
        )
        try:
            assert proc.stdout.readline().strip() == b"ready"
            time.sleep(delay)
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        reg = ProbeRegistry(root)
        champion = reg.champion()  # verified against the pointer's digests
        if champion is not None:
            assert champion.hidden_dim == 500_000
            assert champion.version in reg.versions()
        for version in reg.versions():
            reg.load(version)
    assert ProbeRegistry(root).champion() is not None, "no run got as far as a promotion"


class _Boom:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))  # unpickling would create the marker file


@pytest.mark.parametrize("payload", ["pickle", "torch_save"])
def test_probe_file_with_a_pickle_payload_is_refused(tmp_path, payload):
    path = _probe("v1").save(tmp_path)
    tensors = path.with_suffix(".safetensors")
    marker = tmp_path / "unpickled"
    if payload == "pickle":
        tensors.write_bytes(pickle.dumps({"weight": _Boom(str(marker))}, protocol=4))
    else:
        torch.save({"weight": torch.zeros(16), "boom": _Boom(str(marker))}, tensors)
    with pytest.raises(ProbeFileError, match="pickle"):
        LinearProbe.load(path)
    assert not marker.exists(), "the payload was unpickled"


def test_tampered_champion_is_refused_by_digest(tmp_path):
    reg = ProbeRegistry(tmp_path)
    reg.publish(_probe("v1"))
    reg.promote("v1")
    other = tmp_path / "other"
    _probe("v1", seed=5).save(other, name="probe")  # a valid file, but not the promoted one
    (other / "probe.safetensors").replace(reg.versions_dir / "v1" / "probe.safetensors")
    with pytest.raises(ProbeFileError, match="SHA-256"):
        reg.champion()


@pytest.mark.parametrize(
    "pointer",
    [
        {"version": "v1"},  # no digests: would load unverified
        {"version": "v1", "sha256": {"probe.json": "0" * 64}},  # not both files
        {"version": "../../etc", "sha256": {}},
        {"version": "/tmp/v1", "sha256": {}},
    ],
)
def test_a_pointer_without_digests_or_with_a_path_is_refused(tmp_path, pointer):
    reg = ProbeRegistry(tmp_path)
    reg.publish(_probe("v1"))
    reg.promote("v1")
    reg.pointer.write_text(json.dumps(pointer))
    with pytest.raises(ProbeFileError, match="SHA-256|not a version"):
        reg.champion()


@pytest.mark.parametrize("version", ["../v1", "/abs/v1", "v1/../../x", "latest"])
def test_loading_a_version_that_is_a_path_is_refused(tmp_path, version):
    with pytest.raises(ProbeFileError, match="not a registry version"):
        ProbeRegistry(tmp_path).load(version)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_a_probe_with_non_finite_weights_is_not_published_nor_loaded(tmp_path, bad):
    reg = ProbeRegistry(tmp_path)
    probe = _probe("v1")
    probe.weight[3] = bad
    with pytest.raises(ValueError, match="not finite"):
        reg.publish(probe)
    good = _probe("v2")
    reg.publish(good)
    path = tmp_path / "versions" / "v2"
    nan_probe = LinearProbe(weight=good.weight * np.nan, bias=0.0, layer=0, version="v2")
    nan_probe.save(path, name="probe")  # written behind the registry's back
    with pytest.raises(ProbeFileError, match="not finite"):
        reg.load("v2")


def test_a_second_retrain_on_the_same_registry_is_skipped_not_raced(tmp_path):
    from retrain.dataset import LabelledStates
    from retrain.job import RetrainSettings, champion_challenger

    rng = np.random.default_rng(0)
    x = rng.normal(size=(600, 8)).astype(np.float32)
    y = x[:, 0] + rng.normal(0, 0.5, 600) > 0
    data = LabelledStates(
        np.array([f"e{i}" for i in range(600)], dtype=object), np.arange(600.0), x, y,
        np.array(["v0"] * 600, dtype=object), np.full(600, 0.5),
    )  # fmt: skip
    reg = ProbeRegistry(tmp_path)
    settings = RetrainSettings(min_samples=100, n_resamples=50, layer=0)
    with reg.exclusive() as held:  # as another process would
        assert held
        outcome = champion_challenger(data, ProbeRegistry(tmp_path), (0.0, 600.0), settings)
    assert outcome.status == "skipped" and "another retrain" in outcome.reason
    assert champion_challenger(data, reg, (0.0, 600.0), settings).status == "promoted"
