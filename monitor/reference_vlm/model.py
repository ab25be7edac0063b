"""Load and run the bundled reference VLM (a real ``LlavaForConditionalGeneration``).

The checkpoint in ``checkpoint/`` next to this file is written by
``python -m monitor.reference_vlm.train`` and read back with the Auto classes from
a local directory, the same code path as for ``llava-hf/llava-1.5-7b-hf``.

Examples
--------
>>> model, processor = load_reference_model()  # doctest: +SKIP
>>> answer_batch(model, processor, make_samples(2, seed=0))  # doctest: +SKIP
['no', 'yes']
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from transformers import AutoModelForImageTextToText, AutoProcessor, BatchFeature

from monitor.reference_vlm.build import build_prompt
from monitor.reference_vlm.shapes import Sample, make_samples

CHECKPOINT_DIR = Path(__file__).resolve().parent / "checkpoint"


def load_reference_model(
    path: str | Path | None = None, device: str | torch.device = "cpu"
) -> tuple[torch.nn.Module, object]:
    """Load the reference model and its processor from a local directory.

    Parameters
    ----------
    path : str or Path, optional
        Directory written by ``save_pretrained``; defaults to the bundled
        ``monitor/reference_vlm/checkpoint``. Never contacts a hub.
    device : str or torch.device
        Where to put the model (float32), e.g. ``"cpu"`` or ``"cuda:0"``.

    Returns
    -------
    model : LlavaForConditionalGeneration
        In eval mode.
    processor : LlavaProcessor
        Its tokenizer pads on the left, for batched generation.

    Raises
    ------
    FileNotFoundError
        If ``path`` holds no ``config.json`` (e.g. the model was never trained).
    """
    path = Path(path) if path is not None else CHECKPOINT_DIR
    if not (path / "config.json").is_file():
        raise FileNotFoundError(
            f"no reference checkpoint at {path} (missing config.json); "
            "train one with `python -m monitor.reference_vlm.train --out DIR`"
        )
    processor = AutoProcessor.from_pretrained(path, local_files_only=True)
    processor.tokenizer.padding_side = "left"
    model = AutoModelForImageTextToText.from_pretrained(
        path, local_files_only=True, dtype=torch.float32
    )
    return model.to(device).eval(), processor


def encode_batch(processor: object, samples: Sequence[Sample]) -> BatchFeature:
    """Processor inputs for the prompts of ``samples`` (no answers), left-padded.

    Parameters
    ----------
    processor : LlavaProcessor
        From :func:`load_reference_model`.
    samples : sequence of Sample
        Non-empty.

    Returns
    -------
    BatchFeature
        ``input_ids`` and ``attention_mask`` of shape (n_samples, seq_len) and
        ``pixel_values`` of shape (n_samples, 3, 32, 32), torch tensors on CPU.
        The last position of every row is the last prompt token.

    Raises
    ------
    ValueError
        If ``samples`` is empty.
    """
    if len(samples) == 0:
        raise ValueError("samples is empty")
    return processor(
        images=[s.image for s in samples],
        text=[build_prompt(s.question) for s in samples],
        return_tensors="pt",
        padding=True,
    )


def normalise_answer(text: str) -> str:
    """Map generated text to ``"yes"``, ``"no"``, or the stripped lower-cased text.

    >>> normalise_answer(" Yes."), normalise_answer("no"), normalise_answer("a circle")
    ('yes', 'no', 'a circle')
    """
    text = text.strip().lower()
    first = re.split(r"[\s.,!?]+", text, maxsplit=1)[0] if text else ""
    return first if first in ("yes", "no") else text


@torch.inference_mode()
def answer_batch(
    model: torch.nn.Module,
    processor: object,
    samples: Sequence[Sample],
    max_new_tokens: int = 2,
    batch_size: int = 256,
) -> list[str]:
    """Answer each sample with greedy batched ``generate``.

    Parameters
    ----------
    model : LlavaForConditionalGeneration
    processor : LlavaProcessor
    samples : sequence of Sample
        Non-empty.
    max_new_tokens : int
        Generation budget; the answer word and ``</s>`` need 2.
    batch_size : int
        Samples per ``generate`` call.

    Returns
    -------
    list of str, length n_samples
        ``"yes"``, ``"no"`` or other normalised text (see :func:`normalise_answer`).

    Raises
    ------
    ValueError
        If ``samples`` is empty or ``max_new_tokens`` / ``batch_size`` < 1.
    """
    if max_new_tokens < 1 or batch_size < 1:
        raise ValueError(
            f"max_new_tokens and batch_size must be >= 1, got {max_new_tokens}, {batch_size}"
        )
    if len(samples) == 0:
        raise ValueError("samples is empty")
    device = next(model.parameters()).device
    tokenizer = processor.tokenizer
    answers: list[str] = []
    for start in range(0, len(samples), batch_size):
        batch = encode_batch(processor, samples[start : start + batch_size]).to(device)
        out = model.generate(
            **batch,
            max_new_tokens=max_new_tokens,
            do_sample=False,
            pad_token_id=tokenizer.pad_token_id,
        )  # [batch, prompt_len + new]
        new = out[:, batch["input_ids"].shape[1] :]
        answers += [
            normalise_answer(t) for t in tokenizer.batch_decode(new, skip_special_tokens=True)
        ]
    return answers


def evaluate(
    model: torch.nn.Module,
    processor: object,
    n: int = 1000,
    seed: int = 0,
    shift: str | None = None,
) -> float:
    """Accuracy of greedy answers on ``n`` fresh samples from :func:`make_samples`.

    Parameters
    ----------
    n : int
        Number of samples, >= 1.
    seed : int
        Generator seed; training uses seeds >= 1,000,000, so smaller ones are fresh.
    shift : {None, "noise", "small", "background", "all"}
        Which generator.

    Returns
    -------
    float
        Fraction in [0, 1] of answers equal to the true "yes"/"no"; any other
        text counts as wrong.
    """
    samples = make_samples(n, seed=seed, shift=shift)
    answers = answer_batch(model, processor, samples)
    return float(np.mean([a == s.answer for a, s in zip(answers, samples)]))
