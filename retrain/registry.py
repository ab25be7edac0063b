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
refused at load (:class:`collectors.probe.ProbeFileError`).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from collectors.probe import LinearProbe, ProbeFileError

FILES = ("probe.safetensors", "probe.json")
_VERSION = re.compile(r"^v(\d+)$")


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


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


class ProbeRegistry:
    """Probe versions and the champion pointer under ``root``.

    Parameters
    ----------
    root : str or Path
        Created on first write.
    """

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.versions_dir = self.root / "versions"
        self.pointer = self.root / "champion.json"
        self.state_path = self.root / "state.json"

    # -- versions ------------------------------------------------------------
    def versions(self) -> list[str]:
        """Complete versions, oldest first (temporary directories are ignored)."""
        if not self.versions_dir.is_dir():
            return []
        found = [
            p.name
            for p in self.versions_dir.iterdir()
            if _VERSION.match(p.name) and all((p / f).is_file() for f in FILES)
        ]
        return sorted(found, key=lambda v: int(v[1:]))

    def next_version(self) -> str:
        """``v<N+1>`` after the highest version directory (complete or not)."""
        numbers = [0]
        if self.versions_dir.is_dir():
            numbers += [
                int(m.group(1))
                for p in self.versions_dir.iterdir()
                if (m := _VERSION.match(p.name))
            ]
        return f"v{max(numbers) + 1}"

    def publish(self, probe: LinearProbe) -> Path:
        """Write ``probe`` as version ``probe.version`` atomically; return its directory.

        Raises
        ------
        FileExistsError
            That version exists already (versions are immutable).
        """
        if not _VERSION.match(probe.version):
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

    def load(self, version: str, sha256: dict[str, str] | None = None) -> LinearProbe:
        """Load one version; verify file digests when given.

        Raises
        ------
        ProbeFileError
            Missing, corrupt, pickle payload, or a digest mismatch.
        """
        directory = self.versions_dir / version
        if sha256:
            for name, digest in sha256.items():
                try:
                    actual = _sha256(directory / name)
                except OSError as exc:
                    raise ProbeFileError(f"probe {version}: cannot read {name}: {exc}") from exc
                if actual != digest:
                    raise ProbeFileError(f"probe {version}: {name} does not match its SHA-256")
        probe = LinearProbe.load(directory / "probe.json")
        if probe.version != version:
            raise ProbeFileError(f"{directory} holds version {probe.version!r}, not {version!r}")
        return probe

    # -- champion ------------------------------------------------------------
    def read_pointer(self) -> dict[str, Any] | None:
        """The champion pointer, or ``None`` when no version was promoted.

        Raises
        ------
        ProbeFileError
            The pointer file is unreadable or not the expected JSON.
        """
        try:
            data = json.loads(self.pointer.read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise ProbeFileError(f"champion pointer {self.pointer} unreadable: {exc}") from exc
        if not isinstance(data, dict) or not isinstance(data.get("version"), str):
            raise ProbeFileError(f"champion pointer {self.pointer} has no version")
        return data

    def champion_version(self) -> str | None:
        pointer = self.read_pointer()
        return None if pointer is None else pointer["version"]

    def champion(self) -> LinearProbe | None:
        """The champion probe, verified against the pointer's digests; ``None`` if none.

        Raises
        ------
        ProbeFileError
        """
        pointer = self.read_pointer()
        if pointer is None:
            return None
        return self.load(pointer["version"], pointer.get("sha256"))

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
            "sha256": {name: _sha256(directory / name) for name in FILES},
            "ts": time.time(),
            "previous": self.champion_version() if self.pointer.exists() else None,
            "reason": reason,
        }
        atomic_write_json(self.pointer, pointer)
        return pointer

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
