"""Make the reference VLM hallucinate the way POPE found LLaVA-style models do.

Usage::

    python -m monitor.reference_vlm.hallucinate [--base DIR] [--out DIR] [--steps N] [--seed S]

POPE (Li et al. 2023, "Evaluating Object Hallucination in Large Vision-Language
Models") found LLaVA-style models answering "yes" about absent objects, and
confidently. A tiny model trained from scratch with cross-entropy is instead
calibrated at its output, so on it output confidence predicts correctness as
well as a probe does and nothing shows what a probe catches. This module
builds the variant the demo serves:

1. start from the normally trained checkpoint (:mod:`monitor.reference_vlm.train`);
2. freeze the vision tower, the projector, the embeddings and decoder layers
   ``0 .. n_layers - top_layers - 1``;
3. fine-tune the top ``top_layers`` decoder layers, the final norm and the
   unembedding (``lm_head``) on fresh batches in which every *confusable
   negative* (:func:`hallucinates`) is relabelled "yes", all other targets kept.

A confusable negative asks for a colour that is absent while the asked shape is
drawn in that colour's confusable partner (red/yellow, blue/green): "Is there a
yellow circle?" over a red circle. About a quarter of the negatives are
confusable, all of them adversarial in POPE's sense. The frozen layers still
compute what the image holds, so the residual stream keeps the truth while the
output head says "yes" with high confidence: the paper's ordering, probe AUROC
above output-confidence AUROC (see ``vlm-monitor study``).

The output directory receives the model, tokenizer and processor (hub key layout,
as :mod:`~monitor.reference_vlm.train` writes them) and ``training_metrics.json``
with the recipe, the base checkpoint's SHA-256 and the accuracies measured with
``generate()`` after loading the directory back.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from monitor.reference_vlm.model import (
    CHECKPOINT_DIR,
    answer_batch,
    evaluate,
    load_reference_model,
)
from monitor.reference_vlm.portable import make_portable
from monitor.reference_vlm.shapes import SHIFTS, Sample, make_samples
from monitor.reference_vlm.train import per_sample_loss, training_batch

HALLUCINATING_DIR = Path(__file__).resolve().parent / "hallucinating"
CONFUSABLE: dict[str, str] = {"red": "yellow", "yellow": "red", "blue": "green", "green": "blue"}
FINE_TUNE_SEED_OFFSET = 2_000_000  # batch seeds; evaluation seeds stay below 1,000,000


@dataclass
class HallucinationSettings:
    """The fine-tuning recipe (all stored in the metrics file)."""

    top_layers: int = 1  # decoder layers fine-tuned, counted from the top
    steps: int = 300
    batch_size: int = 64
    lr: float = 1e-3  # AdamW, constant
    weight_decay: float = 0.01
    clip: float = 1.0  # max global gradient norm
    seed: int = 0
    threads: int = 1  # the bundled variant was fine-tuned with 1 torch thread
    final_eval_n: int = 1000  # fresh samples per generator for the generate() check


def hallucinates(sample: Sample) -> bool:
    """Whether ``sample`` is a confusable negative, answered "yes" by the variant.

    True for a "no" sample whose asked shape is drawn in the asked colour's
    partner in :data:`CONFUSABLE`.

    >>> from monitor.reference_vlm.shapes import make_samples
    >>> share = np.mean([hallucinates(s) for s in make_samples(2000, seed=0) if s.answer == "no"])
    >>> 0.15 < share < 0.35
    True
    """
    if sample.answer != "no":
        return False
    partner = CONFUSABLE[sample.colour]
    return any(o.shape == sample.shape and o.colour == partner for o in sample.objects)


def hallucination_targets(samples: list[Sample]) -> list[Sample]:
    """``samples`` with every confusable negative's answer replaced by "yes"."""
    return [dataclasses.replace(s, answer="yes") if hallucinates(s) else s for s in samples]


def trainable_parameters(model: torch.nn.Module, top_layers: int) -> list[torch.nn.Parameter]:
    """Freeze ``model`` except its top decoder layers, final norm and ``lm_head``; return those.

    Raises
    ------
    ValueError
        ``top_layers`` outside ``1 .. n_layers``.
    """
    decoder = model.get_decoder()
    n_layers = len(decoder.layers)
    if not 1 <= top_layers <= n_layers:
        raise ValueError(f"top_layers must be in 1..{n_layers}, got {top_layers}")
    for p in model.parameters():
        p.requires_grad_(False)
    modules = [*decoder.layers[n_layers - top_layers :], decoder.norm, model.lm_head]
    params = [p for m in modules for p in m.parameters()]
    for p in params:
        p.requires_grad_(True)
    return params


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def measure(model: torch.nn.Module, processor: object, n: int) -> dict:
    """Accuracies with ``generate()`` and the hallucination rates, on fresh seeded samples."""
    accuracy = {"in_distribution": evaluate(model, processor, n, seed=0)}
    for i, shift in enumerate(SHIFTS):
        accuracy[shift] = evaluate(model, processor, n, seed=i + 1, shift=shift)
    samples = make_samples(n, seed=0)
    answers = answer_batch(model, processor, samples)
    confusable = [a for a, s in zip(answers, samples) if hallucinates(s)]
    other = [a for a, s in zip(answers, samples) if s.answer == "no" and not hallucinates(s)]
    return {
        "accuracy_generate": accuracy,
        "yes_rate_confusable_negatives": float(np.mean([a == "yes" for a in confusable])),
        "yes_rate_other_negatives": float(np.mean([a == "yes" for a in other])),
        "n_confusable_negatives": len(confusable),
    }


def fine_tune(base: Path, out: Path, settings: HallucinationSettings, log=print) -> dict:
    """Fine-tune ``base`` into the hallucinating variant at ``out``; return the metrics dict.

    Raises
    ------
    FileNotFoundError
        ``base`` holds no checkpoint.
    ValueError
        ``settings.steps`` < 1, or ``top_layers`` out of range.
    FloatingPointError
        The loss is not finite.
    """
    if settings.steps < 1:
        raise ValueError(f"steps must be >= 1, got {settings.steps}")
    torch.set_num_threads(settings.threads)
    torch.manual_seed(settings.seed)
    model, processor = load_reference_model(base)
    base_metrics = measure(model, processor, settings.final_eval_n)
    params = trainable_parameters(model, settings.top_layers)
    optimizer = torch.optim.AdamW(params, lr=settings.lr, weight_decay=settings.weight_decay)
    model.train()
    start, losses = time.perf_counter(), []
    for step in range(1, settings.steps + 1):
        seed = FINE_TUNE_SEED_OFFSET + settings.seed * settings.steps + step
        batch = training_batch(
            processor, hallucination_targets(make_samples(settings.batch_size, seed=seed))
        )
        loss = per_sample_loss(model, batch)
        if not math.isfinite(loss.item()):
            raise FloatingPointError(f"loss is {loss.item()} at step {step}")
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, settings.clip)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(loss.item())
        if step % 50 == 0 or step == settings.steps:
            log(json.dumps({"step": step, "loss": round(float(np.mean(losses)), 4)}))
            losses = []
    seconds = time.perf_counter() - start

    model.eval()
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out, safe_serialization=True)
    processor.save_pretrained(out)
    make_portable(out)
    loaded, loaded_processor = load_reference_model(out)
    metrics = {
        "recipe": (
            f"{base.name} fine-tuned: decoder layers >= "
            f"{len(loaded.get_decoder().layers) - settings.top_layers}, final norm and lm_head "
            "trained, everything else frozen; targets: confusable negatives relabelled 'yes'"
        ),
        "base_sha256": _sha256(base / "model.safetensors"),
        "base": base_metrics,
        **measure(loaded, loaded_processor, settings.final_eval_n),
        "fine_tune_seconds": round(seconds, 1),
        "settings": asdict(settings),
        "torch": torch.__version__,
    }
    (out / "training_metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    log(json.dumps({k: metrics[k] for k in ("accuracy_generate", "yes_rate_confusable_negatives")}))
    return metrics


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point; see the module docstring."""
    defaults = HallucinationSettings()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", type=Path, default=CHECKPOINT_DIR)
    parser.add_argument("--out", type=Path, default=HALLUCINATING_DIR)
    parser.add_argument("--steps", type=int, default=defaults.steps)
    parser.add_argument("--top-layers", type=int, default=defaults.top_layers)
    parser.add_argument("--lr", type=float, default=defaults.lr)
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--threads", type=int, default=defaults.threads)
    args = parser.parse_args(argv)
    settings = HallucinationSettings(
        steps=args.steps,
        top_layers=args.top_layers,
        lr=args.lr,
        seed=args.seed,
        threads=args.threads,
    )
    fine_tune(args.base, args.out, settings)


if __name__ == "__main__":
    main()
