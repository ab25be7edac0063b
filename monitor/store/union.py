"""Several stores read as one: the ingesters' files behind one store's views.

When several ingesters share a topic's partitions (``kafka.assignment``), each
writes its own DuckDB file, and an event and its label always land in the same
one (both are keyed by ``event_id``, and partition ``p`` of both topics belongs to
the same ingester). Detection and reports then read them together: on the store
that runs them (the *home* store, which keeps the detector runs, alerts and
outbox), :func:`attach_members` attaches each member file read-only and replaces
the views every window query reads (``all_events``, ``all_states`` and
``labelled_events``, see :mod:`monitor.store.queries`) by temporary views over
the home store's and every member's rows, archives included (each member's own
``all_*`` views span its Parquet archive). Nothing is copied.

DuckDB allows one process per file when one writes, so a member must not be
open by its ingester while it is attached: stop the ingesters (a batch
detection host), or read their Parquet archives directly
(``docs/scale-out.md``). An attach that fails names the member and why.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from monitor.store.migrations import StoreError
from monitor.store.retention import labelled_events_sql
from monitor.store.schema import ARCHIVED

UNIONED = {**{f"all_{t}": f"all_{t}" for t in ARCHIVED}, "all_labels": "labels"}
"""The temporary views over every store, and the relation each store contributes."""


def attach_members(store: Any, members: Sequence[str | Path]) -> list[str]:
    """Attach ``members`` read-only to ``store`` and read all of them through its views.

    Parameters
    ----------
    store : Store
        The home store; its connection gets the attachments and the views.
    members : sequence of path
        Other stores' DuckDB files (the home store's own file is skipped if listed).

    Returns
    -------
    list of str
        The catalog name of each attached member, ``member_0``, ``member_1``, ...

    Raises
    ------
    StoreError
        A member is missing, is not a vlm-monitor store, or is held by another
        process (its ingester); or two members are the same file.
    """
    home_path = None if str(store.path) == ":memory:" else Path(store.path).resolve()
    paths: list[Path] = []
    for member in members:
        path = Path(member).resolve()
        if path == home_path:
            continue
        if path in paths:
            raise StoreError(f"store member {member} is listed twice")
        if not path.is_file():
            raise StoreError(f"store member {member} does not exist")
        paths.append(path)
    home = store.execute("SELECT current_database()")[0][0]
    names = []
    for i, path in enumerate(paths):
        name = f"member_{i}"
        quoted = str(path).replace("'", "''")
        try:
            store.execute(f"ATTACH '{quoted}' AS {name} (READ_ONLY)")
            store.execute(f"SELECT max(version) FROM {name}.main.schema_version")
        except Exception as exc:  # noqa: BLE001 - duckdb.Error: lock, not a database, ...
            held = "lock" in str(exc).lower()
            why = "held by another process (stop its ingester first)" if held else str(exc)
            raise StoreError(f"cannot read store member {path}: {why}") from exc
        names.append(name)
    if not names:
        return names
    catalogs = [home, *names]
    for view, relation in UNIONED.items():
        body = " UNION ALL BY NAME ".join(f"SELECT * FROM {c}.main.{relation}" for c in catalogs)
        store.execute(f"CREATE OR REPLACE TEMP VIEW {view} AS {body}")
    store.execute(
        f"CREATE OR REPLACE TEMP VIEW labelled_events AS {labelled_events_sql('all_labels')}"
    )
    return names
