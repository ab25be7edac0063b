"""Architecture registry: where each VLM family keeps its decoder layers and image tokens.

One :class:`ArchitectureSpec` per family, keyed by the ``model_type`` of the
model's config; a model whose type is not registered is handled by the generic
fallback, which finds the decoder layers by module class (see
:func:`collectors.model.layers.find_decoder_layers`). No family is special-cased in
code: adding one is one :func:`register` call.

Default probe layers come from the integration peaks of the layer-wise truth
margin in *Where Reliability Lives* (ICLR 2026 workshop), Table 3, as a
fraction of decoder depth (0-based layer index / number of layers):

==============  =====  =====  ========
family          peak   depth  fraction
==============  =====  =====  ========
LLaVA-1.5       24     32     0.750
PaliGemma       14     18     0.778
Qwen2-VL        27     28     0.964
==============  =====  =====  ========

The paper's indices are 0-based decoder-layer indices (its "layer 31" is the
last of LLaVA-1.5-7B's 32 layers). Families the paper did not measure inherit
the fraction of the closest measured family, and their spec says so
(``peak_source``). The index for a model of depth ``n`` is
``min(n - 1, round(fraction * n))``, which gives back 24, 14 and 27 on the
paper's models.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from torch import nn

from collectors.model.layers import LayerResolutionError, find_decoder_layers

LATE, EARLY = "late", "early"
_IMAGE_TOKEN_ATTRS = ("image_token_id", "image_token_index")


@dataclass(frozen=True)
class ArchitectureSpec:
    """How to read one VLM family.

    Parameters
    ----------
    name : str
        Registry key, e.g. ``"llava"``.
    model_types : tuple of str
        ``config.model_type`` values this spec serves.
    layers_path : str or None
        Dotted path of the ``ModuleList`` of language decoder layers, e.g.
        ``"model.language_model.layers"``; ``None`` finds them by module class.
    fusion : {"late", "early", "unknown"}
        Where vision meets language: late (LLaVA: projected vision features
        enter a causal language model) or early (PaliGemma, Qwen2-VL).
    peak_fraction : float
        Default probe layer as a fraction of decoder depth, in [0, 1].
    peak_source : str
        Where ``peak_fraction`` comes from (paper table, or the family it is
        inherited from).
    image_token_attrs : tuple of str
        Config attributes holding the id(s) of image (and video) placeholder
        tokens in ``input_ids``; the first ones present are used.
    """

    name: str
    model_types: tuple[str, ...]
    layers_path: str | None
    fusion: str
    peak_fraction: float
    peak_source: str
    image_token_attrs: tuple[str, ...] = _IMAGE_TOKEN_ATTRS

    def __post_init__(self) -> None:
        if self.fusion not in (LATE, EARLY, "unknown"):
            raise ValueError(f"fusion must be 'late', 'early' or 'unknown', got {self.fusion!r}")
        if not 0.0 <= self.peak_fraction <= 1.0:
            raise ValueError(f"peak_fraction must be in [0, 1], got {self.peak_fraction}")


@dataclass(frozen=True)
class ResolvedArchitecture:
    """A spec applied to one model instance.

    Attributes
    ----------
    spec : ArchitectureSpec
    layers_path : str
        Dotted path of the decoder-layer ``ModuleList`` actually found.
    layers : torch.nn.ModuleList
    image_token_ids : tuple of int
        Placeholder ids whose positions in ``input_ids`` hold image tokens; empty
        when the config names none.
    """

    spec: ArchitectureSpec
    layers_path: str
    layers: nn.ModuleList
    image_token_ids: tuple[int, ...]

    @property
    def n_layers(self) -> int:
        return len(self.layers)

    @property
    def default_layer(self) -> int:
        """Default probe layer index for this model's depth (see the module docstring)."""
        n = self.n_layers
        return min(n - 1, int(math.floor(self.spec.peak_fraction * n + 0.5)))

    def layer_index(self, index: int) -> int:
        """Normalise ``index`` (negative counts from the end) to ``[0, n_layers)``.

        Raises
        ------
        LayerResolutionError
            ``index`` outside ``[-n_layers, n_layers)``.
        """
        n = self.n_layers
        if not -n <= index < n:
            raise LayerResolutionError(
                f"target_layer {index} out of range: model has {n} decoder layers "
                f"at {self.layers_path} ({self.spec.name})"
            )
        return index % n


REGISTRY: dict[str, ArchitectureSpec] = {}
_BY_MODEL_TYPE: dict[str, ArchitectureSpec] = {}

GENERIC = ArchitectureSpec(
    name="generic",
    model_types=(),
    layers_path=None,
    fusion="unknown",
    peak_fraction=24 / 32,
    peak_source="inherited from LLaVA-1.5 (Table 3); set target_layer for this family",
)


def register(spec: ArchitectureSpec, *, replace: bool = False) -> ArchitectureSpec:
    """Add a family to the registry.

    Raises
    ------
    ValueError
        A spec with the same name or one of its ``model_types`` is registered
        already and ``replace`` is false.
    """
    if not replace:
        taken = [t for t in spec.model_types if t in _BY_MODEL_TYPE] + (
            [spec.name] if spec.name in REGISTRY else []
        )
        if taken:
            raise ValueError(f"already registered: {taken}")
    REGISTRY[spec.name] = spec
    for model_type in spec.model_types:
        _BY_MODEL_TYPE[model_type] = spec
    return spec


def unregister(name: str) -> ArchitectureSpec:
    """Remove a family from the registry and return its spec.

    Raises
    ------
    KeyError
        ``name`` is not registered.
    """
    spec = REGISTRY.pop(name)
    for model_type in spec.model_types:
        if _BY_MODEL_TYPE.get(model_type) is spec:
            del _BY_MODEL_TYPE[model_type]
    return spec


_LM = "model.language_model.layers"
for _spec in (
    GENERIC,
    ArchitectureSpec(
        "llava", ("llava",), _LM, LATE, 24 / 32, "Table 3: LLaVA-1.5-7B peak 24 of 32"
    ),
    ArchitectureSpec(
        "llava_next", ("llava_next",), _LM, LATE, 24 / 32, "inherited from LLaVA-1.5 (Table 3)"
    ),
    ArchitectureSpec(
        "qwen2_vl",
        ("qwen2_vl",),
        _LM,
        EARLY,
        27 / 28,
        "Table 3: Qwen2-VL-7B peak 27 of 28",
        ("image_token_id", "video_token_id"),
    ),
    ArchitectureSpec(
        "qwen2_5_vl",
        ("qwen2_5_vl",),
        _LM,
        EARLY,
        27 / 28,
        "inherited from Qwen2-VL (Table 3)",
        ("image_token_id", "video_token_id"),
    ),
    ArchitectureSpec(
        "paligemma", ("paligemma",), _LM, EARLY, 14 / 18, "Table 3: PaliGemma-3B peak 14 of 18"
    ),
    ArchitectureSpec(
        "idefics3",
        ("idefics3", "smolvlm"),
        "model.text_model.layers",
        LATE,
        24 / 32,
        "inherited from LLaVA-1.5 (Table 3): connector into a causal LM, like LLaVA",
    ),
    ArchitectureSpec(
        "gemma3",
        ("gemma3",),
        _LM,
        EARLY,
        14 / 18,
        "inherited from PaliGemma (Table 3): SigLIP tokens with bidirectional attention",
    ),
):
    register(_spec)


def _get_path(root: nn.Module, path: str) -> nn.Module | None:
    module: object = root
    for part in path.split("."):
        module = getattr(module, part, None)
        if module is None:
            return None
    return module if isinstance(module, nn.Module) else None


def _image_token_ids(config: object, attrs: Sequence[str]) -> tuple[int, ...]:
    ids: list[int] = []
    for attr in attrs:
        value = getattr(config, attr, None)
        if isinstance(value, int) and not isinstance(value, bool) and value not in ids:
            ids.append(value)  # image_token_id / image_token_index are often one id, two names
    return tuple(ids)


def spec_for(model: nn.Module, family: str | None = None) -> ArchitectureSpec:
    """The registered spec for ``model`` (by ``config.model_type``), or the generic fallback.

    Raises
    ------
    KeyError
        ``family`` is given and not registered.
    """
    if family is not None:
        if family not in REGISTRY:
            raise KeyError(f"unknown architecture family {family!r}; known: {sorted(REGISTRY)}")
        return REGISTRY[family]
    model_type = getattr(getattr(model, "config", None), "model_type", None)
    return _BY_MODEL_TYPE.get(model_type, GENERIC)


def resolve_architecture(model: nn.Module, family: str | None = None) -> ResolvedArchitecture:
    """Apply the registry to ``model``: decoder layers, image-token ids, default layer.

    Parameters
    ----------
    model : torch.nn.Module
        A transformers VLM (any ``*ForConditionalGeneration``).
    family : str, optional
        Registry key overriding detection by ``config.model_type``.

    Raises
    ------
    LayerResolutionError
        Neither the spec's path nor the module-class search finds decoder layers.
    KeyError
        ``family`` is not registered.
    """
    spec = spec_for(model, family)
    layers = _get_path(model, spec.layers_path) if spec.layers_path else None
    if isinstance(layers, nn.ModuleList) and len(layers) > 0:
        path = spec.layers_path or ""
    else:  # generic family, or a transformers version that moved the layers
        path, layers = find_decoder_layers(model)
    config = getattr(model, "config", None)
    return ResolvedArchitecture(
        spec=spec,
        layers_path=path,
        layers=layers,
        image_token_ids=_image_token_ids(config, spec.image_token_attrs),
    )
