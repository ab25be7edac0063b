"""Drift-run tests share the traffic helpers of ``test_reference.py`` (importlib mode)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
