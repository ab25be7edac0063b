"""Check that every "<=" upper bound in pyproject.toml is a version this CI run tested.

Usage: python .ci/check_bounds.py RESOLVED [MATRIX_VERSION ...]

RESOLVED is ``pip freeze`` of the test environment. A bound ``pkg<=X`` passes when
the test environment resolved ``pkg==X`` (the newest allowed was the one tested).
Also prints how RESOLVED differs from the recorded ``.ci/constraints.txt``, so a
dependency that moved under us shows in the log. Exit status 1 names each failing bound.
"""

from __future__ import annotations

import sys
from pathlib import Path

import tomllib
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]


def pins(path: Path) -> dict[str, str]:
    out = {}
    for line in path.read_text().splitlines():
        if "==" in line and not line.startswith("#"):
            name, version = line.split("==", 1)
            out[canonicalize_name(name)] = version.strip()
    return out


def main(argv: list[str]) -> int:
    resolved = pins(Path(argv[0]))
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = list(project["dependencies"])
    for extra in project.get("optional-dependencies", {}).values():
        reqs += extra
    failures = []
    for text in reqs:
        req = Requirement(text)
        name = canonicalize_name(req.name)
        for spec in req.specifier:
            if spec.operator == "<=" and resolved.get(name, "").split("+")[0] != spec.version:
                failures.append(f"{req.name}<={spec.version}: CI resolved {resolved.get(name)}")
    recorded = pins(ROOT / ".ci" / "constraints.txt")
    moved = sorted(
        f"  {n}: {recorded.get(n)} -> {resolved.get(n)}"
        for n in set(recorded) | set(resolved)
        if recorded.get(n) != resolved.get(n)
    )
    print(f"resolved {len(resolved)} packages; {len(moved)} differ from .ci/constraints.txt")
    print("\n".join(moved))
    for line in failures:
        print(f"error: upper bound not tested: {line}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
