"""Prefill detection that holds whatever keywords ``generate`` passes to the model."""

import inspect

import numpy as np
import pytest
import torch
from transformers import DynamicCache, GenerationMixin

from collectors.generate.collector import POOLINGS, ReliabilityCollector
from collectors.generate.prefill import DECODE, PREFILL, UNSCORED, PrefillDetector, cached_tokens
from collectors.probe.linear import LinearProbe

IMAGE_TOKEN, N_IMAGE_TOKENS = 49, 16  # conftest.tiny_llava
# what generate calls the KV cache it is handed: "cache" from transformers 5.24
_CACHE_KEYWORD = (
    "cache"
    if "cache" in inspect.signature(GenerationMixin.prepare_inputs_for_generation).parameters
    else "past_key_values"
)


def _probe(pooling: str = "last_prompt_token") -> LinearProbe:
    w = np.random.default_rng(0).normal(size=64)
    return LinearProbe(weight=w, bias=0.1, temperature=1.5, layer=2, pooling=pooling)


def _left_padded(rows: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(r) for r in rows)
    ids = torch.tensor([[0] * (width - len(r)) + r for r in rows])
    mask = torch.tensor([[0] * (width - len(r)) + [1] * len(r) for r in rows])
    return ids, mask


def _filled_cache(tokens: int) -> DynamicCache:
    cache = DynamicCache()
    cache.update(torch.zeros(1, 2, tokens, 8), torch.zeros(1, 2, tokens, 8), 0)
    return cache


@pytest.mark.parametrize("name", ["past_key_values", "cache", "kv", "something_new"])
def test_a_filled_cache_means_decode_whatever_its_keyword(name):
    detector = PrefillDetector()
    ids = torch.ones(1, 1, dtype=torch.long)
    assert detector.on_forward((), {"input_ids": ids, name: _filled_cache(5)}).kind == DECODE
    assert detector.on_forward((), {"input_ids": ids, name: DynamicCache()}).kind == PREFILL
    assert cached_tokens((ids, _filled_cache(3)), {}) == 3  # positional too


def test_inside_generate_only_the_first_forward_is_the_prefill():
    detector = PrefillDetector()
    ids, mask = _left_padded([[3, 4, 5], [6]])
    detector.enter_generate((), {"input_ids": ids, "attention_mask": mask})
    first = detector.on_forward((), {"input_ids": ids})  # no mask, no cache keyword at all
    assert first.kind == PREFILL and torch.equal(first.mask, mask)  # the caller's padding
    assert detector.on_forward((), {"input_ids": ids[:, -1:]}).kind == DECODE
    assert detector.on_forward((), {"input_ids": ids}).kind == DECODE  # use_cache=False step
    detector.exit_generate()
    assert detector.on_forward((), {"input_ids": ids}).kind == PREFILL  # a plain forward again


def test_a_first_forward_that_does_not_match_the_prompt_fails_closed():
    detector = PrefillDetector()
    ids, mask = _left_padded([[3, 4, 5], [6]])
    detector.enter_generate((ids,), {"attention_mask": mask})
    verdict = detector.on_forward((), {"input_ids": torch.ones(2, 1, dtype=torch.long)})
    assert verdict.kind == UNSCORED and "2 x 3 prompt tokens" in verdict.reason


def test_beam_search_rows_take_the_callers_mask_repeated():
    detector = PrefillDetector()
    ids, mask = _left_padded([[3, 4, 5], [6]])
    detector.enter_generate((), {"input_ids": ids, "attention_mask": mask})
    verdict = detector.on_forward((), {"input_ids": ids.repeat_interleave(3, 0)})
    assert verdict.kind == PREFILL and torch.equal(verdict.mask, mask.repeat_interleave(3, 0))


def test_a_mask_that_is_not_a_padding_mask_fails_closed_and_logs_once(tiny_llava, caplog):
    ids = torch.tensor([[IMAGE_TOKEN] * N_IMAGE_TOKENS + [3, 4]] * 2)
    pixels = torch.randn(2, 3, 32, 32)
    detector = PrefillDetector()
    verdict = detector.on_forward(
        (), {"input_ids": ids, "attention_mask": torch.ones(2, 1, 18, 18)}
    )
    assert verdict.kind == UNSCORED and "not a 2-D padding mask" in verdict.reason
    with ReliabilityCollector(tiny_llava, _probe()) as col, torch.no_grad():
        col._scorer.on_model_call(
            tiny_llava, (), {"input_ids": ids, "attention_mask": ids[..., None]}
        )
        col._scorer.on_model_call(
            tiny_llava, (), {"input_ids": ids, "attention_mask": ids[..., None]}
        )
        scores = col.collect()
        assert [s.scored for s in scores] == [False] * 4 and col.unscored_rows == 4
        tiny_llava(input_ids=ids, pixel_values=pixels)
        assert all(s.scored for s in col.collect())  # the next request is scored again
    assert sum("left a batch unscored" in r.message for r in caplog.records) == 1


def test_a_reused_prefix_in_generate_is_unscored_not_pooled(tiny_llava):
    ids = torch.tensor([[IMAGE_TOKEN] * N_IMAGE_TOKENS + [3, 4, 5]])
    pixels = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        prefix = tiny_llava(input_ids=ids[:, :-1], pixel_values=pixels, use_cache=True)
    cache = prefix.past_key_values if hasattr(prefix, "past_key_values") else prefix.cache
    with ReliabilityCollector(tiny_llava, _probe()) as col:
        tiny_llava.generate(
            input_ids=ids,  # the image is in the cached prefix already
            max_new_tokens=2,
            do_sample=False,
            pad_token_id=0,
            **{_CACHE_KEYWORD: cache},
        )
        (score,) = col.collect()
    assert not score.scored and col.unscored_rows == 1


@pytest.mark.parametrize("use_cache", [True, False])
@pytest.mark.parametrize("pooling", POOLINGS)
def test_generate_pools_padded_rows_as_alone_once_per_request(tiny_llava, pooling, use_cache):
    torch.manual_seed(4)
    # without a cache, transformers < 5.24 re-encodes the image at every step and fails on
    # its own, so that case runs on text-only prompts (the LLaVA decoder alone)
    image = [IMAGE_TOKEN] * N_IMAGE_TOKENS if use_cache else [5]
    if pooling == "mean_image_tokens" and not use_cache:
        pytest.skip("needs image tokens, which need the cache on transformers < 5.24")
    rows = [image + w for w in ([3, 4, 5, 6], [7], [8, 9])]
    pixels = torch.randn(3, 3, 32, 32)
    kw = dict(max_new_tokens=3, do_sample=False, pad_token_id=0, use_cache=use_cache)

    def images(rows: slice) -> dict:
        return {"pixel_values": pixels[rows]} if use_cache else {}

    with ReliabilityCollector(tiny_llava, _probe(pooling), capture_states=True) as col:
        for i, r in enumerate(rows):
            tiny_llava.generate(input_ids=torch.tensor([r]), **images(slice(i, i + 1)), **kw)
        alone = col.collect()
        ids, mask = _left_padded(rows)
        tiny_llava.generate(input_ids=ids, attention_mask=mask, **images(slice(None)), **kw)
        batched = col.collect()
    assert len(alone) == len(batched) == 3  # one score per request, not per generated token
    for a, b in zip(alone, batched):
        np.testing.assert_allclose(a.state, b.state, rtol=1e-4, atol=1e-5)


def test_close_restores_generate(tiny_llava):
    before = tiny_llava.generate
    with ReliabilityCollector(tiny_llava, _probe()):
        assert tiny_llava.generate is not before and "generate" in vars(tiny_llava)
    assert "generate" not in vars(tiny_llava) and tiny_llava.generate == before
