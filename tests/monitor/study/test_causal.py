"""Causal checks on the bundled reference VLM: the edits take effect, the statistics are paired."""

import numpy as np
import pytest
import torch

from collectors.model.registry import resolve_architecture
from monitor.reference_vlm.build import build_prompt
from monitor.reference_vlm.model import load_reference_model
from monitor.study.causal import (
    correctness,
    neuron_ablation,
    paired_delta,
    patch_masking,
)
from monitor.study.datasets import load_shapes

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def setup():
    model, processor = load_reference_model()
    items = load_shapes(80, seed=11)
    return model, processor, items, correctness(model, processor, items, build_prompt)


def test_paired_delta():
    base = np.array([True] * 50 + [False] * 50)
    edited = np.array([True] * 40 + [False] * 60)
    delta, (lo, hi) = paired_delta(base, edited, 500, 0)
    assert delta == pytest.approx(-10.0)
    assert lo < -10.0 < hi < 0
    assert paired_delta(base, base, 100, 0) == (0.0, (0.0, 0.0))


def test_neuron_ablation_of_every_unit_breaks_the_model(setup):
    model, processor, items, base = setup
    width = model.config.text_config.hidden_size
    common = dict(layer=1, means=np.zeros(width), base=base, n_resamples=100, seed=0)
    effects = neuron_ablation(
        model, processor, items, build_prompt, ranking=np.arange(width), k=width, **common
    )
    assert [e.name for e in effects][:2] == [
        f"zero top-{width} probe neurons (layer 1)",
        f"clamp top-{width} probe neurons (layer 1)",
    ]
    assert all(e.delta_pp < -30 for e in effects)  # the whole residual stream is gone
    assert all(e.delta_ci_pp[0] <= e.delta_pp <= e.delta_ci_pp[1] for e in effects)
    # hooks are removed afterwards
    assert not resolve_architecture(model).layers[1]._forward_hooks
    np.testing.assert_array_equal(correctness(model, processor, items, build_prompt), base)


def test_patch_masking_masks_the_chosen_patches(setup):
    model, processor, items, base = setup
    attention = np.tile(np.arange(16.0), (len(items), 1))  # patch 15 most attended
    none = patch_masking(
        model,
        processor,
        items,
        build_prompt,
        attention=attention,
        base=base,
        fraction=1 / 16,
        n_resamples=100,
        seed=0,
    )
    full = patch_masking(
        model,
        processor,
        items,
        build_prompt,
        attention=attention,
        base=base,
        fraction=1.0,
        n_resamples=100,
        seed=0,
    )
    assert none[0].name == "mask top 6% attended patches"
    assert full[0].accuracy == full[1].accuracy  # all patches either way
    assert full[0].delta_pp < none[0].delta_pp  # no image at all is worse than one corner
    assert not resolve_architecture(model).layers[0]._forward_pre_hooks
