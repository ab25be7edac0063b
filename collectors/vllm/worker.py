"""The collector inside one vLLM worker: hooks, per-step plan, results, events.

One step, as seen from here::

    runner.execute_model(scheduler_output)   # wrapped: finished requests forgotten,
                                             # a promoted probe switched in
      decoder layer L forward hook           # first hook of the step: plan from the
                                             # runner's batch (steps.plan_step), then
                                             # gather, pool, score on the device
    (wrapper, after the step)                # one host copy: scores -> results, events

Hooks run only inside ``execute_model``, so vLLM's dummy and profiling runs are
never scored. Nothing here raises into vLLM: an error marks the step's requests
unscored with the reason and is counted (:meth:`WorkerCollector.stats`).
"""

from __future__ import annotations

import logging
import re
import time
from collections import Counter
from typing import Any

import numpy as np
import torch

from collectors.model.probe_layers import check_swap, probe_layers
from collectors.model.registry import resolve_architecture
from collectors.probe.capture import CaptureRequest
from collectors.probe.linear import LinearProbe
from collectors.routing.gate import RoutingGate
from collectors.routing.score import Score, to_events
from collectors.vllm import runner as vr
from collectors.vllm.results import ResultBook
from collectors.vllm.scorer import StepScorer
from collectors.vllm.settings import SettingsError, VLLMCollectorSettings
from collectors.vllm.steps import plan_step

log = logging.getLogger(__name__)


class WorkerCollector:
    """Score every request a vLLM worker runs with a hidden-state probe.

    Parameters
    ----------
    runner : vLLM model runner
        The worker's ``model_runner`` (V1 GPU or CPU runner), model loaded.
    settings : VLLMCollectorSettings

    Raises
    ------
    SettingsError
        torch.compile or CUDA graphs are on (hooks would never run: start vLLM with
        ``enforce_eager=True`` / ``--enforce-eager``), or bad settings.
    LayerResolutionError, ValueError
        The probe's layers or width do not fit the model.
    """

    def __init__(self, runner: Any, settings: VLLMCollectorSettings) -> None:
        reason = vr.compiled(runner)
        if reason:
            raise SettingsError(
                f"{reason}: forward hooks never run in compiled or graph-captured models; "
                "start vLLM with enforce_eager=True (vllm serve --enforce-eager)"
            )
        self.runner, self.settings = runner, settings
        model = runner.get_model()
        self.architecture = resolve_architecture(model, settings.family)
        self.probe = settings.load_probe()
        self.layers = probe_layers(
            self.architecture, self.probe, settings.layer, vr.text_hidden_size(runner)
        )
        rng = np.random.default_rng(settings.seed)
        capture = CaptureRequest(float(settings.capture_states), self.probe.projection, rng)
        self.scorer = StepScorer(self.probe, self.layers, capture)
        lo, hi = settings.gray_zone_bounds
        self.gate = RoutingGate(float(settings.confidence_threshold), (float(lo), float(hi)))
        self.primary = vr.is_emitting_rank()
        rank = getattr(runner, "local_rank", 0)
        self.emitter = settings.emitter(rank) if settings.emit and self.primary else None
        self.counts: Counter[str] = Counter()
        self.reasons: Counter[str] = Counter()
        self.results = ResultBook(settings.keep_results, self.counts)
        self._scored: set[str] = set()
        self._image_ids: dict[str, np.ndarray] = {}
        self._handles: list[Any] = []
        self._original: Any = None
        self._in_step = self._planned = False
        self.busy_s = 0.0  # seconds spent in the collector inside vLLM's steps
        self._step_ids: list[str] = []
        self._next_probe: LinearProbe | None = None
        self._watcher: Any = None

    # -- lifecycle ------------------------------------------------------------
    def attach(self) -> WorkerCollector:
        """Hook the decoder layers, wrap ``execute_model``, start the probe watcher.

        On a tensor-parallel rank other than 0 nothing is hooked: every rank holds the
        same residual stream, and rank 0 alone scores, reports and emits.
        """
        if not self.primary:
            return self
        layers = self.architecture.layers
        self._handles = [layers[i].register_forward_hook(self._hook(i)) for i in set(self.layers)]
        self._original = self.runner.execute_model
        self.runner.execute_model = self._execute_model
        if self.settings.registry_dir is not None:
            from collectors.probe.reload import ProbeWatcher

            kafka = self.settings.kafka or None
            self._watcher = ProbeWatcher(
                self.settings.registry_dir,
                self.swap_probe,
                current_version=self.probe.version,
                poll_s=self.settings.poll_s,
                control_topic=self.settings.control_topic if kafka else None,
                client_kwargs=kafka,
            ).start()
        log.info(
            "vlm-monitor collector on %s layers %s (%s), probe %s",
            self.architecture.layers_path,
            self.layers,
            self.probe.pooling,
            self.probe.version,
        )
        return self

    def detach(self) -> dict[str, Any]:
        """Remove hooks and the wrapper, stop the watcher, flush the emitter; return stats."""
        for handle in self._handles:
            handle.remove()
        self._handles = []
        if self._original is not None:
            self.runner.execute_model = self._original
            self._original = None
        if self._watcher is not None:
            self._watcher.stop()
        if self.emitter is not None:
            self.emitter.close(timeout_s=5.0)
        return self.stats()

    def swap_probe(self, probe: LinearProbe) -> None:
        """Serve ``probe`` from the next step with no prefill in flight; any thread.

        Raises
        ------
        ValueError
            ``probe`` reads other layers, another pooling or width.
        """
        check_swap(
            self.architecture, self.probe, self.layers, probe, self.settings.layer is not None
        )
        self._next_probe = probe

    # -- the step -------------------------------------------------------------
    def _execute_model(self, scheduler_output: Any, *args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        self._begin(scheduler_output)
        self.busy_s += time.perf_counter() - start
        try:
            return self._original(scheduler_output, *args, **kwargs)
        finally:
            start = time.perf_counter()
            self._end()
            self.busy_s += time.perf_counter() - start

    def _begin(self, scheduler_output: Any) -> None:
        try:
            for req_id in vr.finished_request_ids(scheduler_output):
                self._scored.discard(req_id)
                self._image_ids.pop(req_id, None)
                self.scorer.forget(req_id)
            probe = self._next_probe
            if probe is not None and not self.scorer.progress():
                self._next_probe = None
                self.probe = self.scorer.probe = probe
                self.scorer.capture.projection = probe.projection
                self.counts["probe_swaps"] += 1
                log.info("vlm-monitor collector now serves probe %s", probe.version)
            self._in_step, self._planned = True, False
        except Exception:  # noqa: BLE001 - never fail vLLM's step
            self._error("step start")

    def _hook(self, index: int) -> Any:
        def hook(module: torch.nn.Module, args: tuple, output: Any) -> None:
            if not self._in_step:
                return  # dummy, profiling and warm-up runs
            start = time.perf_counter()
            try:
                if not self._planned:
                    self._plan()
                self.scorer.on_layer(index, output)
            except Exception as exc:  # noqa: BLE001
                self._fail_step(f"hook failed: {type(exc).__name__}: {exc}")
            self.busy_s += time.perf_counter() - start

        return hook

    def _plan(self) -> None:
        self._planned = True
        self.counts["steps"] += 1
        requests = vr.current_step(self.runner)
        if not requests:  # every request is decoding
            self._step_ids = []
            return
        pooling = self.probe.pooling
        plan = plan_step(
            requests,
            pooling,
            scored=self._scored.__contains__,
            progress=self.scorer.progress(),
            image_positions=self._image_positions if pooling == "mean_image_tokens" else None,
        )
        self._step_ids = [r for r, done in zip(plan.req_ids, plan.complete) if done]
        self.counts["mixed_steps"] += bool(plan.decoding and (plan.req_ids or plan.unscored))
        self.counts["partial_prefills"] += plan.partial
        self.counts["prefills_again"] += len(plan.prefilling_again)
        for req_id, reason in plan.unscored.items():
            self._record_unscored(req_id, reason)
        self.scorer.begin(plan)

    def _image_positions(self, req_id: str) -> np.ndarray:
        if req_id not in self._image_ids:
            ids = vr.prompt_token_ids(self.runner, req_id)
            mask = np.isin(ids, np.asarray(self.architecture.image_token_ids, dtype=np.int64))
            self._image_ids[req_id] = np.flatnonzero(mask)
        return self._image_ids[req_id]

    def _fail_step(self, reason: str) -> None:
        self.scorer.begin(None)
        for req_id in self._step_ids:
            self._record_unscored(req_id, reason)
            self.scorer.forget(req_id)
        self._step_ids = []
        self._error(reason)

    def _end(self) -> None:
        self._in_step = False
        self.scorer.begin(None)
        try:
            for req_id, logit, prob, state in self.scorer.to_host():
                self._record(req_id, Score(logit, prob, self.gate.decide(prob), state))
        except Exception:  # noqa: BLE001
            self._error("step end")

    # -- results --------------------------------------------------------------
    def _record(self, req_id: str, score: Score) -> None:
        self._scored.add(req_id)
        self.counts["scored"] += 1
        extra = vr.extra_args(self.runner, req_id)
        key = vr.external_id(req_id)
        event_id = str(extra.get("event_id") or key)
        tag = str(extra.get("tag") or "")
        if self.emitter is not None:  # offline callers emit from their own process
            version, layer, pooling = self.probe.version, self.layers[0], self.probe.pooling
            event = to_events(
                [score], [""], [tag], self.settings.model_id, version, layer, pooling,
                event_ids=[event_id],
            )[0]  # fmt: skip
            if event is not None:
                self.emitter.emit(event)
        where = {"probe_version": self.probe.version, "layer": self.layers[0]}
        self.results.scored(key, event_id, tag, score, {**where, "pooling": self.probe.pooling})

    def _record_unscored(self, req_id: str, reason: str) -> None:
        self._scored.add(req_id)
        self.counts["unscored"] += 1
        kind = re.sub(r"\d+", "N", reason)
        self.reasons[kind] += 1
        if self.reasons[kind] == 1:
            log.warning("vlm-monitor left request %s unscored: %s", req_id, reason)
        self.results.unscored(vr.external_id(req_id), reason)

    def take(self, request_ids: list[str] | None = None) -> dict[str, dict[str, Any]]:
        """Remove and return results by the callers' request ids (all when ``None``)."""
        return self.results.take(request_ids)

    def peek(self, request_ids: list[str]) -> dict[str, dict[str, Any]]:
        """Results by request id without removing them (``state`` left out)."""
        return self.results.peek(request_ids)

    def _error(self, where: str) -> None:
        self.counts["errors"] += 1
        if self.counts["errors"] == 1:
            log.exception("vlm-monitor collector failed (%s); requests continue unscored", where)

    def stats(self) -> dict[str, Any]:
        """Counters (scored, unscored, errors, probe swaps), reasons, probe and emitter state."""
        emitter = self.emitter
        return {
            "counts": dict(self.counts),
            "busy_s": self.busy_s,
            "unscored_reasons": dict(self.reasons),
            "probe_version": self.probe.version,
            "layers": list(self.layers),
            "layers_path": self.architecture.layers_path,
            "pooling": self.probe.pooling,
            "primary_rank": self.primary,
            "emitter": None
            if emitter is None
            else {"sent": emitter.sent, "dropped": emitter.dropped, "failed": emitter.failed},
        }
