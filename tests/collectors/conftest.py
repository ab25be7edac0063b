"""Tiny random-weight VLMs of every registered family, built in the tests (no downloads).

Each family gets a model with 3-4 decoder layers of width 32-64 and one request's
inputs (``input_ids`` holding the image placeholder tokens the processor would
insert, pixel values of the right layout).
"""

from __future__ import annotations

import inspect
import logging
from dataclasses import dataclass
from typing import Any

import pytest
import torch
import transformers as T
from transformers import CLIPVisionConfig, LlamaConfig, LlavaConfig, LlavaForConditionalGeneration

IMAGE_TOKEN = 49
N_IMAGE_TOKENS = 16  # 32x32 px, patch 8
IMG = 60  # image placeholder id in the other families' tiny vocabularies (64 words)

logging.getLogger("transformers").setLevel(logging.ERROR)  # bos/eos id warnings on tiny vocabs


@pytest.fixture(scope="session")
def tiny_llava() -> LlavaForConditionalGeneration:
    """One shared tiny LLaVA (4 decoder layers, width 64, 16 image tokens); do not modify it."""
    return make_tiny_llava()


@pytest.fixture
def tiny_llava_factory():
    """``make_tiny_llava()``: a fresh, identical tiny LLaVA for tests that modify the model."""
    return make_tiny_llava


def make_tiny_llava() -> LlavaForConditionalGeneration:
    torch.manual_seed(0)
    vision = CLIPVisionConfig(
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        image_size=32,
        patch_size=8,
    )
    text = LlamaConfig(
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=4,
        num_attention_heads=2,
        num_key_value_heads=2,
        vocab_size=50,
        max_position_embeddings=128,
        pad_token_id=0,
    )
    config = LlavaConfig(
        vision_config=vision,
        text_config=text,
        image_token_index=IMAGE_TOKEN,
        vision_feature_layer=-1,
        vision_feature_select_strategy="default",
    )
    return LlavaForConditionalGeneration(config).eval()


@dataclass
class Family:
    """A tiny model of one family and one request for it."""

    name: str  # registry key expected
    model: torch.nn.Module
    inputs: dict[str, Any]
    layers_path: str
    fusion: str


_TEXT = dict(
    hidden_size=32,
    intermediate_size=64,
    num_hidden_layers=3,
    num_attention_heads=2,
    num_key_value_heads=1,
    vocab_size=64,
    max_position_embeddings=256,
    bos_token_id=1,
    eos_token_id=2,
    pad_token_id=0,
)
_SIGLIP = dict(
    hidden_size=32,
    intermediate_size=64,
    num_hidden_layers=1,
    num_attention_heads=2,
    image_size=16,
    patch_size=8,
)


def _ids(*parts: list[int]) -> torch.Tensor:
    return torch.tensor([[t for p in parts for t in p]])


def _qwen(config_cls: type, model_cls: type, vision: dict) -> tuple[torch.nn.Module, dict]:
    config = config_cls(
        text_config=dict(_TEXT, rope_scaling={"rope_type": "default", "mrope_section": [4, 2, 2]}),
        vision_config=vision,
        image_token_id=IMG,
        video_token_id=61,
        vision_start_token_id=62,
        vision_end_token_id=63,
    )
    ids = _ids([5, 62], [IMG] * 4, [63, 7, 8])  # 1x4x4 patches, merged 2x2 -> 4 image tokens
    inputs = dict(
        input_ids=ids,
        pixel_values=torch.randn(16, 3 * 2 * 4 * 4),
        image_grid_thw=torch.tensor([[1, 4, 4]]),
    )
    if "mm_token_type_ids" in inspect.signature(model_cls.forward).parameters:  # newer releases
        inputs["mm_token_type_ids"] = (ids == IMG).long()
    return model_cls(config).eval(), inputs


def _build_all() -> list[Family]:
    torch.manual_seed(0)
    lm = "model.language_model.layers"
    out = []
    qwen2 = _qwen(
        T.Qwen2VLConfig,
        T.Qwen2VLForConditionalGeneration,
        dict(depth=1, embed_dim=16, hidden_size=32, num_heads=2, mlp_ratio=2, patch_size=4),
    )
    out.append(Family("qwen2_vl", *qwen2, lm, "early"))
    qwen25 = _qwen(
        T.Qwen2_5_VLConfig,
        T.Qwen2_5_VLForConditionalGeneration,
        dict(
            depth=1,
            hidden_size=16,
            out_hidden_size=32,
            intermediate_size=32,
            num_heads=2,
            patch_size=4,
            window_size=8,
            fullatt_block_indexes=[0],
        ),
    )
    out.append(Family("qwen2_5_vl", *qwen25, lm, "early"))
    pali = T.PaliGemmaConfig(
        text_config=dict(_TEXT, head_dim=16, model_type="gemma"),
        vision_config=dict(_SIGLIP, model_type="siglip_vision_model"),
        image_token_index=IMG,
        projection_dim=32,
    )
    ids = _ids([IMG] * 4, [1, 7, 8])
    inputs = dict(input_ids=ids, pixel_values=torch.randn(1, 3, 16, 16))
    out.append(
        Family("paligemma", T.PaliGemmaForConditionalGeneration(pali).eval(), inputs, lm, "early")
    )
    idefics = T.Idefics3Config(
        text_config=dict(_TEXT, model_type="llama"),
        vision_config=dict(_SIGLIP, model_type="idefics3_vision"),
        image_token_id=IMG,
        scale_factor=1,
    )
    inputs = dict(input_ids=_ids([5], [IMG] * 4, [7, 8]), pixel_values=torch.randn(1, 1, 3, 16, 16))
    model = T.Idefics3ForConditionalGeneration(idefics).eval()
    out.append(Family("idefics3", model, inputs, "model.text_model.layers", "late"))
    gemma3 = T.Gemma3Config(
        text_config=dict(_TEXT, head_dim=16, sliding_window=8, model_type="gemma3_text"),
        vision_config=dict(_SIGLIP, model_type="siglip_vision_model"),
        image_token_index=IMG,
        mm_tokens_per_image=4,
        boi_token_index=61,
        eoi_token_index=62,
    )
    ids = _ids([5, 61], [IMG] * 4, [62, 7, 8])
    inputs = dict(
        input_ids=ids, pixel_values=torch.randn(1, 3, 16, 16), token_type_ids=(ids == IMG).long()
    )
    out.append(
        Family("gemma3", T.Gemma3ForConditionalGeneration(gemma3).eval(), inputs, lm, "early")
    )
    nxt = T.LlavaNextConfig(
        text_config=dict(_TEXT, model_type="llama"),
        vision_config=dict(_SIGLIP, model_type="clip_vision_model"),
        image_token_index=IMG,
        image_grid_pinpoints=[[16, 16]],
        vision_feature_layer=-1,
    )
    inputs = dict(
        input_ids=_ids([5], [IMG] * 10, [7, 8]),  # base 2x2 + one 2x2 crop with a newline per row
        pixel_values=torch.randn(1, 2, 3, 16, 16),
        image_sizes=torch.tensor([[16, 16]]),
    )
    out.append(
        Family("llava_next", T.LlavaNextForConditionalGeneration(nxt).eval(), inputs, lm, "late")
    )
    mistral3 = T.Mistral3Config(  # not registered: exercises the generic fallback
        text_config=dict(_TEXT, head_dim=16, model_type="mistral"),
        vision_config=dict(_SIGLIP, patch_size=4, head_dim=16, model_type="pixtral"),
        image_token_index=IMG,
        spatial_merge_size=2,
        vision_feature_layer=-1,
    )
    inputs = dict(
        input_ids=_ids([5], [IMG] * 4, [7, 8]),
        pixel_values=torch.randn(1, 3, 16, 16),
        image_sizes=torch.tensor([[16, 16]]),
    )
    out.append(
        Family(
            "generic", T.Mistral3ForConditionalGeneration(mistral3).eval(), inputs, lm, "unknown"
        )
    )
    return out


@pytest.fixture(scope="session")
def families(tiny_llava) -> dict[str, Family]:
    """Every registered family (plus the generic fallback) as a tiny model, keyed by name."""
    ids = torch.tensor([[IMAGE_TOKEN] * N_IMAGE_TOKENS + [3, 4, 5]])
    llava = Family(
        "llava",
        tiny_llava,
        dict(input_ids=ids, pixel_values=torch.randn(1, 3, 32, 32)),
        "model.language_model.layers",
        "late",
    )
    return {f.name: f for f in [llava, *_build_all()]}
