"""docs/architecture.md's map lists every package folder, and only folders that exist."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_map_matches_the_tree():
    text = (ROOT / "docs" / "architecture.md").read_text()
    listed = set(re.findall(r"^\| `([a-z_]+/[a-z_]+)/` \|", text, flags=re.M))
    actual = {
        str(p.parent.relative_to(ROOT))
        for pkg in ("collectors", "detectors", "retrain", "monitor")
        for p in (ROOT / pkg).glob("*/__init__.py")
    }
    assert listed == actual, (
        f"only in the map: {listed - actual}; only in the tree: {actual - listed}"
    )
