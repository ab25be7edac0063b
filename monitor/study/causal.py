"""Causal checks (*Where Reliability Lives*, Sections 5.1 and 5.3).

- Neuron ablation: the top-k hidden units of an L1-sparse probe at a decoder
  layer (ranked by standardised |weight|) are zeroed, or clamped to their mean
  over the fitting half, at every position of that layer's output; the same is
  done to k units drawn at random (seeded) for comparison.
- Patch masking: the residual stream entering the first decoder layer is zeroed
  at the image tokens of the top ``fraction`` (30 %) most attended patches of each
  example (head- and layer-averaged attention of the last prompt position, the
  Eq. 1 distribution), against the same number of random patches.

Each check reports the accuracy change against the unedited model with a paired
bootstrap 95 % interval over examples.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch

from collectors.model.registry import resolve_architecture
from detectors.bootstrap import percentile_interval, resample_indices
from monitor.study.datasets import Item
from monitor.study.signals import gold_token


@dataclass(frozen=True)
class Effect:
    """Accuracy change of one intervention, percentage points, with a paired 95 % interval."""

    name: str
    accuracy: float
    delta_pp: float
    delta_ci_pp: tuple[float, float]


def paired_delta(
    base: np.ndarray, edited: np.ndarray, n_resamples: int, seed: int
) -> tuple[float, tuple[float, float]]:
    """Mean of ``edited - base`` correctness (pp) and its paired percentile-bootstrap interval.

    Parameters
    ----------
    base, edited : ndarray of shape (n_samples,), bool
        Correctness of the same examples without and with the intervention.
    """
    d = edited.astype(np.float64) - base.astype(np.float64)
    lo, hi = percentile_interval(d[resample_indices(len(d), n_resamples, seed)].mean(1))
    return 100 * float(d.mean()), (100 * float(lo), 100 * float(hi))


@contextmanager
def _edit_layer(layer: torch.nn.Module, units: np.ndarray, values: torch.Tensor):
    idx = torch.as_tensor(units, dtype=torch.long)

    def hook(_module: object, _args: object, out: object) -> object:
        h = out[0] if isinstance(out, tuple) else out  # [batch, seq, hidden]
        h = h.clone()
        h[..., idx] = values.to(h.dtype)
        return (h, *out[1:]) if isinstance(out, tuple) else h

    handle = layer.register_forward_hook(hook)
    try:
        yield
    finally:
        handle.remove()


@torch.inference_mode()
def correctness(
    model: torch.nn.Module,
    processor: object,
    items: Sequence[Item],
    prompt: Callable[[str], str],
    *,
    patch_mask: np.ndarray | None = None,
    batch_size: int = 64,
) -> np.ndarray:
    """Whether the emitted first token is the gold token, per item, shape (n_items,).

    Parameters
    ----------
    patch_mask : ndarray of shape (n_items, n_patches), bool, optional
        Image patches whose tokens are zeroed at the input of the first decoder layer.
    """
    arch = resolve_architecture(model)
    ids = torch.tensor(arch.image_token_ids)
    out: list[np.ndarray] = []
    for start in range(0, len(items), batch_size):
        batch = items[start : start + batch_size]
        enc = processor(
            images=[it.image for it in batch],
            text=[prompt(it.question) for it in batch],
            return_tensors="pt",
            padding=True,
        )
        gold = np.array([gold_token(processor.tokenizer, it.answer) for it in batch])
        handle = None
        if patch_mask is not None:
            image = torch.isin(enc["input_ids"], ids)  # [batch, seq]
            drop = torch.zeros_like(image)
            drop[image] = torch.as_tensor(patch_mask[start : start + len(batch)]).reshape(-1)

            def pre(_module: object, args: tuple, kwargs: dict, drop: torch.Tensor = drop):
                h = (args[0] if args else kwargs["hidden_states"]).clone()  # [batch, seq, hidden]
                h[drop] = 0
                return ((h, *args[1:]), kwargs) if args else (args, {**kwargs, "hidden_states": h})

            handle = arch.layers[0].register_forward_pre_hook(pre, with_kwargs=True)
        try:
            logits = model(**enc.to(next(model.parameters()).device)).logits[:, -1]
        finally:
            if handle is not None:
                handle.remove()
        out.append(logits.argmax(-1).cpu().numpy() == gold)
    return np.concatenate(out)


def neuron_ablation(
    model: torch.nn.Module,
    processor: object,
    items: Sequence[Item],
    prompt: Callable[[str], str],
    *,
    layer: int,
    ranking: np.ndarray,
    means: np.ndarray,
    k: int,
    base: np.ndarray,
    n_resamples: int,
    seed: int,
) -> list[Effect]:
    """Zero and clamp ablation of the top-``k`` ranked units vs ``k`` random units.

    Parameters
    ----------
    layer : int
        Decoder layer whose output is edited.
    ranking : ndarray of shape (hidden_dim,), int
        Unit indices, most important first (from the sparse probe).
    means : ndarray of shape (hidden_dim,)
        Per-unit mean last-token activation on the fitting half (clamp values).
    base : ndarray of shape (n_items,), bool
        Correctness of the unedited model on ``items``.
    """
    target = resolve_architecture(model).layers[layer]
    rand = np.random.default_rng(seed).choice(len(ranking), size=k, replace=False)
    effects = []
    for label, units in ((f"top-{k} probe", ranking[:k]), (f"random {k}", rand)):
        for mode in ("zero", "clamp"):
            values = torch.zeros(k) if mode == "zero" else torch.as_tensor(means[units]).float()
            with _edit_layer(target, units, values):
                edited = correctness(model, processor, items, prompt)
            delta, ci = paired_delta(base, edited, n_resamples, seed)
            name = f"{mode} {label} neurons (layer {layer})"
            effects.append(Effect(name, float(edited.mean()), delta, ci))
    return effects


def patch_masking(
    model: torch.nn.Module,
    processor: object,
    items: Sequence[Item],
    prompt: Callable[[str], str],
    *,
    attention: np.ndarray,
    base: np.ndarray,
    fraction: float = 0.3,
    n_resamples: int,
    seed: int,
) -> list[Effect]:
    """Mask the top ``fraction`` attended patches vs as many random patches.

    Parameters
    ----------
    attention : ndarray of shape (n_items, n_patches)
        Attention over patches per item (layer- and head-averaged).
    """
    n, p = attention.shape
    m = max(1, int(round(fraction * p)))
    top = np.zeros((n, p), bool)
    np.put_along_axis(top, np.argsort(-attention, 1, kind="stable")[:, :m], True, 1)
    rng = np.random.default_rng(seed)
    rand = np.zeros((n, p), bool)
    np.put_along_axis(rand, np.argsort(rng.random((n, p)), 1)[:, :m], True, 1)
    effects = []
    for name, mask in (
        (f"mask top {fraction:.0%} attended patches", top),
        (f"mask {fraction:.0%} random patches", rand),
    ):
        edited = correctness(model, processor, items, prompt, patch_mask=mask)
        delta, ci = paired_delta(base, edited, n_resamples, seed)
        effects.append(Effect(name, float(edited.mean()), delta, ci))
    return effects
