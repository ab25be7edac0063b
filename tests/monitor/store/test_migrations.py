import duckdb
import numpy as np
import pytest

from monitor.store.database import SCHEMA_VERSION, Store, StoreError
from monitor.store.migrations import MIGRATIONS, V1_DDL, VERSION_DDL


def _v1_file(path, n_events=6):
    """A store file exactly as the walking skeleton (schema version 1) wrote it."""
    con = duckdb.connect(str(path))
    con.execute(VERSION_DDL)
    con.execute(V1_DDL)
    con.execute("INSERT INTO schema_version VALUES (1, 0)")
    for i in range(n_events):
        state = [0.5 * i, -1.0, 70000.0] if i % 2 == 0 else None  # 70000 > fp16 max
        con.execute(
            "INSERT INTO events VALUES (?, ?, 'm', 'p1', 3, 'last_prompt_token', 0.1, ?, "
            "'serve', 'yes', 't', ?, 1)",
            [f"ev-{i}", 100.0 + i, i / 10, state],
        )
    con.execute("INSERT INTO labels VALUES ('ev-1', true, 500, 'r'), ('ev-99', false, 501, 'r')")
    con.execute("INSERT INTO dead_letters VALUES ('\\x00'::BLOB, 'not UTF-8 JSON', 'e', 0, 7, 1)")
    con.execute("INSERT INTO offsets VALUES ('e', 0, 8), ('l', 0, 2)")
    con.execute(
        "INSERT INTO alerts (ts, kind, detector, subject, severity, message) "
        "VALUES (1, 'drift', 'kl', 's', 'warning', 'old alert')"
    )
    con.close()


def test_migrations_are_numbered_in_order():
    assert [v for v, _, _ in MIGRATIONS] == list(range(1, SCHEMA_VERSION + 1))


def test_version_1_file_opens_migrated_with_its_data(tmp_path):
    path = tmp_path / "old.duckdb"
    _v1_file(path)
    with Store(path) as store:
        versions = store.execute("SELECT version FROM schema_version ORDER BY version")
        assert versions == [(v,) for v in range(1, SCHEMA_VERSION + 1)]
        assert store.counts() == {"events": 6, "labels": 2, "dead_letters": 1, "alerts": 1}
        columns = [r[0] for r in store.execute("DESCRIBE events")]
        assert "state" not in columns
        ids, states, correct = store.states()
        assert list(ids) == ["ev-0", "ev-2", "ev-4"]
        np.testing.assert_array_equal(
            states, [[0.0, -1.0, 65504.0], [1.0, -1.0, 65504.0], [2.0, -1.0, 65504.0]]
        )  # fp16 saturates at its largest finite value
        assert np.isnan(correct).all()
        conf, ok = store.labelled()
        assert conf.tolist() == [0.1] and ok.tolist() == [True]  # ev-99 waits for its event
        assert store.offset_rows() == [("e", 0, 8, None), ("l", 0, 2, None)]
        assert store.execute("SELECT error, topic_id FROM dead_letters") == [("not UTF-8 JSON", "")]
        new_id = store.record_alert("drift", "kl", "s", "warning", "new", 1.0, 0.5)
        assert new_id == 2  # the id sequence carried over
        assert store.probes() == []
    with Store(path) as store:  # opening again changes nothing
        assert len(store.execute("SELECT * FROM schema_version")) == SCHEMA_VERSION


def test_failed_migration_leaves_the_file_at_its_old_version(tmp_path):
    path = tmp_path / "old.duckdb"
    _v1_file(path)
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE states (x INTEGER)")  # collides with the version 2 step
    con.close()
    with pytest.raises(StoreError, match="migrating store .* to version 2"):
        Store(path)
    con = duckdb.connect(str(path))
    assert con.execute("SELECT max(version) FROM schema_version").fetchone() == (1,)
    assert con.execute("SELECT count(*) FROM events").fetchone() == (6,)
    assert "state" in [r[0] for r in con.execute("DESCRIBE events").fetchall()]
    con.close()


def test_read_only_open_refuses_an_unmigrated_file(tmp_path):
    path = tmp_path / "old.duckdb"
    _v1_file(path)
    with pytest.raises(StoreError, match="open it once read-write to migrate it"):
        Store(path, read_only=True)


def _state_compressions(query):
    """Compressions of the ``state`` column's segments; ``query(sql)`` returns rows."""
    rows = query(
        "SELECT DISTINCT compression FROM pragma_storage_info('states') "
        "WHERE column_name = 'state' AND segment_type = 'BLOB'"
    )
    return {r[0] for r in rows}


def test_migrated_states_are_stored_uncompressed(tmp_path):
    """Repetitive states, which DuckDB would compress, stay uncompressed after the migration."""
    path = tmp_path / "old.duckdb"
    _v1_file(path)
    with Store(path) as store:
        store.execute(
            "INSERT INTO states SELECT 'ev-' || i, 100.0, 4, '\\x00\\x3c\\x00\\x3c'::BLOB "
            "FROM range(5000) t(i)"
        )
        store.execute("CHECKPOINT")
        assert _state_compressions(store.execute) == {"Uncompressed"}
        assert store.execute("SELECT count(*) FROM states") == [(5003,)]  # three carried over
    con = duckdb.connect()  # the same rows without the column's setting are compressed
    con.execute("CREATE TABLE states (event_id VARCHAR, ts DOUBLE, dim INTEGER, state BLOB)")
    con.execute(
        "INSERT INTO states SELECT 'ev-' || i, 100.0, 4, '\\x00\\x3c\\x00\\x3c'::BLOB "
        "FROM range(5000) t(i)"
    )
    con.execute("CHECKPOINT")
    assert _state_compressions(lambda q: con.execute(q).fetchall()) != {"Uncompressed"}
