"""Versioned probe registry on a local (or shared) filesystem, written atomically.

Layout::

    <root>/versions/v1/probe.safetensors     tensors (never pickle)
    <root>/versions/v1/probe.json            metadata (version, layers, calibration, metrics...)
    <root>/champion.json                     pointer: {"version", "sha256": {file: digest}, "ts"}
    <root>/state.json                        trigger bookkeeping (last retrain time, reason)

Every write goes to a temporary path in the same directory, is flushed and
``fsync``-ed, then renamed over its target (``os.replace``, atomic on POSIX),
and the directory is ``fsync``-ed so the rename survives a power cut. A version
directory is assembled under ``versions/.tmp-*`` and renamed as a whole; the
champion pointer is replaced last. A crash at any point therefore leaves the
previous pointer naming a complete, verified version. The pointer carries the
SHA-256 of both files, so a probe file changed or truncated after promotion is
refused at load (:class:`collectors.probe.linear.ProbeFileError`).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from collectors.probe.linear import LinearProbe
from collectors.probe.registry import FILES, VERSION_PATTERN, ProbeRegistryReader, sha256_of


def fsync_dir(path: Path) -> None:
    """``fsync`` a directory so a rename inside it is durable (no-op where unsupported)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temp file in the same directory, fsync, rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_bytes(path, json.dumps(obj, indent=2, sort_keys=True).encode())


class ProbeRegistry(ProbeRegistryReader):
    """Probe versions and the champion pointer under ``root``, with the write side.

    Parameters
    ----------
    root : str or Path
        Created on first write.
    """

    # -- versions ------------------------------------------------------------
    @contextlib.contextmanager
    def exclusive(self) -> Iterator[bool]:
        """Hold the registry's write lock (``<root>/.lock``, ``flock``) if free.

        Yields True when this process holds it, False when another retrain does;
        the lock is released when the block ends, also after a crash of the holder.
        """
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / ".lock", "a+") as fh:
            try:
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield False
                return
            try:
                yield True
            finally:
                fcntl.flock(fh.fileno(), fcntl.LOCK_UN)

    def next_version(self) -> str:
        """``v<N+1>`` after the highest version directory (complete or not)."""
        numbers = [0]
        if self.versions_dir.is_dir():
            numbers += [
                int(m.group(1))
                for p in self.versions_dir.iterdir()
                if (m := VERSION_PATTERN.match(p.name))
            ]
        return f"v{max(numbers) + 1}"

    def publish(self, probe: LinearProbe) -> Path:
        """Write ``probe`` as version ``probe.version`` atomically; return its directory.

        Raises
        ------
        FileExistsError
            That version exists already (versions are immutable).
        """
        if not (np.isfinite(probe.weight).all() and np.isfinite(probe.bias)):
            raise ValueError(
                f"probe {probe.version}: weights or bias are not finite; not published"
            )
        if not VERSION_PATTERN.match(probe.version):
            raise ValueError(f"registry versions look like 'v<N>', got {probe.version!r}")
        target = self.versions_dir / probe.version
        if target.exists():
            raise FileExistsError(f"probe version {probe.version} exists in {self.root}")
        self.versions_dir.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{probe.version}-", dir=self.versions_dir))
        try:
            probe.save(tmp, name="probe")
            for name in FILES:
                with open(tmp / name, "rb") as fh:
                    os.fsync(fh.fileno())
            fsync_dir(tmp)
            os.rename(tmp, target)  # atomic; fails if target appeared meanwhile
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        fsync_dir(self.versions_dir)
        return target

    # -- champion ------------------------------------------------------------
    def promote(self, version: str, reason: str = "") -> dict[str, Any]:
        """Point the champion at ``version`` (which must load); return the new pointer.

        Raises
        ------
        ProbeFileError
            The version is missing or does not load.
        """
        directory = self.versions_dir / version
        self.load(version)  # refuse to point at something that does not load
        pointer = {
            "version": version,
            "sha256": {name: sha256_of(directory / name) for name in FILES},
            "ts": time.time(),
            "previous": self.champion_version() if self.pointer.exists() else None,
            "reason": reason,
        }
        atomic_write_json(self.pointer, pointer)
        self._append_history(pointer)
        return pointer

    @property
    def history_path(self) -> Path:
        """``history.jsonl``: one line per promotion, oldest first."""
        return self.root / "history.jsonl"

    def _append_history(self, pointer: dict[str, Any]) -> None:
        line = json.dumps({k: pointer[k] for k in ("version", "ts", "previous", "reason")})
        with open(self.history_path, "a", encoding="utf-8") as fh:
            fh.write(line + "\n")
            fh.flush()
            os.fsync(fh.fileno())

    def history(self) -> list[dict[str, Any]]:
        """Every promotion (``version``, ``ts``, ``previous``, ``reason``), oldest first.

        A registry from before the history was kept yields its current pointer only;
        a line that does not parse (a torn write) is skipped.
        """
        rows: list[dict[str, Any]] = []
        try:
            lines = self.history_path.read_text(encoding="utf-8").splitlines()
        except OSError:
            lines = []
        for line in lines:
            try:
                row = json.loads(line)
            except ValueError:
                continue
            if isinstance(row, dict) and isinstance(row.get("version"), str):
                rows.append(row)
        pointer = self.read_pointer() if self.pointer.exists() else None
        if pointer and (not rows or rows[-1]["version"] != pointer.get("version")):
            rows.append({k: pointer.get(k) for k in ("version", "ts", "previous", "reason")})
        return rows

    # -- trigger bookkeeping --------------------------------------------------
    def read_state(self) -> dict[str, Any]:
        """Trigger state (``last_retrain_ts``, ``last_reason``...); ``{}`` if absent or bad."""
        try:
            data = json.loads(self.state_path.read_text())
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def write_state(self, **fields: Any) -> None:
        atomic_write_json(self.state_path, {**self.read_state(), **fields})
