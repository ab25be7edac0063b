"""A store file deleted or replaced while open is refused before a write, with its path."""

from __future__ import annotations

import pytest

from monitor.store.database import Store
from monitor.store.migrations import StoreError


@pytest.mark.parametrize("what", ["deleted", "replaced"])
def test_writes_into_a_vanished_file_are_refused(tmp_path, make_event, what):
    path = tmp_path / "m.duckdb"
    store = Store(path)
    try:
        assert store.write_batch([make_event(0)])["events"] == 1
        path.unlink()
        if what == "replaced":
            path.write_bytes(b"")  # another file now lives at the path
        with pytest.raises(StoreError, match=f"{path}.*{what}"):
            store.write_batch([make_event(1)])
    finally:
        store.close()
    if what == "replaced":
        assert path.read_bytes() == b""  # nothing went into the other file either


FULL_DISK = """
import resource, signal, sys
import numpy as np
from collectors.wire.events import ScoredEvent
from monitor.store.database import Store
from monitor.store.migrations import StoreError

signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG instead
store = Store(sys.argv[1])
store.write_batch([])
resource.setrlimit(resource.RLIMIT_FSIZE, (2_000_000, 2_000_000))
rng = np.random.default_rng(0)
stored = 0
for b in range(100):
    events = [
        ScoredEvent(event_id=f"e{b}-{i}", ts=1.8e9 + i, model_id="m", probe_version="v1",
                    layer=1, pooling="last_prompt_token", raw_logit=0.1, confidence=0.5,
                    decision="serve", state=rng.standard_normal(256).astype(np.float32))
        for i in range(500)
    ]
    try:
        stored += store.write_batch(events)["events"]
    except StoreError as exc:
        print("REFUSED", exc)
        break
print("STORED", stored, "COUNT", store.execute("SELECT count(*) FROM events")[0][0])
"""


def test_a_full_file_system_is_named_and_loses_no_committed_batch(tmp_path):
    """The file system refusing to grow the store (here RLIMIT_FSIZE, the same errno path as a
    full disk) is a StoreError naming the store and the cause, not DuckDB's "cannot rollback -
    no transaction is active"; every batch written before it is still there."""
    import subprocess
    import sys

    path = tmp_path / "m.duckdb"
    out = subprocess.run(
        [sys.executable, "-c", FULL_DISK, str(path)], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    refused = next(line for line in out.stdout.splitlines() if line.startswith("REFUSED"))
    assert f"store {path}" in refused and "refused to grow" in refused
    assert "File too large" in refused and "rollback" not in refused
    stored, count = out.stdout.split("STORED ")[1].split(" COUNT ")
    assert int(stored) == int(count) > 0


def _damaged_store(tmp_path, make_event):
    path = tmp_path / "m.duckdb"
    with Store(path) as store:
        for b in range(5):
            store.write_batch([make_event(1000 * b + i, state=[0.5] * 64) for i in range(1000)])
    size = path.stat().st_size
    with open(path, "r+b") as f:  # damage the data blocks, keep the header
        f.seek(size // 4)
        f.write(bytes(range(256)) * ((size // 2) // 256))
    return path


def test_a_damaged_file_is_a_store_error_naming_it(tmp_path, make_event):
    path = _damaged_store(tmp_path, make_event)
    with pytest.raises(StoreError, match=f"store {path} is damaged.*Corrupt database file"):
        with Store(path) as store:
            for table in ("events", "states", "labels", "dead_letters", "offsets"):
                store.execute(f"SELECT * FROM {table}")


def test_a_damaged_file_stops_a_command_with_the_reason(tmp_path, make_event):
    import subprocess
    import sys

    import yaml

    path = _damaged_store(tmp_path, make_event)
    cfg = tmp_path / "config.yaml"
    cfg.write_text(yaml.safe_dump({"reliability_monitor": {"store": {"path": str(path)}}}))
    out = subprocess.run(
        [sys.executable, "-m", "monitor.cli", "retrain", "-c", str(cfg)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 1, out.stderr
    assert f"error: store {path} is damaged" in out.stderr and "Traceback" not in out.stderr
