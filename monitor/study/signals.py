"""Per-example reliability signals from one instrumented forward pass.

One prefill pass with eager attention (set here: fused kernels return no
attention weights) gives, at the last prompt position (the position that
predicts the answer token):

- output confidence: probability of the emitted (argmax) token;
- logit entropy of the next-token distribution, nats;
- per decoder layer, the head-averaged attention from that position to the image
  patches, summarised by Eq. 1 (spatial entropy) and Eq. 2 (secondary components)
  of *Where Reliability Lives* (see :mod:`monitor.study.attention`);
- per decoder layer, the logit-lens truth margin (Eq. 3):
  ``m_l = z_l[t*] - max_{v != t*} z_l[v]`` with ``z_l = W_U norm(h_l)``, the final
  norm applied to the residual stream ``h_l`` (last-token pooling);
- per decoder layer, the last-token hidden state, for the probes.

Correctness follows the paper's reference-token protocol (Section 4): the
answer is right when the emitted first token is the first content token ``t*``
of the gold answer.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from collectors.model.registry import resolve_architecture
from monitor.study.attention import patch_grid, secondary_components, spatial_entropy
from monitor.study.datasets import Item


@dataclass(frozen=True)
class Signals:
    """Signals of ``n`` examples from a model with ``L`` decoder layers.

    Attributes
    ----------
    correct : ndarray of shape (n,), bool
    predicted : tuple of str, length n
        The emitted first token, decoded.
    confidence : ndarray of shape (n,)
        Probability of the emitted token.
    logit_entropy : ndarray of shape (n,)
        Nats.
    attention_entropy : ndarray of shape (L, n)
        Eq. 1, nats.
    components : ndarray of shape (L, n), int
        Eq. 2, secondary-component count.
    attention : ndarray of shape (n, n_patches)
        Attention over image patches averaged over heads and layers (rows sum to < 1).
    truth_margin : ndarray of shape (L, n)
        Eq. 3, logits.
    states : ndarray of shape (L, n, hidden_dim)
        Last-token residual stream after each decoder layer.
    """

    correct: np.ndarray
    predicted: tuple[str, ...]
    confidence: np.ndarray
    logit_entropy: np.ndarray
    attention_entropy: np.ndarray
    components: np.ndarray
    attention: np.ndarray
    truth_margin: np.ndarray
    states: np.ndarray


def gold_token(tokenizer: object, answer: str) -> int:
    """First content token of ``answer`` (no special or whitespace-only tokens).

    Raises
    ------
    ValueError
        ``answer`` has no content token.
    """
    ids = tokenizer(answer.strip(), add_special_tokens=False)["input_ids"]
    special = set(getattr(tokenizer, "all_special_ids", []))
    for i in ids:
        if i not in special and tokenizer.decode([i]).strip():
            return int(i)
    raise ValueError(f"answer {answer!r} has no content token")


def final_norm(model: torch.nn.Module) -> torch.nn.Module:
    """The language model's final norm (applied before the unembedding).

    Raises
    ------
    AttributeError
        No ``norm`` on the decoder.
    """
    inner = getattr(model, "model", model)
    for name in ("language_model", "text_model"):
        norm = getattr(getattr(inner, name, None), "norm", None)
        if norm is not None:
            return norm
    return model.get_decoder().norm


def use_eager_attention(model: torch.nn.Module) -> None:
    """Switch ``model`` to eager attention so attention weights can be returned."""
    model.set_attn_implementation("eager")


@torch.inference_mode()
def collect_signals(
    model: torch.nn.Module,
    processor: object,
    items: Sequence[Item],
    prompt: Callable[[str], str],
    *,
    mass: float = 0.5,
    batch_size: int = 64,
) -> Signals:
    """Run the instrumented pass over ``items``.

    Parameters
    ----------
    model : transformers VLM (e.g. ``LlavaForConditionalGeneration``)
        Switched to eager attention by this function.
    processor : its processor; the tokenizer must pad on the left.
    items : sequence of Item
    prompt : callable
        Question -> full prompt with the image placeholder.
    mass : float
        Top attention mass of Eq. 2.
    batch_size : int

    Raises
    ------
    ValueError
        ``items`` empty, or the inputs hold no image tokens.
    """
    if not items:
        raise ValueError("no items to study")
    use_eager_attention(model)
    arch = resolve_architecture(model)
    norm, unembed = final_norm(model), model.get_output_embeddings()
    tok = processor.tokenizer
    device = next(model.parameters()).device
    captured: list[torch.Tensor] = []

    def hook(_module: object, _args: object, out: object) -> None:
        h = out[0] if isinstance(out, tuple) else out  # [batch, seq, hidden]
        captured.append(h[:, -1].detach())

    parts: dict[str, list] = {k: [] for k in ("ok", "pred", "conf", "ent", "attn", "margin", "h")}
    handles = [layer.register_forward_hook(hook) for layer in arch.layers]
    try:
        for start in range(0, len(items), batch_size):
            batch = items[start : start + batch_size]
            enc = processor(
                images=[it.image for it in batch],
                text=[prompt(it.question) for it in batch],
                return_tensors="pt",
                padding=True,
            ).to(device)
            gold = torch.tensor([gold_token(tok, it.answer) for it in batch], device=device)
            captured.clear()
            out = model(**enc, output_attentions=True)
            logits = out.logits[:, -1].float()  # [batch, vocab]
            logp = torch.log_softmax(logits, -1)
            pred = logits.argmax(-1)
            parts["ok"].append((pred == gold).cpu().numpy())
            parts["pred"] += [tok.decode([int(t)]).strip() for t in pred]
            parts["conf"].append(logp.exp().gather(1, pred[:, None])[:, 0].cpu().numpy())
            parts["ent"].append(-(logp.exp() * logp).sum(-1).cpu().numpy())
            image = torch.isin(enc["input_ids"], torch.tensor(arch.image_token_ids, device=device))
            if not image.any(1).all():
                raise ValueError("an input holds no image tokens: check the prompt template")
            n_patches = int(image[0].sum())
            # attention of the last position to image patches, head-averaged: [L, batch, patches]
            rows = torch.stack([a[:, :, -1].float().mean(1) for a in out.attentions])
            parts["attn"].append(rows[:, image].reshape(len(rows), len(batch), n_patches).cpu())
            hs = torch.stack(captured)  # [L, batch, hidden]
            z = unembed(norm(hs)).float()  # [L, batch, vocab], logit lens with the final norm
            g = gold[None, :, None].expand(len(z), -1, 1)
            true = z.gather(2, g)[..., 0]
            other = z.scatter(2, g, float("-inf")).amax(-1)
            parts["margin"].append((true - other).cpu().numpy())
            parts["h"].append(hs.float().cpu().numpy())
    finally:
        for h in handles:
            h.remove()
    attn = torch.cat(parts["attn"], 1).numpy()  # [L, n, patches]
    grid = patch_grid(attn.shape[2])
    return Signals(
        correct=np.concatenate(parts["ok"]),
        predicted=tuple(parts["pred"]),
        confidence=np.concatenate(parts["conf"]),
        logit_entropy=np.concatenate(parts["ent"]),
        attention_entropy=np.stack([spatial_entropy(a) for a in attn]),
        components=np.stack([secondary_components(a, grid, mass) for a in attn]),
        attention=attn.mean(0),
        truth_margin=np.concatenate(parts["margin"], 1),
        states=np.concatenate(parts["h"], 1),
    )
