import numpy as np
import pytest
import torch

from collectors.generate.collector import ReliabilityCollector
from collectors.model.layers import LayerResolutionError
from collectors.model.registry import (
    REGISTRY,
    ArchitectureSpec,
    ResolvedArchitecture,
    register,
    resolve_architecture,
    unregister,
)
from collectors.probe.linear import LinearProbe

FAMILIES = [
    "llava",
    "llava_next",
    "qwen2_vl",
    "qwen2_5_vl",
    "paligemma",
    "idefics3",
    "gemma3",
    "generic",
]


def _probe(width: int, layer: int, pooling: str = "last_prompt_token") -> LinearProbe:
    w = np.random.default_rng(0).normal(size=width)
    return LinearProbe(weight=w, bias=0.0, layer=layer, pooling=pooling)


@pytest.mark.parametrize("name", FAMILIES)
def test_every_family_resolves_its_decoder_layers(families, name):
    fam = families[name]
    arch = resolve_architecture(fam.model)
    assert arch.spec.name == name
    assert arch.spec.fusion == fam.fusion
    assert arch.layers_path == fam.layers_path
    n = fam.model.config.get_text_config().num_hidden_layers
    assert arch.n_layers == n and all(
        type(layer).__name__.endswith("DecoderLayer") for layer in arch.layers
    )
    # image placeholder positions come from the config's image token id
    ids = fam.inputs["input_ids"]
    assert int(sum((ids == t).sum() for t in arch.image_token_ids)) > 0


@pytest.mark.parametrize("name", FAMILIES)
def test_every_family_scores_the_prefill_once_and_pools_image_tokens(families, name):
    """The hook reads the same tensor as output_hidden_states, in each family."""
    fam = families[name]
    arch = resolve_architecture(fam.model)
    width = fam.model.config.get_text_config().hidden_size
    layer = arch.n_layers - 2
    image_probe = _probe(width, layer, "mean_image_tokens")

    def n_hooks() -> int:
        return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in fam.model.modules())

    with torch.no_grad():  # transformers 5 installs its own output-recording hooks on first use
        fam.model(**fam.inputs, output_hidden_states=True)
    before = n_hooks()
    with ReliabilityCollector(fam.model, image_probe, capture_states=True) as col:
        assert n_hooks() == before + 2
        with torch.no_grad():
            out = fam.model(**fam.inputs, output_hidden_states=True)
        (score,) = col.collect()
        hidden = out.hidden_states[layer + 1][0]  # [seq, hidden]; [0] is the embedding output
        is_image = torch.zeros(hidden.shape[0], dtype=torch.bool)
        for t in arch.image_token_ids:
            is_image |= fam.inputs["input_ids"][0] == t
        np.testing.assert_allclose(score.state, hidden[is_image].mean(0), rtol=1e-4, atol=1e-5)

        fam.model.generate(**fam.inputs, max_new_tokens=3, do_sample=False)
        assert len(col.collect()) == 1  # the prefill only, not each decode step
    assert col.hook_errors == 0 and n_hooks() == before  # no hook left behind


def test_default_layers_follow_the_papers_table_3_peaks(families):
    def default(name: str, depth: int) -> int:
        arch = resolve_architecture(families[name].model)
        return ResolvedArchitecture(
            arch.spec, "x", torch.nn.ModuleList([torch.nn.Identity()] * depth), ()
        ).default_layer

    assert default("llava", 32) == 24  # LLaVA-1.5-7B
    assert default("paligemma", 18) == 14  # PaliGemma-3B
    assert default("qwen2_vl", 28) == 27  # Qwen2-VL-7B
    assert default("llava", 4) == 3 and default("qwen2_vl", 3) == 2  # tiny: never past the end
    assert {REGISTRY[n].fusion for n in ("llava", "llava_next", "idefics3")} == {"late"}
    assert {REGISTRY[n].fusion for n in ("paligemma", "qwen2_vl", "qwen2_5_vl")} == {"early"}


def test_auto_layer_and_family_override(families, tiny_llava):
    col = ReliabilityCollector(tiny_llava, _probe(64, 0), layer="auto")
    assert col.layer == 3  # round(0.75 * 4)
    with pytest.raises(KeyError, match="unknown architecture family 'llava2'"):
        ReliabilityCollector(tiny_llava, _probe(64, 0), family="llava2")
    # forcing the generic spec on a LLaVA still finds its layers by module class
    generic = resolve_architecture(tiny_llava, family="generic")
    assert generic.layers_path == "model.language_model.layers" and generic.n_layers == 4


def test_register_rejects_duplicates_and_adds_families(families):
    with pytest.raises(ValueError, match="already registered"):
        register(ArchitectureSpec("llava", ("llava",), None, "late", 0.5, "test"))
    spec = ArchitectureSpec(
        "mistral3_test", ("mistral3",), "model.language_model.layers", "late", 0.5, "test"
    )
    try:
        register(spec)
        arch = resolve_architecture(families["generic"].model)
        assert arch.spec is spec and arch.default_layer == 2  # round(0.5 * 3)
    finally:
        assert unregister("mistral3_test") is spec
    assert resolve_architecture(families["generic"].model).spec.name == "generic"


def test_errors_name_what_is_wrong(tiny_llava):
    with pytest.raises(LayerResolutionError, match="has 4 decoder layers"):
        ReliabilityCollector(tiny_llava, _probe(64, 7))
    with pytest.raises(ValueError, match="has 7 weights but layers"):
        ReliabilityCollector(tiny_llava, _probe(7, 1))
    with pytest.raises(LayerResolutionError, match="no decoder layers"):
        resolve_architecture(torch.nn.Sequential(torch.nn.Linear(2, 2)))
    with pytest.raises(ValueError, match="fusion"):
        ArchitectureSpec("x", (), None, "middle", 0.5, "test")
