"""What can happen to a store's file under a running process, named in the error.

- Deleted or replaced while open: DuckDB keeps writing to the open file descriptor
  of a deleted file, so a store whose file was removed would go on "storing" rows
  that no process can read again.
- The file system refuses to grow it (disk full, quota, file-size limit).
- Its bytes are damaged (a block's checksum fails).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from monitor.store.migrations import StoreError


def file_id(path: Path) -> tuple[int, int] | None:
    """``(device, inode)`` of the file at ``path``, or None when there is none."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return (st.st_dev, st.st_ino)


def check_unchanged(path: Path, opened: tuple[int, int] | None) -> None:
    """Raise unless the file at ``path`` is still the one opened as ``opened``.

    Raises
    ------
    StoreError
        Naming the path and what happened to it.
    """
    now = file_id(path)
    if opened is not None and now != opened:
        what = "deleted" if now is None else "replaced by another file"
        raise StoreError(
            f"store {path} was {what} while open; nothing was written. Restart to open "
            "the file now at that path (ingest resumes from the offsets stored in it, "
            "or from the start for a new file: no event is lost)"
        )


#: How the operating system says a file may not grow, as DuckDB passes it on.
_NO_ROOM = ("No space left on device", "File too large", "Disk quota exceeded")


def raise_if_disk_full(path: Path | str, exc: BaseException) -> None:
    """Raise :class:`StoreError` naming the directory and its free space when ``exc`` (a
    failed write) is the file system refusing to grow the store; return otherwise.

    DuckDB aborts the transaction itself then, so the caller's ROLLBACK would fail
    with "no transaction is active" and hide the cause.
    """
    text = str(exc)
    if not any(marker in text for marker in _NO_ROOM) or str(path) == ":memory:":
        return
    where = Path(path).resolve().parent
    try:
        free = f"{shutil.disk_usage(where).free / 1e6:,.1f} MB free"
    except OSError:
        free = "free space unknown"
    raise StoreError(
        f"store {path}: the file system refused to grow it ({free} in {where}; "
        f"DuckDB said: {text.splitlines()[0]}). Nothing of this batch was stored; free "
        "space and restart: ingest resumes from the offsets stored in the file"
    ) from exc


#: How DuckDB says the file's bytes are damaged, or that it gave up on the database.
_DAMAGED = ("Corrupt database file", "checksum", "database has been invalidated")


def damaged_error(path: Path | str, exc: BaseException) -> StoreError | None:
    """A :class:`StoreError` naming the store and what to do when ``exc`` says the file is
    damaged (a block's checksum fails, DuckDB invalidated the database); None otherwise."""
    text = str(exc)
    if not any(marker in text for marker in _DAMAGED):
        return None
    return StoreError(
        f"store {path} is damaged (DuckDB said: {text.splitlines()[0]}). Nothing more was "
        "read or written. The Parquet archive and the Kafka topics are separate and "
        "untouched: restore the file from a backup, or move it aside and restart ingest, "
        "which rebuilds a new store from the topics' retained messages"
    )


class GuardedConnection:
    """A DuckDB connection whose ``execute`` raises :class:`StoreError` for a damaged file.

    Everything else is the wrapped connection's own (attributes are delegated).
    """

    def __init__(self, con: Any, path: Path | str) -> None:
        self._con = con
        self._path = path

    def execute(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return self._con.execute(*args, **kwargs)
        except Exception as exc:
            damaged = damaged_error(self._path, exc)
            if damaged is not None:
                raise damaged from exc
            raise

    def __getattr__(self, name: str) -> Any:
        return getattr(self._con, name)
