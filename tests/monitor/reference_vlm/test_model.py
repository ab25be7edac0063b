"""Tests of the bundled reference VLM checkpoint and its helpers."""

from __future__ import annotations

import pytest
import torch
from transformers import (
    AutoModelForImageTextToText,
    AutoProcessor,
    LlavaForConditionalGeneration,
    LlavaProcessor,
)

from monitor.reference_vlm.build import N_IMAGE_TOKENS, build_prompt
from monitor.reference_vlm.model import (
    CHECKPOINT_DIR,
    answer_batch,
    encode_batch,
    evaluate,
    load_reference_model,
    normalise_answer,
)
from monitor.reference_vlm.shapes import make_samples


@pytest.fixture(scope="module")
def loaded():
    torch.set_num_threads(2)
    return load_reference_model()


def test_checkpoint_is_small_safetensors():
    files = {p.name: p.stat().st_size for p in CHECKPOINT_DIR.iterdir()}
    assert "model.safetensors" in files
    assert not any(name.endswith((".bin", ".pt", ".pkl")) for name in files)
    assert sum(files.values()) < 20 * 2**20


def test_loads_with_auto_classes():
    model = AutoModelForImageTextToText.from_pretrained(CHECKPOINT_DIR, local_files_only=True)
    processor = AutoProcessor.from_pretrained(CHECKPOINT_DIR, local_files_only=True)
    assert isinstance(model, LlavaForConditionalGeneration)
    assert isinstance(processor, LlavaProcessor)
    assert processor.tokenizer.padding_side == "left"


def test_architecture(loaded):
    model, _ = loaded
    layers = model.model.language_model.layers
    assert len(layers) == model.config.text_config.num_hidden_layers == 4
    assert model.config.text_config.hidden_size == 128
    assert not model.training


def test_prompt_expands_to_image_tokens(loaded):
    model, processor = loaded
    batch = encode_batch(processor, make_samples(3, seed=0))
    n_image = (batch["input_ids"] == model.config.image_token_index).sum(dim=1)
    assert n_image.tolist() == [N_IMAGE_TOKENS] * 3
    assert batch["pixel_values"].shape == (3, 3, 32, 32)
    last = processor.tokenizer.convert_ids_to_tokens(batch["input_ids"][:, -1].tolist())
    assert last == [":"] * 3


def test_generate_agrees_with_forward(loaded):
    model, processor = loaded
    samples = make_samples(32, seed=5)
    answers = answer_batch(model, processor, samples, batch_size=10)
    assert len(answers) == 32 and set(answers) <= {"yes", "no"}
    with torch.inference_mode():
        logits = model(**encode_batch(processor, samples)).logits[:, -1]  # [batch, vocab]
    first = processor.tokenizer.convert_ids_to_tokens(logits.argmax(-1).tolist())
    assert answers == first


def test_accuracy_above_chance_and_drops_under_shift(loaded):
    model, processor = loaded
    in_dist = evaluate(model, processor, n=200, seed=123)
    shifted = evaluate(model, processor, n=200, seed=124, shift="all")
    assert in_dist >= 0.85, in_dist
    assert in_dist < 0.995, "the reference model should still make errors"
    assert shifted <= in_dist - 0.10, (in_dist, shifted)


def test_missing_checkpoint_is_clear(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing config.json"):
        load_reference_model(tmp_path)


def test_bad_inputs(loaded):
    model, processor = loaded
    with pytest.raises(ValueError, match="samples is empty"):
        answer_batch(model, processor, [])
    with pytest.raises(ValueError, match="max_new_tokens"):
        answer_batch(model, processor, make_samples(2, seed=0), max_new_tokens=0)
    with pytest.raises(ValueError, match="must not contain"):
        build_prompt("<image> Is there a red circle?")
    with pytest.raises(ValueError, match="non-empty"):
        build_prompt("  ")


@pytest.mark.parametrize(
    ("text", "expected"),
    [(" yes", "yes"), ("No.", "no"), ("yes yes", "yes"), ("", ""), ("A circle", "a circle")],
)
def test_normalise_answer(text, expected):
    assert normalise_answer(text) == expected
