"""Tests of the reference VLM's training pieces (batches, loss, a tiny end-to-end run)."""

from __future__ import annotations

import json

import pytest
import torch
from transformers import LlavaForConditionalGeneration

from monitor.reference_vlm.build import build_config, build_processor
from monitor.reference_vlm.model import load_reference_model
from monitor.reference_vlm.shapes import describe, make_samples
from monitor.reference_vlm.train import TrainSettings, per_sample_loss, train, training_batch


@pytest.fixture(scope="module")
def processor():
    return build_processor()


def test_labels_cover_only_the_targets(processor):
    samples = make_samples(4, seed=2)
    batch = training_batch(processor, samples, [True, False, True, False])
    tok = processor.tokenizer
    for row, (sample, is_caption) in enumerate(zip(samples, [True, False, True, False])):
        kept = batch["labels"][row][batch["labels"][row] != -100]
        words = tok.convert_ids_to_tokens(kept.tolist())
        expected = describe(sample).split() if is_caption else [sample.answer]
        assert words == expected + ["</s>"]
        # the targets sit at the end of the left-padded row
        assert torch.equal(batch["input_ids"][row, -len(kept) :], kept)


def test_per_sample_loss_weighs_samples_equally(processor):
    torch.manual_seed(0)
    model = LlavaForConditionalGeneration(build_config(processor.tokenizer))
    samples = make_samples(4, seed=3)
    same_length = training_batch(processor, samples)
    assert torch.allclose(per_sample_loss(model, same_length), model(**same_length).loss)

    mixed = training_batch(processor, samples, [True, False, False, False])
    per_row = [
        per_sample_loss(model, {k: v[i : i + 1] for k, v in mixed.items()}) for i in range(4)
    ]
    assert torch.allclose(per_sample_loss(model, mixed), torch.stack(per_row).mean(), atol=1e-5)


def test_mismatched_caption_mask_rejected(processor):
    with pytest.raises(ValueError):
        training_batch(processor, make_samples(3, seed=0), [True])


def test_bad_settings_rejected(tmp_path):
    with pytest.raises(ValueError, match="warmup"):
        train(tmp_path, TrainSettings(steps=5, warmup=5))


def test_tiny_run_saves_a_loadable_checkpoint(tmp_path):
    settings = TrainSettings(
        steps=4, warmup=1, batch_size=8, eval_every=2, final_eval_n=16, threads=1
    )
    metrics = train(tmp_path, settings, log=lambda _: None)
    assert (tmp_path / "model.safetensors").is_file()
    saved = json.loads((tmp_path / "training_metrics.json").read_text())
    assert saved["accuracy_generate"] == metrics["accuracy_generate"]
    assert [row["step"] for row in saved["settings"]["history"]] == [2, 4]
    model, proc = load_reference_model(tmp_path)
    assert isinstance(model, LlavaForConditionalGeneration)
    assert proc.tokenizer.padding_side == "left"
