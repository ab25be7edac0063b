"""Signals, the comparison and the CLI on the bundled reference VLM (n = 100, K = 3)."""

import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from monitor.cli.app import app
from monitor.reference_vlm.build import build_prompt
from monitor.reference_vlm.model import answer_batch, load_reference_model
from monitor.reference_vlm.shapes import make_samples
from monitor.study.datasets import load_shapes
from monitor.study.output import write_all
from monitor.study.run import StudySettings, compare
from monitor.study.signals import collect_signals, final_norm

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def loaded():
    return load_reference_model()


@pytest.fixture(scope="module")
def signals(loaded):
    model, processor = loaded
    return collect_signals(model, processor, load_shapes(100, seed=5), build_prompt)


def test_signals_shapes_and_eager(loaded, signals):
    model, _ = loaded
    assert model.config._attn_implementation == "eager"  # set by the tool itself
    n_layers = model.config.text_config.num_hidden_layers
    assert signals.correct.shape == (100,)
    assert signals.attention_entropy.shape == signals.truth_margin.shape == (n_layers, 100)
    assert signals.states.shape == (n_layers, 100, model.config.text_config.hidden_size)
    assert ((signals.attention_entropy >= 0) & (signals.attention_entropy <= np.log(16))).all()
    assert (signals.components >= 0).all() and (signals.components <= 15).all()
    assert ((signals.confidence > 0) & (signals.confidence <= 1)).all()
    assert ((signals.logit_entropy >= 0) & (signals.logit_entropy <= np.log(27))).all()


def test_correctness_matches_greedy_generate(loaded, signals):
    model, processor = loaded
    samples = make_samples(100, seed=5)
    answers = answer_batch(model, processor, samples)
    assert signals.correct.tolist() == [a == s.answer for a, s in zip(answers, samples)]
    assert list(signals.predicted) == answers


def test_logit_lens_last_layer_is_the_model_output(loaded, signals):
    """Final norm applied: the last layer's lens margin is > 0 exactly when right (Eq. 3)."""
    assert ((signals.truth_margin[-1] > 0) == signals.correct).all()
    model, _ = loaded
    assert final_norm(model) is model.model.language_model.norm


def test_compare_and_outputs(loaded, tmp_path):
    model, processor = loaded
    items = load_shapes(100, seed=6) + load_shapes(100, seed=6, shift="all")
    settings = StudySettings(k=3, n_resamples=200, seed=0)
    result = compare(model, processor, items, build_prompt, settings)
    assert result.n_fit + result.n_test == 200 and result.fusion == "late"
    assert len(result.rows) == 8 and len(result.probe_auroc) == 4
    for row in result.rows:
        lo, hi = row.stats.auroc_ci
        assert lo <= row.stats.auroc <= hi and row.stats.n == result.n_test
    paths = write_all(result, tmp_path, "test")
    assert paths["chart"].stat().st_size > 1000 and paths["layers"].stat().st_size > 1000
    text = paths["markdown"].read_text()
    assert "Self-consistency (K = 3)" in text and "late fusion" in text
    assert len(paths["csv"].read_text().splitlines()) == 1 + 8 + 4 + 4
    assert [e.name for e in result.causal][-2:] == [
        "mask top 30% attended patches",
        "mask 30% random patches",
    ]
    assert len(result.causal) == 6 and "Causal checks" in text
    assert len(paths["causal"].read_text().splitlines()) == 1 + 6


def test_too_few_wrong_answers_is_clear(loaded):
    model, processor = loaded
    items = load_shapes(6, seed=0)
    with pytest.raises(ValueError, match="at least 4 correct and 4 wrong"):
        compare(model, processor, items, build_prompt, StudySettings(k=2, n_resamples=10))


def test_cli(tmp_path):
    out = tmp_path / "out"
    args = ["study", "--dataset", "shapes-shifted", "--shift", "all", "--n", "100"]
    opts = ["--k", "2", "--resamples", "100", "--no-causal", "--out", str(out)]
    result = CliRunner().invoke(app, args + opts)
    assert result.exit_code == 0, result.output
    assert "Hidden-state probe" in result.output and (out / "study.csv").is_file()
    assert "Causal checks" not in result.output and not (out / "causal.csv").exists()
    missing = tmp_path / "none.jsonl"
    bad = CliRunner().invoke(app, ["study", "--dataset", "jsonl", "--data", str(missing)])
    assert bad.exit_code == 2 and str(missing) in bad.output
    rows = tmp_path / "p.jsonl"
    rows.write_text(json.dumps({"question_id": 1, "image": "z.jpg", "text": "q", "label": "no"}))
    bad = CliRunner().invoke(
        app, ["study", "--dataset", "pope", "--data", str(rows), "--image-dir", str(tmp_path)]
    )
    assert bad.exit_code == 2 and str(tmp_path / "z.jpg") in bad.output
    assert CliRunner().invoke(app, ["study", "--dataset", "vqa"]).exit_code == 2
