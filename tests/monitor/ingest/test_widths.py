"""A state of another width than its subject's is a dead letter; the rest of the batch stays."""

from __future__ import annotations

from collectors.wire.codec import encode
from monitor.ingest.decode import decode_batch
from monitor.ingest.widths import StateWidths, store_lookup


def test_a_state_of_another_width_is_dead_lettered_with_the_reason(tmp_store, make_event):
    tmp_store.write_batch([make_event(i, state=[0.5] * 8) for i in range(3)])  # 8 wide, stored
    widths = StateWidths(store_lookup(tmp_store))
    values = [
        encode(make_event(10, state=[0.1] * 8)),
        encode(make_event(11, state=[0.1] * 3)),  # the odd one
        encode(make_event(12, state=[0.1] * 8, model_id="other")),
        encode(make_event(13, state=[0.1] * 5, model_id="other")),  # other's first width is 8
        encode(make_event(14)),  # no state
    ]
    batch = decode_batch(values)
    widths.check(batch)
    assert [i for i, _ in batch.errors] == [1, 3]
    assert "state width 3 differs from the 8 of m/p1" in batch.errors[0][1]
    assert batch.events.column("event_id").to_pylist() == ["ev-000010", "ev-000012", "ev-000014"]
    assert sorted(batch.states.column("event_id").to_pylist()) == ["ev-000010", "ev-000012"]
    assert batch.event_positions.tolist() == [0, 2, 4]
