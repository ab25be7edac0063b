"""Device placement, dtype, and host syncs: the probe follows the layer it reads."""

import numpy as np
import pytest
import torch
from accelerate import dispatch_model
from accelerate.hooks import AlignDevicesHook
from torch.utils._python_dispatch import TorchDispatchMode
from transformers import AutoModelForImageTextToText

from collectors.generate.collector import ReliabilityCollector
from collectors.probe.linear import LinearProbe
from collectors.probe.projection import Projection

IDS = torch.tensor([[49] * 16 + [3, 4, 5], [49] * 16 + [6, 7, 8]])


def _pixels(n: int = 2) -> torch.Tensor:
    return torch.randn(n, 3, 32, 32, generator=torch.Generator().manual_seed(4))


def _probe(layer: int = 2, **kw) -> LinearProbe:
    w = np.random.default_rng(0).normal(size=64)
    return LinearProbe(weight=w, bias=0.1, layer=layer, temperature=1.2, **kw)


def _scores(model: torch.nn.Module, probe: LinearProbe) -> np.ndarray:
    with ReliabilityCollector(model, probe, capture_states=True) as col, torch.no_grad():
        model.generate(input_ids=IDS, pixel_values=_pixels(), max_new_tokens=2, do_sample=False)
        return np.array([[s.raw_logit, s.confidence] for s in col.collect()])


def test_accelerate_device_map_with_the_probed_layer_offloaded(
    tiny_llava, tiny_llava_factory, tmp_path
):
    """dispatch_model with an explicit device_map; layer 2 lives on disk until its forward runs."""
    expected = _scores(tiny_llava, _probe())
    lm = "model.language_model"
    device_map = {
        "model.vision_tower": "cpu",
        "model.multi_modal_projector": "cpu",
        f"{lm}.embed_tokens": "cpu",
        f"{lm}.layers.0": "cpu",
        f"{lm}.layers.1": "cpu",
        f"{lm}.layers.2": "disk",
        f"{lm}.layers.3": "cpu",
        f"{lm}.norm": "cpu",
        f"{lm}.rotary_emb": "cpu",
        "lm_head": "cpu",
    }
    model = dispatch_model(tiny_llava_factory(), device_map=device_map, offload_dir=tmp_path)
    layer = model.model.language_model.layers[2]
    assert isinstance(layer._hf_hook, AlignDevicesHook) and layer.mlp.up_proj.weight.is_meta
    np.testing.assert_allclose(_scores(model, _probe()), expected, rtol=1e-5)
    assert isinstance(layer._hf_hook, AlignDevicesHook)  # accelerate's hooks are left in place


def test_from_pretrained_device_map_bf16(tiny_llava, tmp_path):
    tiny_llava.save_pretrained(tmp_path)
    model = AutoModelForImageTextToText.from_pretrained(
        tmp_path, device_map={"": "cpu"}, dtype=torch.bfloat16
    ).eval()
    probe = _probe()
    got = _scores(model, probe)
    assert (torch.device("cpu"), torch.bfloat16) in probe._cache  # the weight moved to bf16
    expected = _scores(tiny_llava, _probe())
    np.testing.assert_allclose(got[:, 1], expected[:, 1], atol=0.05)  # bf16 model, close scores
    assert np.all((got[:, 1] > 0) & (got[:, 1] < 1))


class _CountSyncs(TorchDispatchMode):
    """Counts the ops that copy a tensor value to the host (``.item()``, ``bool(t)``, ...)."""

    def __init__(self) -> None:
        super().__init__()
        self.n = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func in (torch.ops.aten._local_scalar_dense.default, torch.ops.aten.is_nonzero.default):
            self.n += 1
        return func(*args, **(kwargs or {}))


def _count_calls(monkeypatch, names: tuple[str, ...]) -> dict[str, int]:
    counts = dict.fromkeys(names, 0)
    for name in names:
        real = getattr(torch.Tensor, name)

        def counted(self, *a, _real=real, _name=name, **kw):
            counts[_name] += 1
            return _real(self, *a, **kw)

        monkeypatch.setattr(torch.Tensor, name, counted)
    return counts


def test_request_path_syncs_with_the_host_once(tiny_llava, monkeypatch):
    def run(col: ReliabilityCollector | None) -> int:
        with _CountSyncs() as mode, torch.no_grad():
            tiny_llava.generate(
                input_ids=IDS, pixel_values=_pixels(), max_new_tokens=3, do_sample=False
            )
        return mode.n

    baseline = run(None)
    probe = _probe(projection=Projection.random(64, 8, seed=0))
    with ReliabilityCollector(tiny_llava, probe, capture_states=True) as col:
        assert run(col) == baseline  # the hooks add no sync to generate
        counts = _count_calls(monkeypatch, ("cpu", "numpy", "tolist", "item"))
        with _CountSyncs() as mode:
            scores = col.collect()
    assert mode.n == 0 and counts == {"cpu": 1, "numpy": 1, "tolist": 0, "item": 0}
    assert len(scores) == 2 and scores[0].state.shape == (8,)


def test_capture_rate_samples_rows_with_a_seed(tiny_llava):
    probe = _probe(projection=Projection.random(64, 4, seed=1))

    def captured(seed: int) -> list[bool]:
        with ReliabilityCollector(tiny_llava, probe, capture_states=0.5, seed=seed) as col:
            with torch.no_grad():
                for _ in range(4):
                    tiny_llava(input_ids=IDS, pixel_values=_pixels())
            return [s.state is not None for s in col.collect()]

    a = captured(0)
    assert a == captured(0) and 0 < sum(a) < len(a) == 8
    full = ReliabilityCollector(tiny_llava, _probe(), capture_states=True)
    with full, torch.no_grad():
        out = tiny_llava(input_ids=IDS, pixel_values=_pixels(), output_hidden_states=True)
        (s0, _) = full.collect()
    with ReliabilityCollector(tiny_llava, probe, capture_states=1.0) as col, torch.no_grad():
        tiny_llava(input_ids=IDS, pixel_values=_pixels())
        (p0, _) = col.collect()
    np.testing.assert_allclose(s0.state, out.hidden_states[3][0, -1].numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(
        p0.state, probe.projection.apply(s0.state[None])[0], rtol=1e-4, atol=1e-5
    )
    with pytest.raises(ValueError, match="capture_states"):
        ReliabilityCollector(tiny_llava, probe, capture_states=1.5)
