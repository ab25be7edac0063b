import math

import numpy as np
import pytest
import torch

from collectors.generate.collector import POOLINGS, ReliabilityCollector, pool_hidden
from collectors.model.layers import LayerResolutionError, find_decoder_layers
from collectors.probe.linear import LinearProbe
from collectors.routing.gate import RoutingGate

LAYER = 2
IMAGE_TOKEN, N_IMAGE_TOKENS = 49, 16  # must match conftest.tiny_llava


def prompt_ids(words: list[int]) -> list[int]:
    return [IMAGE_TOKEN] * N_IMAGE_TOKENS + words


def _probe(hidden_dim: int = 64, pooling: str = "last_prompt_token") -> LinearProbe:
    rng = np.random.default_rng(0)
    return LinearProbe(
        weight=rng.normal(size=hidden_dim), bias=0.1, temperature=1.5, layer=LAYER, pooling=pooling
    )


def _batch(rows: list[list[int]], side: str) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(r) for r in rows)
    ids, mask = [], []
    for r in rows:
        pad = [0] * (width - len(r))
        ids.append(pad + r if side == "left" else r + pad)
        m = [0] * len(pad) + [1] * len(r) if side == "left" else [1] * len(r) + [0] * len(pad)
        mask.append(m)
    return torch.tensor(ids), torch.tensor(mask)


def test_layers_found_by_class(tiny_llava):
    path, layers = find_decoder_layers(tiny_llava)
    assert path == "model.language_model.layers"
    assert len(layers) == 4


def test_out_of_range_layer_names_the_count(tiny_llava):
    with pytest.raises(LayerResolutionError, match="has 4 decoder layers"):
        ReliabilityCollector(tiny_llava, _probe(), layer=7)


def test_pooled_state_equals_output_hidden_states(tiny_llava):
    torch.manual_seed(1)
    ids = torch.tensor([prompt_ids([3, 4, 5, 6])])
    pixels = torch.randn(1, 3, 32, 32)
    with ReliabilityCollector(tiny_llava, _probe(), capture_states=True) as col:
        with torch.no_grad():
            out = tiny_llava(input_ids=ids, pixel_values=pixels, output_hidden_states=True)
        (score,) = col.collect()
    # hidden_states[0] is the embedding output, so decoder layer L is hidden_states[L + 1]
    expected = out.hidden_states[LAYER + 1][0, -1].numpy()
    np.testing.assert_allclose(score.state, expected, rtol=1e-5, atol=1e-6)
    assert score.raw_logit == pytest.approx(float(_probe().logits(expected[None])[0]), rel=1e-4)


@pytest.mark.parametrize("side", ["left", "right"])
@pytest.mark.parametrize("pooling", POOLINGS)
def test_padded_batch_pools_each_row_as_alone(tiny_llava, side, pooling):
    torch.manual_seed(2)
    rows = [prompt_ids([3, 4, 5, 6, 7, 8]), prompt_ids([9, 10]), prompt_ids([11, 12, 13])]
    pixels = torch.randn(3, 3, 32, 32)
    probe = _probe(pooling=pooling)
    alone = []
    with ReliabilityCollector(tiny_llava, probe, capture_states=True) as col, torch.no_grad():
        for i, r in enumerate(rows):
            tiny_llava(input_ids=torch.tensor([r]), pixel_values=pixels[i : i + 1])
        alone = col.collect()
        ids, mask = _batch(rows, side)
        tiny_llava(input_ids=ids, attention_mask=mask, pixel_values=pixels)
        batched = col.collect()
    assert len(batched) == 3
    for a, b in zip(alone, batched):
        np.testing.assert_allclose(a.state, b.state, rtol=1e-4, atol=1e-5)
        assert a.confidence == pytest.approx(b.confidence, abs=1e-5)


def test_generate_scores_prefill_once_per_request(tiny_llava):
    torch.manual_seed(3)
    ids, mask = _batch([prompt_ids([3, 4, 5]), prompt_ids([6])], "left")
    with ReliabilityCollector(tiny_llava, _probe(), capture_states=True) as col:
        tiny_llava.generate(
            input_ids=ids,
            attention_mask=mask,
            pixel_values=torch.randn(2, 3, 32, 32),
            max_new_tokens=4,
            do_sample=False,
            pad_token_id=0,
        )
        scores = col.collect()
        assert col.collect() == []
    assert len(scores) == 2  # not 2 x (1 prefill + 3 decode steps)
    assert all(0.0 < s.confidence < 1.0 for s in scores)


def test_no_hook_left_behind(tiny_llava):
    def count() -> int:
        return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in tiny_llava.modules())

    before = count()
    with pytest.raises(RuntimeError), ReliabilityCollector(tiny_llava, _probe()):
        assert count() == before + 2
        raise RuntimeError("request failed")
    assert count() == before


def test_hook_error_never_reaches_the_model(tiny_llava):
    sent = []
    emitter = type("E", (), {"emit": lambda self, e, topic=None: sent.append(e)})()
    probe = _probe(pooling="mean_image_tokens")
    with ReliabilityCollector(tiny_llava, probe, emitter=emitter) as col, torch.no_grad():
        embeds = tiny_llava.get_input_embeddings()(torch.tensor([[3, 4, 5], [6, 7, 8]]))
        out = tiny_llava(inputs_embeds=embeds)  # no input_ids: image tokens cannot be found
        assert out.logits.shape[0] == 2
        assert col.hook_errors == 1
        scores = col.collect()
        # rows stay aligned with the caller's answers; unscored rows fall back, emit nothing
        assert [s.scored for s in scores] == [False, False]
        assert all(math.isnan(s.confidence) and s.decision == "fallback" for s in scores)
        assert col.emit(scores, ["yes", "no"]) == [None, None] and sent == []
        tiny_llava(
            input_ids=torch.tensor([prompt_ids([3])]), pixel_values=torch.randn(1, 3, 32, 32)
        )
        (ok,) = col.collect()  # the next request is scored again
        assert ok.scored and 0 < ok.confidence < 1


def test_emit_builds_events_with_decisions(tiny_llava):
    sent = []

    class ListEmitter:
        def emit(self, event, topic=None):
            sent.append(event)
            return True

    gate = RoutingGate(confidence_threshold=0.5, gray_zone_bounds=(0.45, 0.55))
    with ReliabilityCollector(
        tiny_llava, _probe(), gate=gate, emitter=ListEmitter(), model_id="tiny"
    ) as col:
        with torch.no_grad():
            tiny_llava(
                input_ids=torch.tensor([prompt_ids([3])] * 2),
                pixel_values=torch.randn(2, 3, 32, 32),
            )
        scores = col.collect()
        events = col.emit(scores, ["yes", "no"], tags="t")
        named = col.emit(scores, ["yes", "no"], event_ids=["req-1", None])  # the client's ids
        with pytest.raises(ValueError, match="1 event ids"):
            col.emit(scores, ["yes", "no"], event_ids=["req-1"])
    assert named[0].event_id == "req-1" and len(named[1].event_id) == 32
    assert sent == events + named
    assert [e.answer for e in events] == ["yes", "no"]
    for e in events:
        assert e.decision == gate.decide(e.confidence) and e.model_id == "tiny" and e.layer == LAYER


def test_pool_hidden_mean_ignores_padding():
    hidden = torch.arange(12, dtype=torch.float32).reshape(1, 4, 3)
    mask = torch.tensor([[0, 1, 1, 0]])
    pooled = pool_hidden(hidden, mask, "mean_prompt_tokens")
    torch.testing.assert_close(pooled, hidden[:, 1:3].mean(dim=1))
    torch.testing.assert_close(pool_hidden(hidden, mask, "last_prompt_token"), hidden[:, 2])
