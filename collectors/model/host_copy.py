"""Copy many small device tensors to the host in one transfer (the collectors' one sync)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch


def to_host(tensors: Sequence[torch.Tensor | None]) -> list[np.ndarray | None]:
    """Host float32 copies of ``tensors``, same shapes, through one device-to-host copy.

    Parameters
    ----------
    tensors : sequence of Tensor or None
        Any shapes, on any devices (moved to the first one's device to be joined);
        ``None`` entries come back as ``None``.

    Returns
    -------
    list of ndarray or None
        Aligned with ``tensors``; arrays are views of one host buffer.
    """
    present = [t for t in tensors if t is not None]
    if not present:
        return [None] * len(tensors)
    device = present[0].device
    flat = torch.cat([t.reshape(-1).float().to(device) for t in present]).cpu().numpy()
    out: list[np.ndarray | None] = []
    offset = 0
    for t in tensors:
        if t is None:
            out.append(None)
            continue
        out.append(flat[offset : offset + t.numel()].reshape(tuple(t.shape)))
        offset += t.numel()
    return out
