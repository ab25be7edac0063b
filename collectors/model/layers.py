"""Find the decoder layers of a HuggingFace vision-language model.

Layers are found by module class, not by attribute path: the path moved in
transformers 4.52 (``model.language_model.model.layers`` became
``model.model.language_model.layers`` for LLaVA) and differs per family
(``model.model.text_model.layers`` for Idefics3 / SmolVLM). A decoder layer is
a module whose class name ends in ``DecoderLayer``; the vision tower's
``*EncoderLayer`` / ``*VisionBlock`` modules never match.
"""

from __future__ import annotations

from torch import nn


class LayerResolutionError(LookupError):
    """No decoder layers were found, or the requested index is out of range."""


def find_decoder_layers(model: nn.Module) -> tuple[str, nn.ModuleList]:
    """Return the dotted path and the ``ModuleList`` holding the language decoder layers.

    Parameters
    ----------
    model : torch.nn.Module
        A transformers model such as ``LlavaForConditionalGeneration``.

    Returns
    -------
    path : str
        Dotted module path, e.g. ``"model.language_model.layers"``.
    layers : torch.nn.ModuleList
        The decoder layers, in order.

    Raises
    ------
    LayerResolutionError
        No ``ModuleList`` of ``*DecoderLayer`` modules exists in ``model``.
    """
    best: tuple[str, nn.ModuleList] | None = None
    for name, module in model.named_modules():
        if not isinstance(module, nn.ModuleList) or len(module) == 0:
            continue
        if all(type(child).__name__.endswith("DecoderLayer") for child in module):
            if best is None or len(module) > len(best[1]):
                best = (name, module)
    if best is None:
        raise LayerResolutionError(
            f"no decoder layers (modules named '*DecoderLayer') found in {type(model).__name__}"
        )
    return best


def resolve_layer(model: nn.Module, index: int) -> tuple[str, nn.Module]:
    """Return the dotted path and module of decoder layer ``index`` (negative counts from the end).

    Raises
    ------
    LayerResolutionError
        No decoder layers, or ``index`` outside ``[-n_layers, n_layers)``.
    """
    path, layers = find_decoder_layers(model)
    n = len(layers)
    if not -n <= index < n:
        raise LayerResolutionError(
            f"target_layer {index} out of range: {type(model).__name__} has {n} decoder layers"
        )
    index %= n
    return f"{path}.{index}", layers[index]
