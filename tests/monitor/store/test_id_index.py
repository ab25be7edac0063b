"""The id-hash index: exact membership across merged runs, as a set would answer."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.store.id_index import IdIndex

HASHES = st.lists(st.integers(0, 2**64 - 1), max_size=60)


@settings(max_examples=60, deadline=None)
@given(st.lists(HASHES, max_size=12), HASHES)
def test_membership_equals_a_set_of_everything_added(batches, probe):
    index, seen = IdIndex(), set()
    for batch in batches:
        index.add(np.array(batch, dtype=np.uint64))
        seen.update(batch)
    found = index.contains(np.array(probe, dtype=np.uint64))
    assert found.tolist() == [h in seen for h in probe]
    assert len(index._runs) <= max(1, int(np.log2(max(len(index), 1))) + 1)  # merged runs
