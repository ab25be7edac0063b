"""Latency cost of the collector on ``generate``, with the broker up and with it stopped.

A mid-size random-weight LLaVA (Llama decoder of width 1024 and 8 layers,
32,000-word vocabulary, a small CLIP tower giving 64 image tokens) answers
single requests with greedy ``generate``. Bare requests and monitored requests
(collector attached, then ``collect()`` and ``emit()`` to a real Kafka-protocol
broker) alternate in one run, so both see the same machine load; the order
inside each pair alternates too. Phase 2 stops the broker and repeats.

Printed per phase: p50, p99 and mean latency (ms) of each arm, the p50 ratio,
the p99 difference (ms), and the median of the paired differences. Goals:
p50 ratio <= 1.01, p99 added <= 1 ms with the broker down.

On a shared machine the end-to-end figures carry several percent of noise, so
the script also times the collector's own work directly, in the same run: the
hook path (pre-hook, pooling, probe, calibration on one prefill of the same
shape) and ``collect()`` + ``emit()``, and prints their sum as a share of the
bare p50.

Run: ``python bench/collector_overhead.py`` (about 2-3 minutes on 2 busy CPU
cores, one torch thread: more threads than free cores slow every arm 3-5x);
``--requests 10`` for a quicker, noisier run.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from transformers import CLIPVisionConfig, LlamaConfig, LlavaConfig, LlavaForConditionalGeneration

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from collectors.generate.collector import ReliabilityCollector  # noqa: E402
from collectors.probe.linear import LinearProbe  # noqa: E402
from collectors.transport.emitter import KafkaEmitter  # noqa: E402
from monitor.service.broker import EmbeddedBroker  # noqa: E402

IMAGE_TOKEN = 32_000


def build_model(width: int, layers: int) -> LlavaForConditionalGeneration:
    """Random-weight LLaVA: CLIP 64 px / patch 8 (64 image tokens), Llama ``width`` x ``layers``."""
    torch.manual_seed(0)
    vision = CLIPVisionConfig(
        hidden_size=256,
        intermediate_size=1024,
        num_hidden_layers=2,
        num_attention_heads=4,
        image_size=64,
        patch_size=8,
    )
    text = LlamaConfig(
        hidden_size=width,
        intermediate_size=width * 11 // 4,
        num_hidden_layers=layers,
        num_attention_heads=width // 64,
        num_key_value_heads=width // 64,
        vocab_size=32_064,
        max_position_embeddings=512,
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


def summarise(name: str, bare: list[float], monitored: list[float]) -> dict[str, float]:
    b, m = np.array(bare) * 1e3, np.array(monitored) * 1e3  # ms
    row = {
        "bare_p50": np.percentile(b, 50),
        "bare_p99": np.percentile(b, 99),
        "mon_p50": np.percentile(m, 50),
        "mon_p99": np.percentile(m, 99),
        "bare_mean": b.mean(),
        "mon_mean": m.mean(),
        "paired_median_ms": float(np.median(m - b)),
    }
    row["p50_ratio"] = row["mon_p50"] / row["bare_p50"]
    row["p99_added_ms"] = row["mon_p99"] - row["bare_p99"]
    print(
        f"{name:<14} bare p50 {row['bare_p50']:8.2f} p99 {row['bare_p99']:8.2f} mean "
        f"{row['bare_mean']:8.2f} | monitored p50 {row['mon_p50']:8.2f} p99 {row['mon_p99']:8.2f} "
        f"mean {row['mon_mean']:8.2f} ms\n{'':<14} p50 ratio {row['p50_ratio']:.4f}  "
        f"p99 added {row['p99_added_ms']:+.2f} ms  paired median {row['paired_median_ms']:+.2f} ms"
    )
    return row


def hook_cost_s(model, collector, input_ids: torch.Tensor, width: int, n: int = 200) -> float:
    """Median seconds of the in-forward collector work for one prefill of this shape.

    Runs the exact callbacks the hooks run (pre-hook on the model, the layer hook:
    pooling, probe, calibration, capture) on a hidden state of the prefill's shape.
    """
    scorer = collector._scorer
    hidden = torch.randn(1, input_ids.shape[1], width)  # [batch, seq, hidden]
    layer_hook = scorer.layer_hook(collector.layer)
    times = []
    with torch.inference_mode():
        for _ in range(n):
            t0 = time.perf_counter()
            scorer.on_model_call(model, (), {"input_ids": input_ids})
            layer_hook(None, (), hidden)
            times.append(time.perf_counter() - t0)
    collector.collect()  # drop the synthetic scores
    return float(np.median(times))


def run_phase(model, inputs, collector, n: int, max_new_tokens: int) -> tuple[list, list, list]:
    bare, monitored, side = [], [], []

    def one(monitor: bool) -> float:
        if monitor:
            collector.attach()  # outside the timed region: a server attaches once
        t0 = time.perf_counter()
        with torch.inference_mode():
            model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False)
            if monitor:
                t1 = time.perf_counter()
                collector.emit(collector.collect(), ["yes"], tags="bench")
                side.append(time.perf_counter() - t1)
        elapsed = time.perf_counter() - t0
        collector.close()
        return elapsed

    for i in range(n):
        if i % 2:
            bare.append(one(False))
            monitored.append(one(True))
        else:
            monitored.append(one(True))
            bare.append(one(False))
    return bare, monitored, side


def main(argv: list[str] | None = None) -> dict[str, dict[str, float]]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=24, help="pairs per phase")
    parser.add_argument("--width", type=int, default=1024)
    parser.add_argument("--layers", type=int, default=8)
    parser.add_argument("--prompt-tokens", type=int, default=16, help="text tokens after the image")
    parser.add_argument("--max-new-tokens", type=int, default=4)
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    parser.add_argument("--capture-rate", type=float, default=0.0)
    args = parser.parse_args(argv)
    logging.getLogger("kafka").setLevel(logging.CRITICAL)
    threads = torch.get_num_threads()
    torch.set_num_threads(args.threads)
    try:
        return run(args)
    finally:
        torch.set_num_threads(threads)


def run(args: argparse.Namespace) -> dict[str, dict[str, float]]:
    """Both phases of the benchmark; returns the figures printed."""

    model = build_model(args.width, args.layers)
    rng = np.random.default_rng(0)
    text = rng.integers(3, 32_000, size=args.prompt_tokens).tolist()
    inputs = {
        "input_ids": torch.tensor([[IMAGE_TOKEN] * 64 + text]),
        "pixel_values": torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(0)),
    }
    probe = LinearProbe(weight=rng.normal(size=args.width), bias=0.0, layer=0, version="bench")
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads; LLaVA width {args.width}, "
        f"{args.layers} layers, prompt {inputs['input_ids'].shape[1]} tokens (64 image), "
        f"{args.max_new_tokens} new tokens, {args.requests} pairs per phase"
    )
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        broker = EmbeddedBroker(port=0, log_path=Path(tmp) / "tansu.log").start(timeout_s=20)
        emitter = KafkaEmitter(
            "bench.events",
            bootstrap_servers=broker.bootstrap_servers,
            request_timeout_ms=2000,
            spill_path=Path(tmp) / "spill.bin",
        )
        collector = ReliabilityCollector(
            model, probe, emitter=emitter, layer="auto", capture_states=args.capture_rate
        )
        print(f"probe on decoder layer {collector.layer} ({collector.layer_path})")
        run_phase(model, inputs, collector, 2, args.max_new_tokens)  # warm-up
        emitter.flush(timeout_s=20)
        bare, mon, side = run_phase(model, inputs, collector, args.requests, args.max_new_tokens)
        results["broker_up"] = summarise("broker up", bare, mon)
        print(
            f"{'':<14} collect()+emit() p50 {np.median(side) * 1e3:.3f} ms, "
            f"p99 {np.percentile(side, 99) * 1e3:.3f} ms; sent {emitter.sent}"
        )
        hook = hook_cost_s(model, collector, inputs["input_ids"], args.width)
        own = hook + float(np.median(side))
        results["direct"] = {"hook_ms": hook * 1e3, "own_ms": own * 1e3}
        print(
            f"{'':<14} direct: hook path {hook * 1e6:.0f} us + collect/emit "
            f"{np.median(side) * 1e6:.0f} us = {own * 1e3:.3f} ms per request = "
            f"{own * 1e3 / results['broker_up']['bare_p50']:.4%} of the bare p50"
        )
        broker.stop()
        bare, mon, side = run_phase(model, inputs, collector, args.requests, args.max_new_tokens)
        results["broker_down"] = summarise("broker stopped", bare, mon)
        print(
            f"{'':<14} collect()+emit() p50 {np.median(side) * 1e3:.3f} ms, "
            f"p99 {np.percentile(side, 99) * 1e3:.3f} ms; pending {emitter.pending}, "
            f"dropped {emitter.dropped}, failed {emitter.failed}"
        )
        t0 = time.perf_counter()
        emitter.close(timeout_s=1.0)
        print(
            f"emitter.close() {time.perf_counter() - t0:.2f} s: sent {emitter.sent}, "
            f"spilled to disk {emitter.spilled}, dropped {emitter.dropped}, failed {emitter.failed}"
        )
    down = results["broker_down"]
    print(
        f"goal: p50 ratio <= 1.01 -> {down['p50_ratio']:.4f}; "
        f"p99 added <= 1 ms (broker down) -> {down['p99_added_ms']:+.2f} ms"
    )
    return results


if __name__ == "__main__":
    main()
