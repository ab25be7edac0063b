"""Train the reference VLM from scratch on the shapes task and save it.

Usage::

    python -m monitor.reference_vlm.train [--out DIR] [--steps N] [--seed S] [--threads T]

Every step draws a fresh batch from :func:`monitor.reference_vlm.shapes.make_samples`
(seeds >= 1,000,000, so evaluation seeds below that are unseen). A fraction
``caption_fraction`` of each batch is asked ``"Describe the image."`` with
target :func:`~monitor.reference_vlm.shapes.describe` instead of its yes/no
question: a LLaVA-style captioning task that teaches the vision tower shapes
(without it the model stayed at the colour-only solution, 77 %, for 2,000
steps). The loss is the cross-entropy of the target tokens and ``</s>`` only
(labels -100 on the prompt), averaged per sample then over the batch. AdamW
with linear warm-up then cosine decay (Loshchilov & Hutter, "SGDR", 2017,
eq. 5, without restarts), gradient clipping at 1.0.

The output directory receives, through ``save_pretrained``: the model
(safetensors, rewritten to the hub key layout by
:func:`~monitor.reference_vlm.portable.make_portable`), the tokenizer, the image
processor and the processor, plus
``training_metrics.json`` with the accuracies measured with ``generate()``
after loading the directory back.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from transformers import LlavaForConditionalGeneration, get_cosine_schedule_with_warmup

from monitor.reference_vlm.build import EOS, build_config, build_processor, build_prompt
from monitor.reference_vlm.model import CHECKPOINT_DIR, evaluate, load_reference_model
from monitor.reference_vlm.portable import make_portable
from monitor.reference_vlm.shapes import CAPTION_QUESTION, SHIFTS, Sample, describe, make_samples

TRAIN_SEED_OFFSET = 1_000_000
VALID_SEED = 999_000


@dataclass
class TrainSettings:
    """Hyper-parameters of one training run (all stored in the metrics file)."""

    steps: int = 1500
    batch_size: int = 64
    lr: float = 5e-4  # peak learning rate
    warmup: int = 200  # steps of linear warm-up
    weight_decay: float = 0.01
    clip: float = 1.0  # max global gradient norm
    seed: int = 0
    threads: int = 1  # the bundled checkpoint was trained with 1 torch thread
    eval_every: int = 250
    final_eval_n: int = 1000  # fresh samples per generator for the final generate() check
    text_hidden: int = 128
    text_layers: int = 4
    vision_hidden: int = 96
    vision_layers: int = 3
    initializer_range: float = 0.08
    caption_fraction: float = 0.2  # share of each batch asked for a caption instead
    history: list[dict] = field(default_factory=list)


def training_batch(
    processor: object, samples: list[Sample], caption: list[bool] | None = None
) -> dict[str, torch.Tensor]:
    """Inputs with targets and labels for teacher forcing.

    Parameters
    ----------
    processor : LlavaProcessor
    samples : list of Sample
    caption : list of bool, optional
        Per sample: True asks :data:`CAPTION_QUESTION` with target
        :func:`describe` instead of the yes/no question. Default: all False.

    Returns
    -------
    dict
        ``input_ids``, ``attention_mask``, ``labels`` of shape (batch, seq_len)
        and ``pixel_values`` of shape (batch, 3, 32, 32). Rows are left-padded,
        so each target and its ``</s>`` end the row; ``labels`` is -100
        everywhere else (the prompt and the padding).
    """
    caption = caption if caption is not None else [False] * len(samples)
    pairs = [
        (CAPTION_QUESTION, describe(s)) if c else (s.question, s.answer)
        for s, c in zip(samples, caption, strict=True)
    ]
    texts = [f"{build_prompt(q)} {t}{EOS}" for q, t in pairs]
    batch = processor(
        images=[s.image for s in samples], text=texts, return_tensors="pt", padding=True
    )
    tokenizer = processor.tokenizer
    target_lengths = [len(tokenizer.tokenize(t)) + 1 for _, t in pairs]  # + </s>
    labels = torch.full_like(batch["input_ids"], -100)
    for row, n in enumerate(target_lengths):
        labels[row, -n:] = batch["input_ids"][row, -n:]
    return {**batch, "labels": labels}


def per_sample_loss(model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Cross-entropy averaged over each sample's target tokens, then over samples, nats.

    Unlike the token-averaged loss of ``model(labels=...)``, a yes/no answer
    (2 target tokens) weighs as much as a caption (up to 12).
    """
    labels = batch["labels"]
    inputs = {k: v for k, v in batch.items() if k != "labels"}
    logits = model(**inputs).logits[:, :-1]  # [batch, seq - 1, vocab]: predicts position t + 1
    targets = labels[:, 1:]  # [batch, seq - 1]
    token_loss = torch.nn.functional.cross_entropy(
        logits.transpose(1, 2), targets, ignore_index=-100, reduction="none"
    )  # [batch, seq - 1]
    counts = (targets != -100).sum(dim=1).clamp(min=1)
    return (token_loss.sum(dim=1) / counts).mean()


@torch.inference_mode()
def first_token_accuracy(model: torch.nn.Module, processor: object, samples: list[Sample]) -> float:
    """Teacher-free accuracy of the first greedy token (equals ``generate``'s first step)."""
    from monitor.reference_vlm.model import encode_batch

    model.eval()
    batch = encode_batch(processor, samples)
    logits = model(**batch).logits[:, -1, :]  # [batch, vocab]
    predicted = processor.tokenizer.convert_ids_to_tokens(logits.argmax(-1).tolist())
    model.train()
    return float(np.mean([p == s.answer for p, s in zip(predicted, samples)]))


def train(out: Path, settings: TrainSettings, log=print) -> dict:
    """Train, save to ``out``, reload and measure; returns the metrics dict.

    Raises
    ------
    ValueError
        If ``settings.steps`` < 1 or ``settings.warmup`` >= ``settings.steps``.
    """
    if settings.steps < 1 or not 0 <= settings.warmup < settings.steps:
        raise ValueError(f"need steps >= 1 and 0 <= warmup < steps, got {settings}")
    torch.set_num_threads(settings.threads)
    torch.manual_seed(settings.seed)
    processor = build_processor()
    config = build_config(
        processor.tokenizer,
        text_hidden=settings.text_hidden,
        text_layers=settings.text_layers,
        vision_hidden=settings.vision_hidden,
        vision_layers=settings.vision_layers,
        initializer_range=settings.initializer_range,
    )
    model = LlavaForConditionalGeneration(config).train()
    n_params = sum(p.numel() for p in model.parameters())
    log(f"parameters: {n_params:,}")
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=settings.lr, weight_decay=settings.weight_decay
    )
    schedule = get_cosine_schedule_with_warmup(optimizer, settings.warmup, settings.steps)
    valid = make_samples(512, seed=VALID_SEED)
    valid_shifted = make_samples(512, seed=VALID_SEED + 1, shift="all")

    start, losses = time.perf_counter(), []
    for step in range(1, settings.steps + 1):
        seed = TRAIN_SEED_OFFSET + settings.seed * settings.steps + step
        samples = make_samples(settings.batch_size, seed=seed)
        caption = np.random.default_rng(seed).random(len(samples)) < settings.caption_fraction
        batch = training_batch(processor, samples, caption.tolist())
        loss = per_sample_loss(model, batch)
        if not math.isfinite(loss.item()):
            raise FloatingPointError(f"loss is {loss.item()} at step {step}")
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), settings.clip)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(loss.item())
        if step % settings.eval_every == 0 or step == settings.steps:
            row = {
                "step": step,
                "seconds": round(time.perf_counter() - start, 1),
                "loss": round(float(np.mean(losses)), 4),
                "lr": schedule.get_last_lr()[0],
                "valid_acc": first_token_accuracy(model, processor, valid),
                "valid_acc_shift_all": first_token_accuracy(model, processor, valid_shifted),
            }
            settings.history.append(row)
            log(json.dumps(row))
            losses = []
    train_seconds = time.perf_counter() - start

    model.generation_config.pad_token_id = processor.tokenizer.pad_token_id
    model.generation_config.bos_token_id = processor.tokenizer.bos_token_id
    model.generation_config.eos_token_id = processor.tokenizer.eos_token_id
    model.generation_config.max_new_tokens = 2
    model.generation_config.do_sample = False
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out, safe_serialization=True)
    processor.save_pretrained(out)
    make_portable(out)  # the hub layout: loads under transformers 4.57-5.x and vLLM

    loaded, loaded_processor = load_reference_model(out)
    n_eval = settings.final_eval_n
    accuracy = {"in_distribution": evaluate(loaded, loaded_processor, n_eval, seed=0)}
    for i, shift in enumerate(SHIFTS):
        accuracy[shift] = evaluate(loaded, loaded_processor, n_eval, seed=i + 1, shift=shift)
    metrics = {
        "parameters": n_params,
        "train_seconds": round(train_seconds, 1),
        "accuracy_generate": accuracy,
        "accuracy_n_samples": n_eval,
        "eval_seeds": {"in_distribution": 0, **{s: i + 1 for i, s in enumerate(SHIFTS)}},
        "settings": asdict(settings),
        "torch": torch.__version__,
    }
    (out / "training_metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    log(json.dumps({"train_seconds": metrics["train_seconds"], **accuracy}))
    return metrics


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point; see the module docstring."""
    defaults = TrainSettings()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=CHECKPOINT_DIR)
    parser.add_argument("--steps", type=int, default=defaults.steps)
    parser.add_argument("--batch-size", type=int, default=defaults.batch_size)
    parser.add_argument("--lr", type=float, default=defaults.lr)
    parser.add_argument("--warmup", type=int, default=defaults.warmup)
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--threads", type=int, default=defaults.threads)
    parser.add_argument("--eval-every", type=int, default=defaults.eval_every)
    parser.add_argument("--caption-fraction", type=float, default=defaults.caption_fraction)
    args = parser.parse_args(argv)
    settings = TrainSettings(
        steps=args.steps,
        batch_size=args.batch_size,
        lr=args.lr,
        warmup=args.warmup,
        seed=args.seed,
        threads=args.threads,
        eval_every=args.eval_every,
        caption_fraction=args.caption_fraction,
    )
    train(args.out, settings)


if __name__ == "__main__":
    main()
