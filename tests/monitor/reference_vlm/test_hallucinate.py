"""The hallucinating variant: relabelling rule, freezing, a tiny fine-tune, the bundled one."""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import json

import pytest
import torch
from typer.testing import CliRunner

from monitor.cli.app import app
from monitor.reference_vlm.hallucinate import (
    CONFUSABLE,
    HALLUCINATING_DIR,
    HallucinationSettings,
    fine_tune,
    hallucinates,
    hallucination_targets,
    trainable_parameters,
)
from monitor.reference_vlm.model import CHECKPOINT_DIR, load_reference_model
from monitor.reference_vlm.shapes import make_samples

torch.set_num_threads(1)


def test_rule_only_touches_confusable_negatives():
    samples = make_samples(1000, seed=3)
    flagged = [s for s in samples if hallucinates(s)]
    negatives = [s for s in samples if s.answer == "no"]
    assert not any(hallucinates(s) for s in samples if s.answer == "yes")
    assert 0.15 < len(flagged) / len(negatives) < 0.35
    for s in flagged:
        assert any(o.shape == s.shape and o.colour == CONFUSABLE[s.colour] for o in s.objects)
        assert not any(o.shape == s.shape and o.colour == s.colour for o in s.objects)

    relabelled = hallucination_targets(samples)
    changed = [(a, b) for a, b in zip(samples, relabelled) if a != b]
    assert len(changed) == len(flagged)
    assert all(b.answer == "yes" and dataclasses.replace(b, answer="no") == a for a, b in changed)


def test_a_constructed_confusable_negative_is_flagged():
    sample = next(s for s in make_samples(500, seed=1) if s.answer == "yes")
    partner = CONFUSABLE[sample.colour]
    absent = dataclasses.replace(
        sample,
        colour=partner,
        answer="no",
        objects=[o for o in sample.objects if o.shape != sample.shape or o.colour != partner],
    )
    # the asked shape is drawn in the asked colour's partner: the confusable case
    assert hallucinates(absent)
    assert not hallucinates(dataclasses.replace(absent, answer="yes"))


def test_only_the_top_of_the_decoder_trains():
    model, _ = load_reference_model()
    n_layers = len(model.get_decoder().layers)
    params = trainable_parameters(model, 1)
    trained = {n for n, p in model.named_parameters() if p.requires_grad}
    assert len(params) == len(trained) > 0
    assert all(f"layers.{n_layers - 1}." in n or "norm" in n or "lm_head" in n for n in trained)
    assert not any(f"layers.{n_layers - 2}." in n or "vision" in n for n in trained)
    for bad in (0, n_layers + 1):
        with pytest.raises(ValueError, match=f"1..{n_layers}"):
            trainable_parameters(model, bad)


def test_tiny_fine_tune_keeps_the_frozen_layers_bitwise(tmp_path):
    settings = HallucinationSettings(steps=3, batch_size=8, final_eval_n=20)
    metrics = fine_tune(CHECKPOINT_DIR, tmp_path, settings, log=lambda _: None)
    saved = json.loads((tmp_path / "training_metrics.json").read_text())
    assert saved["settings"]["steps"] == 3 and saved == json.loads(json.dumps(metrics))
    for key in ("recipe", "base_sha256", "base", "accuracy_generate", "fine_tune_seconds"):
        assert key in saved

    base, _ = load_reference_model(CHECKPOINT_DIR)
    tuned, _ = load_reference_model(tmp_path)
    top = len(base.get_decoder().layers) - 1
    base_params = dict(base.named_parameters())
    moved = set()
    for name, p in tuned.named_parameters():
        if not torch.equal(p, base_params[name]):
            moved.add(name)
    assert moved and all(f"layers.{top}." in n or "norm" in n or "lm_head" in n for n in moved)
    with pytest.raises(ValueError, match="steps"):
        fine_tune(CHECKPOINT_DIR, tmp_path, HallucinationSettings(steps=0))


def test_bundled_variant_says_yes_and_names_its_base():
    metrics = json.loads((HALLUCINATING_DIR / "training_metrics.json").read_text())
    base_bytes = (CHECKPOINT_DIR / "model.safetensors").read_bytes()
    assert metrics["base_sha256"] == hashlib.sha256(base_bytes).hexdigest()
    assert metrics["yes_rate_confusable_negatives"] > 0.9
    assert metrics["base"]["yes_rate_confusable_negatives"] < 0.2
    # the lower layers still see the image: the other negatives are mostly still "no"
    assert metrics["yes_rate_other_negatives"] < 0.4


@pytest.mark.slow
def test_study_on_the_bundled_variant_shows_the_papers_ordering(tmp_path):
    args = ["study", "--n", "600", "--k", "2", "--resamples", "1000", "--no-causal"]
    result = CliRunner().invoke(app, [*args, "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    with (tmp_path / "study.csv").open() as fh:
        rows = {r["method"]: r for r in csv.DictReader(fh)}
    probe = next(r for m, r in rows.items() if m.startswith("Hidden-state probe"))
    confidence = rows["Output confidence"]
    # the probe's bootstrap interval lies wholly above the output confidence's
    assert float(probe["auroc_lo"]) > float(confidence["auroc_hi"]), (probe, confidence)
