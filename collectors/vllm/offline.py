"""The caller's side of the collector for offline ``vllm.LLM``: scores next to outputs.

Example::

    from vllm import LLM, SamplingParams
    from collectors.vllm import VLLMCollector, VLLMCollectorSettings, monitored_llm_kwargs

    llm = LLM(model_dir, **monitored_llm_kwargs())       # worker extension, eager mode
    collector = VLLMCollector(llm, VLLMCollectorSettings(probe_path="probe.json"))
    outputs = llm.generate(requests, SamplingParams(max_tokens=8))
    scores = collector.collect(outputs)                  # one Score per output, aligned
    collector.emit(scores, [o.outputs[0].text for o in outputs], emitter)

Scores are computed in the worker during prefill; :meth:`VLLMCollector.collect` takes
them by request id with one RPC.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from collectors.routing.gate import RoutingGate
from collectors.routing.score import Score, to_events
from collectors.vllm.extension import EXTENSION
from collectors.vllm.settings import VLLMCollectorSettings
from collectors.wire.events import ScoredEvent


def monitored_llm_kwargs(**kwargs: Any) -> dict[str, Any]:
    """``vllm.LLM`` keyword arguments the collector needs, merged into ``kwargs``.

    Sets ``worker_extension_cls`` and ``enforce_eager=True`` (forward hooks do not run
    in a torch.compiled or CUDA-graph-captured model).

    Raises
    ------
    ValueError
        ``kwargs`` asks for another worker extension or for ``enforce_eager=False``.
    """
    if kwargs.get("worker_extension_cls", EXTENSION) != EXTENSION:
        raise ValueError(f"worker_extension_cls must be {EXTENSION!r}")
    if kwargs.get("enforce_eager") is False:
        raise ValueError("the collector needs enforce_eager=True (hooks do not run compiled)")
    return {**kwargs, "worker_extension_cls": EXTENSION, "enforce_eager": True}


class VLLMCollector:
    """Attach the collector to every worker of ``llm`` and read its scores.

    Parameters
    ----------
    llm : vllm.LLM
        Started with :func:`monitored_llm_kwargs`.
    settings : VLLMCollectorSettings

    Raises
    ------
    RuntimeError
        A worker refused to attach (the message names why: compiled model, layer
        out of range, probe width, missing probe file).
    """

    def __init__(self, llm: Any, settings: VLLMCollectorSettings) -> None:
        self.llm, self.settings = llm, settings
        lo, hi = settings.gray_zone_bounds
        self.gate = RoutingGate(float(settings.confidence_threshold), (float(lo), float(hi)))
        self.info = llm.collective_rpc("vlm_monitor_attach", args=(settings.to_dict(),))[0]
        self.last_results: list[dict[str, Any]] = []
        self.last_reasons: dict[str, str] = {}
        self._versions: list[str | None] = []  # per output of the last collect()

    def take(self, request_ids: Sequence[str] | None = None) -> dict[str, dict[str, Any]]:
        """Raw results by request id from the reporting rank (all when ``None``)."""
        ids = None if request_ids is None else list(request_ids)
        merged: dict[str, dict[str, Any]] = {}
        for part in self.llm.collective_rpc("vlm_monitor_take", args=(ids,)):
            merged.update(part)
        return merged

    def collect(self, outputs: Sequence[Any]) -> list[Score]:
        """One :class:`Score` per ``RequestOutput``, aligned; unscored rows have NaN confidence.

        A request the worker left unscored (or never saw) gets ``scored=False`` and
        decision ``"fallback"``; :meth:`reasons` says why.
        """
        results = self.take([o.request_id for o in outputs])
        self.last_results = [results[o.request_id] for o in outputs if o.request_id in results]
        self._versions = [results.get(o.request_id, {}).get("probe_version") for o in outputs]
        self.last_reasons = {k: r["reason"] for k, r in results.items() if not r["scored"]}
        scores = []
        for output in outputs:
            r = results.get(output.request_id)
            if r is None or not r["scored"]:
                scores.append(Score(math.nan, math.nan, self.gate.decide(math.nan), scored=False))
                continue
            state = r["state"]
            scores.append(
                Score(
                    raw_logit=r["raw_logit"],
                    confidence=r["confidence"],
                    decision=r["decision"],
                    state=None if state is None else np.asarray(state, dtype=np.float32),
                    route=r["decision"],
                )
            )
        return scores

    def emit(
        self, scores: Sequence[Score], answers: Sequence[str], emitter: Any, tags: str = ""
    ) -> list[ScoredEvent | None]:
        """Events for scored requests, with the answers, handed to ``emitter`` (never blocks).

        Each event carries the probe version that scored it (a hot swap may fall
        between two requests of one batch) when ``scores`` are the last :meth:`collect`'s.

        Raises
        ------
        ValueError
            ``scores`` and ``answers`` differ in length.
        """
        if len(scores) != len(answers):
            raise ValueError(f"{len(scores)} scores but {len(answers)} answers")
        versions = self._versions
        if len(versions) != len(scores):  # not the last collect()'s scores: the attach-time probe
            versions = [None] * len(scores)
        events = [
            to_events(
                [score], [answer], [tags], self.settings.model_id,
                version or self.info["probe_version"], self.info["layers"][0], self.info["pooling"],
            )[0]
            for score, answer, version in zip(scores, answers, versions)
        ]  # fmt: skip
        for event in events:
            if event is not None and emitter is not None:
                emitter.emit(event)
        return events

    def stats(self) -> list[dict[str, Any] | None]:
        """Per worker: counters, unscored reasons, serving probe, emitter counters."""
        return self.llm.collective_rpc("vlm_monitor_stats")

    def close(self) -> list[dict[str, Any] | None]:
        """Detach from every worker; their final stats."""
        return self.llm.collective_rpc("vlm_monitor_detach")
