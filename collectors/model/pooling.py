"""Pool one decoder layer's hidden states over a request's tokens, row by row.

Three poolings, each computed so that a row of a padded batch (left or right
padding) pools exactly as the same request would alone:

- ``last_prompt_token``: the hidden state at the last position whose attention
  mask is 1 (the token that predicts the first answer token);
- ``mean_prompt_tokens``: the mean over positions whose attention mask is 1;
- ``mean_image_tokens``: the mean over positions holding an image placeholder
  token (``input_ids == image_token_id``), i.e. the visual tokens after fusion.

All functions stay on the hidden state's device and never synchronise with
the host (no ``.item()``, no Python branching on tensor values).
"""

from __future__ import annotations

import torch

POOLINGS = ("last_prompt_token", "mean_prompt_tokens", "mean_image_tokens")


class PoolingError(ValueError):
    """The inputs needed by a pooling are missing or have the wrong shape."""


def image_token_mask(input_ids: torch.Tensor, image_token_ids: tuple[int, ...]) -> torch.Tensor:
    """Positions holding an image (or video) placeholder token.

    Parameters
    ----------
    input_ids : Tensor of shape (batch, seq), integer
    image_token_ids : tuple of int
        From :class:`collectors.model.registry.ResolvedArchitecture`.

    Returns
    -------
    Tensor of shape (batch, seq), bool, on ``input_ids``'s device.

    Raises
    ------
    PoolingError
        ``image_token_ids`` is empty (the model's config names no image token).
    """
    if not image_token_ids:
        raise PoolingError("the model's config names no image token id; cannot find image tokens")
    mask = input_ids == image_token_ids[0]
    for token in image_token_ids[1:]:
        mask |= input_ids == token
    return mask


def _masked_mean(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    weights = mask.to(device=hidden.device, dtype=hidden.dtype).unsqueeze(-1)  # [batch, seq, 1]
    return (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp_min(1)


def pool_hidden(
    hidden: torch.Tensor,
    mask: torch.Tensor | None,
    pooling: str,
    image_mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """Pool a decoder layer's output over each row's tokens.

    Parameters
    ----------
    hidden : Tensor of shape (batch, seq, hidden_dim)
        The layer's output (the residual stream after the layer).
    mask : Tensor of shape (batch, seq) or None
        Attention mask (1 = real token, 0 = padding); ``None`` means no padding.
    pooling : {"last_prompt_token", "mean_prompt_tokens", "mean_image_tokens"}
    image_mask : Tensor of shape (batch, seq), bool, optional
        Image-token positions (:func:`image_token_mask`); required for
        ``"mean_image_tokens"``. A row without image tokens pools to zeros.

    Returns
    -------
    Tensor of shape (batch, hidden_dim), on ``hidden``'s device and dtype.

    Raises
    ------
    PoolingError
        Unknown pooling, or ``"mean_image_tokens"`` without a matching ``image_mask``.
    """
    batch, seq, _ = hidden.shape
    if pooling == "last_prompt_token":
        if mask is None:
            return hidden[:, -1, :]
        mask = mask.to(hidden.device)
        positions = torch.arange(seq, device=hidden.device).expand(batch, seq)
        last = (positions * (mask > 0)).argmax(dim=1)  # [batch]: last real token, any padding side
        return hidden[torch.arange(batch, device=hidden.device), last]
    if pooling == "mean_prompt_tokens":
        return hidden.mean(dim=1) if mask is None else _masked_mean(hidden, mask > 0)
    if pooling == "mean_image_tokens":
        if image_mask is None or tuple(image_mask.shape) != (batch, seq):
            got = None if image_mask is None else tuple(image_mask.shape)
            raise PoolingError(
                f"mean_image_tokens needs input_ids of shape {(batch, seq)} to find image "
                f"tokens, got {got} (was the model called with inputs_embeds?)"
            )
        return _masked_mean(hidden, image_mask)
    raise PoolingError(f"unknown pooling {pooling!r}; expected one of {POOLINGS}")
