"""The reliability comparison of *Where Reliability Lives* (Table 6) on one model and dataset.

Signals come from one instrumented pass (:func:`monitor.study.signals.collect_signals`);
examples are split, stratified by correctness, into a fitting half and a test half.
Everything learned (probe weights, the probe's best layer, the truth margin's
best layer) is chosen on the fitting half; every reported statistic is on the
test half only. Self-consistency (Eq. 4) samples K answers per test example.

The truth margin (Eq. 3) reads the gold answer token, so it is an analysis
readout, not a deployable monitor; its best layer is chosen among all but the
final decoder layer, whose margin is positive exactly when the answer is right.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from sklearn.model_selection import train_test_split

from collectors.model.registry import resolve_architecture
from collectors.routing.self_consistency import SelfConsistency
from monitor.study.causal import Effect, neuron_ablation, patch_masking
from monitor.study.datasets import Item
from monitor.study.signals import Signals, collect_signals
from monitor.study.stats import SignalStats, signal_stats
from retrain.evaluate import auroc
from retrain.probes.estimators import L1SparseProbe, L2LogisticProbe
from retrain.probes.stacked import StackedProbe, last_layers


@dataclass(frozen=True)
class StudySettings:
    """Knobs of a study; defaults follow the paper (Section 4).

    Attributes
    ----------
    k, temperature, top_p : self-consistency samples and nucleus sampling (10, 0.7, 0.9)
    seed : int
        Seeds the split, the probes, the sampling and the bootstrap.
    n_resamples : int
        Bootstrap resamples for every interval.
    mass : float
        Top attention mass of Eq. 2.
    test_fraction : float
        Share of examples held out for the statistics.
    stack : int
        Layers of the stacked probe (the last ``stack``).
    batch_size, max_new_tokens : int
    causal : bool
        Run the causal checks (:mod:`monitor.study.causal`) on the test half.
    ablate_k : int
        Neurons ablated (top-k of the sparse probe, and k random).
    mask_fraction : float
        Share of image patches masked.
    """

    k: int = 10
    temperature: float = 0.7
    top_p: float = 0.9
    seed: int = 0
    n_resamples: int = 10_000
    mass: float = 0.5
    test_fraction: float = 0.5
    stack: int = 5
    batch_size: int = 64
    max_new_tokens: int = 4
    causal: bool = True
    ablate_k: int = 5
    mask_fraction: float = 0.3


@dataclass(frozen=True)
class Row:
    """One line of the table: method, group, inference cost, statistics on the test half."""

    method: str
    group: str
    cost: str
    stats: SignalStats


@dataclass(frozen=True)
class StudyResult:
    """Table rows, per-layer curves (index = decoder layer) and context.

    Attributes
    ----------
    rows : tuple of Row
    probe_auroc : tuple of SignalStats
        Hidden-state probe per layer, test half.
    margin_auroc : tuple of SignalStats
        Truth margin (Eq. 3) per layer, test half.
    margin_mean : ndarray of shape (n_layers, 2)
        Mean truth margin of wrong (column 0) and correct (column 1) test examples.
    probe_layer, margin_layer : int
        Layers chosen on the fitting half.
    fusion : str
        ``late`` / ``early`` / ``unknown`` from the architecture registry.
    accuracy : float
        Of the greedy answers over all examples.
    n_fit, n_test : int
    causal : tuple of Effect
        Causal checks on the test half (empty when switched off).
    """

    rows: tuple[Row, ...]
    probe_auroc: tuple[SignalStats, ...]
    margin_auroc: tuple[SignalStats, ...]
    margin_mean: np.ndarray
    probe_layer: int
    margin_layer: int
    fusion: str
    family: str
    accuracy: float
    n_fit: int
    n_test: int
    causal: tuple[Effect, ...] = ()


def _self_consistency(
    model: torch.nn.Module,
    processor: object,
    items: Sequence[Item],
    prompt: Callable[[str], str],
    settings: StudySettings,
) -> np.ndarray:
    """Majority share (Eq. 4) of K sampled answers per item, shape (n_items,)."""
    sc = SelfConsistency(
        k=settings.k,
        top_p=settings.top_p,
        temperature=settings.temperature,
        seed=settings.seed,
        max_new_tokens=settings.max_new_tokens,
    )
    tok = processor.tokenizer
    shares: list[float] = []
    for start in range(0, len(items), settings.batch_size):
        batch = items[start : start + settings.batch_size]
        enc = processor(
            images=[it.image for it in batch],
            text=[prompt(it.question) for it in batch],
            return_tensors="pt",
            padding=True,
        ).to(next(model.parameters()).device)
        out = sc.score(model, enc, lambda ids: tok.batch_decode(ids, skip_special_tokens=True))
        shares += [c.share for c in out]
    return np.asarray(shares)


def _causal(
    model: torch.nn.Module,
    processor: object,
    items: Sequence[Item],
    prompt: Callable[[str], str],
    sig: Signals,
    fit: np.ndarray,
    test: np.ndarray,
    layer: int,
    s: StudySettings,
) -> list[Effect]:
    """Neuron ablation at ``layer`` and patch masking, on the test half."""
    states = sig.states[layer, fit]  # [n_fit, hidden]
    sparse = L1SparseProbe(seed=s.seed).fit(states, sig.correct[fit])
    ranking = np.argsort(-np.abs(sparse.coef_ * states.std(0)), kind="stable")
    held = [items[i] for i in test]
    base = sig.correct[test]
    common = dict(base=base, n_resamples=s.n_resamples, seed=s.seed)
    k = min(s.ablate_k, states.shape[1])
    effects = neuron_ablation(
        model,
        processor,
        held,
        prompt,
        layer=layer,
        ranking=ranking,
        means=states.mean(0),
        k=k,
        **common,
    )
    return effects + patch_masking(
        model,
        processor,
        held,
        prompt,
        attention=sig.attention[test],
        fraction=s.mask_fraction,
        **common,
    )


def _split(correct: np.ndarray, settings: StudySettings) -> tuple[np.ndarray, np.ndarray]:
    counts = np.bincount(correct.astype(int), minlength=2)
    if counts.min() < 4:
        raise ValueError(
            f"need at least 4 correct and 4 wrong answers to study reliability, "
            f"got {counts[1]} correct and {counts[0]} wrong"
        )
    idx = np.arange(len(correct))
    return train_test_split(
        idx, test_size=settings.test_fraction, stratify=correct, random_state=settings.seed
    )


def compare(
    model: torch.nn.Module,
    processor: object,
    items: Sequence[Item],
    prompt: Callable[[str], str],
    settings: StudySettings | None = None,
) -> StudyResult:
    """Run the whole comparison.

    Parameters
    ----------
    model, processor : a transformers VLM and its processor (tokenizer padding left)
    items : sequence of Item
    prompt : callable
        Question -> prompt with the image placeholder.
    settings : StudySettings, optional

    Raises
    ------
    ValueError
        Too few correct or wrong answers to split (see :func:`_split`).
    """
    s = settings or StudySettings()
    sig: Signals = collect_signals(
        model, processor, items, prompt, mass=s.mass, batch_size=s.batch_size
    )
    fit, test = _split(sig.correct, s)
    y_fit, y = sig.correct[fit], sig.correct[test]
    n_layers = sig.states.shape[0]

    def st(score: np.ndarray) -> SignalStats:
        return signal_stats(score, y, n_resamples=s.n_resamples, seed=s.seed)

    probes = [L2LogisticProbe(seed=s.seed).fit(sig.states[i, fit], y_fit) for i in range(n_layers)]
    probe_layer = int(np.argmax([max(p.cv_auroc_.values()) for p in probes]))
    probe_auroc = tuple(st(p.decision_function(sig.states[i, test])) for i, p in enumerate(probes))
    # the final layer's margin is > 0 exactly when the answer is right: not a readout
    lens = sig.truth_margin[: max(1, n_layers - 1)]
    margin_layer = int(np.nanargmax([auroc(m[fit], y_fit) for m in lens]))
    stacked = StackedProbe(
        last_layers(n_layers, min(s.stack, n_layers)), L2LogisticProbe(seed=s.seed)
    )
    stacked.fit({i: sig.states[i, fit] for i in stacked.layers}, y_fit)
    stacked_score = stacked.decision_function({i: sig.states[i, test] for i in stacked.layers})
    share = _self_consistency(model, processor, [items[i] for i in test], prompt, s)
    single, internal = "1 pass", "1 pass"
    rows = (
        Row(
            "Spatial attention entropy (Eq. 1, -H, layer mean)",
            "single-pass baseline",
            single,
            st(-sig.attention_entropy[:, test].mean(0)),
        ),
        Row(
            "Secondary components (Eq. 2, -C, layer mean)",
            "single-pass baseline",
            single,
            st(-sig.components[:, test].mean(0)),
        ),
        Row("Logit entropy (-H)", "single-pass baseline", single, st(-sig.logit_entropy[test])),
        Row("Output confidence", "single-pass baseline", single, st(sig.confidence[test])),
        Row(
            f"Truth margin alone (Eq. 3, layer {margin_layer})",
            "internal readout",
            internal,
            st(sig.truth_margin[margin_layer, test]),
        ),
        Row(
            f"Hidden-state probe (layer {probe_layer})",
            "internal readout",
            internal,
            probe_auroc[probe_layer],
        ),
        Row(
            f"Stacked probe (layers {stacked.layers[0]}-{stacked.layers[-1]})",
            "internal readout",
            internal,
            st(stacked_score),
        ),
        Row(f"Self-consistency (K = {s.k})", "behavioural", f"{s.k} samples", st(share)),
    )
    margins = sig.truth_margin[:, test]
    causal = (
        _causal(model, processor, items, prompt, sig, fit, test, probe_layer, s) if s.causal else ()
    )
    arch = resolve_architecture(model)
    return StudyResult(
        rows=rows,
        probe_auroc=probe_auroc,
        margin_auroc=tuple(st(m) for m in margins),
        margin_mean=np.stack([margins[:, ~y].mean(1), margins[:, y].mean(1)], 1),
        probe_layer=probe_layer,
        margin_layer=margin_layer,
        fusion=arch.spec.fusion,
        family=arch.spec.name,
        accuracy=float(sig.correct.mean()),
        n_fit=int(len(fit)),
        n_test=int(len(test)),
        causal=tuple(causal),
    )
