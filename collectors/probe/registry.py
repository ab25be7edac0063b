"""Reading the versioned probe registry from the serving process (no writes, no training code).

The layout and the write protocol are :mod:`retrain.registry`'s; this side reads
the champion pointer, verifies each file's SHA-256 against it and loads the
probe (never unpickled). :class:`collectors.probe.reload.ProbeWatcher` uses it.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

import numpy as np

from collectors.probe.linear import LinearProbe, ProbeFileError

FILES = ("probe.safetensors", "probe.json")
VERSION_PATTERN = re.compile(r"^v(\d+)$")
PROMOTED = "probe_promoted"  # the control-topic message type announcing a new champion


def sha256_of(path: Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


class ProbeRegistryReader:
    """Probe versions and the champion pointer under ``root``, read-only.

    Parameters
    ----------
    root : str or Path
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
            if VERSION_PATTERN.match(p.name) and all((p / f).is_file() for f in FILES)
        ]
        return sorted(found, key=lambda v: int(v[1:]))

    def load(self, version: str, sha256: dict[str, str] | None = None) -> LinearProbe:
        """Load one version; verify file digests when given.

        Raises
        ------
        ProbeFileError
            A version name that is not ``v<N>`` (no path can escape the registry),
            missing, corrupt, pickle payload, a digest mismatch, or non-finite weights.
        """
        if not isinstance(version, str) or not VERSION_PATTERN.match(version):
            raise ProbeFileError(f"probe version {version!r} is not a registry version 'v<N>'")
        directory = self.versions_dir / version
        if sha256:
            for name, digest in sha256.items():
                try:
                    actual = sha256_of(directory / name)
                except OSError as exc:
                    raise ProbeFileError(f"probe {version}: cannot read {name}: {exc}") from exc
                if actual != digest:
                    raise ProbeFileError(f"probe {version}: {name} does not match its SHA-256")
        probe = LinearProbe.load(directory / "probe.json")
        if probe.version != version:
            raise ProbeFileError(f"{directory} holds version {probe.version!r}, not {version!r}")
        if not (np.isfinite(probe.weight).all() and np.isfinite(probe.bias)):
            raise ProbeFileError(f"probe {version}: weights or bias are not finite")
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
        if not VERSION_PATTERN.match(data["version"]):
            raise ProbeFileError(
                f"champion pointer {self.pointer} names {data['version']!r}, not a version 'v<N>'"
            )
        digests = data.get("sha256")
        if not isinstance(digests, dict) or set(digests) != set(FILES):
            raise ProbeFileError(
                f"champion pointer {self.pointer} carries no SHA-256 of {', '.join(FILES)}: "
                "refusing to load an unverified probe"
            )
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
