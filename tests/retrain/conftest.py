"""Retrain tests: torch on one thread (small fits; threads only add contention), and the
shared synthetic-data helpers of ``retrain_synth.py`` importable under importlib mode."""

import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))  # for `import retrain_synth`


@pytest.fixture(autouse=True, scope="package")
def _one_torch_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
