import numpy as np
import pytest
import torch

from collectors.generate.collector import ReliabilityCollector
from collectors.model.pooling import PoolingError, image_token_mask, pool_hidden
from collectors.probe.linear import LinearProbe

IMG = 60


def _probe(width: int, layers: tuple[int, ...], pooling: str) -> LinearProbe:
    w = np.random.default_rng(1).normal(size=width * len(layers))
    return LinearProbe(weight=w, bias=0.2, layers=layers, pooling=pooling, temperature=1.3)


def test_stacked_probe_reads_concatenated_layers(tiny_llava):
    """A stacked probe (paper Table 6) scores the concatenation of several layers' states."""
    ids = torch.tensor([[49] * 16 + [3, 4, 5, 6]])
    pixels = torch.randn(1, 3, 32, 32)
    probe = _probe(64, (2, 0), "last_prompt_token")
    with ReliabilityCollector(tiny_llava, probe, capture_states=True) as col, torch.no_grad():
        out = tiny_llava(input_ids=ids, pixel_values=pixels, output_hidden_states=True)
        (score,) = col.collect()
    # hidden_states[L + 1] is decoder layer L (the last entry has the final norm applied)
    expected = torch.cat([out.hidden_states[3][0, -1], out.hidden_states[1][0, -1]]).numpy()
    np.testing.assert_allclose(score.state, expected, rtol=1e-5, atol=1e-6)
    assert score.raw_logit == pytest.approx(float(probe.logits(expected[None])[0]), rel=1e-4)
    assert score.confidence == pytest.approx(
        float(probe.predict_proba(expected[None])[0]), rel=1e-5
    )
    with pytest.raises(ValueError, match="stacked probe"):
        ReliabilityCollector(tiny_llava, probe, layer=1)


@pytest.mark.parametrize(
    "pooling", ["last_prompt_token", "mean_prompt_tokens", "mean_image_tokens"]
)
def test_qwen2_vl_left_padded_batch_pools_each_row_as_alone(families, pooling):
    """Early fusion with M-RoPE: padded rows still pool exactly as alone."""
    fam = families["qwen2_vl"]
    rows = [[5, 62] + [IMG] * 4 + [63, 7, 8, 9, 10], [5, 62] + [IMG] * 4 + [63, 7]]
    pixels = torch.randn(32, 3 * 2 * 4 * 4)
    grid = torch.tensor([[1, 4, 4], [1, 4, 4]])

    def inputs(ids: torch.Tensor, mask: torch.Tensor, px: torch.Tensor, g: torch.Tensor) -> dict:
        return dict(
            input_ids=ids,
            attention_mask=mask,
            pixel_values=px,
            image_grid_thw=g,
            mm_token_type_ids=(ids == IMG).long(),
        )

    probe = _probe(32, (1,), pooling)
    with ReliabilityCollector(fam.model, probe, capture_states=True) as col, torch.no_grad():
        for i, r in enumerate(rows):
            ids = torch.tensor([r])
            fam.model(
                **inputs(ids, torch.ones_like(ids), pixels[16 * i : 16 * i + 16], grid[i : i + 1])
            )
        alone = col.collect()
        width = max(map(len, rows))
        ids = torch.tensor([[0] * (width - len(r)) + r for r in rows])
        mask = (torch.arange(width) >= torch.tensor([[width - len(r)] for r in rows])).long()
        fam.model(**inputs(ids, mask, pixels, grid))
        batched = col.collect()
    for a, b in zip(alone, batched):
        np.testing.assert_allclose(a.state, b.state, rtol=1e-4, atol=1e-5)


def test_pool_hidden_image_tokens_and_errors():
    hidden = torch.arange(24, dtype=torch.float32).reshape(2, 4, 3)
    ids = torch.tensor([[7, 60, 61, 8], [60, 9, 9, 9]])
    image = image_token_mask(ids, (60, 61))
    pooled = pool_hidden(hidden, None, "mean_image_tokens", image)
    torch.testing.assert_close(pooled[0], hidden[0, 1:3].mean(0))
    torch.testing.assert_close(pooled[1], hidden[1, 0])
    with pytest.raises(PoolingError, match="needs input_ids"):
        pool_hidden(hidden, None, "mean_image_tokens")
    with pytest.raises(PoolingError, match="names no image token"):
        image_token_mask(ids, ())
    with pytest.raises(PoolingError, match="unknown pooling"):
        pool_hidden(hidden, None, "max")
