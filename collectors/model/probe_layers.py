"""Which decoder layers a probe reads on a given model, and whether a new probe fits them.

Engine-neutral: the transformers collector and any other engine front resolve
layers the same way, from the architecture registry and the probe's metadata.
"""

from __future__ import annotations

from typing import Any

from collectors.probe.linear import LinearProbe


def probe_layers(
    architecture: Any, probe: LinearProbe, layer: int | str | None, width: int | None
) -> tuple[int, ...]:
    """Normalised decoder-layer indices the probe reads, in its concatenation order.

    Parameters
    ----------
    architecture : collectors.model.registry.ResolvedArchitecture
    probe : LinearProbe
    layer : int, "auto" or None
        Overrides ``probe.layer`` (not for stacked probes); ``"auto"`` is the
        family's default (the paper's Table 3 peak).
    width : int or None
        The model's ``hidden_size``, when known, to check the probe's width.

    Raises
    ------
    LayerResolutionError
        An index out of range.
    ValueError
        ``layer`` given with a stacked probe, or the probe's width does not match
        ``len(layers) * width``.
    """
    if layer is not None and probe.layers is not None and len(probe.layers) > 1:
        raise ValueError(f"layer= cannot override the layers {probe.layers} of a stacked probe")
    wanted = probe.read_layers if layer is None else (layer,)
    wanted = tuple(architecture.default_layer if i == "auto" else int(i) for i in wanted)
    layers = tuple(architecture.layer_index(i) for i in wanted)
    if width is not None and probe.hidden_dim != width * len(layers):
        raise ValueError(
            f"probe {probe.version!r} has {probe.hidden_dim} weights but layers {layers} "
            f"give {width * len(layers)} features ({len(layers)} x hidden_size {width})"
        )
    return layers


def check_swap(
    architecture: Any,
    serving: LinearProbe,
    layers: tuple[int, ...],
    new: LinearProbe,
    layer_overridden: bool,
) -> None:
    """Refuse a hot-swapped probe that reads other layers, another pooling or width.

    Raises
    ------
    ValueError
        Naming both probes' layers, pooling and width.
    """
    new_layers = (
        layers
        if layer_overridden and new.layers is None
        else tuple(architecture.layer_index(i) for i in new.read_layers)
    )
    if (new_layers, new.pooling, new.hidden_dim) != (layers, serving.pooling, serving.hidden_dim):
        raise ValueError(
            f"probe {new.version!r} reads layers {new_layers} ({new.pooling}, "
            f"{new.hidden_dim} features); this collector hooks {layers} "
            f"({serving.pooling}, {serving.hidden_dim}): restart to change them"
        )
