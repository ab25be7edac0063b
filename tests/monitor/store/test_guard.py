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
