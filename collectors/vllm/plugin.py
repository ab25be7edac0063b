"""The ``vllm.general_plugins`` entry point: the collector in ``vllm serve``, from the environment.

vLLM loads general plugins in every process it starts. When :data:`~collectors.vllm.settings.ENV`
is set, :func:`register` wraps the worker's ``load_model`` so that, right after the
weights load in each worker, a :class:`~collectors.vllm.worker.WorkerCollector` is
attached with those settings; without it, the plugin does nothing. A collector that
cannot start (compiled model, a probe that does not fit) stops the worker's start
with the reason: a server that was asked to be monitored does not serve unmonitored.
"""

from __future__ import annotations

import functools
import logging
from typing import Any

log = logging.getLogger("vllm.vlm_monitor")  # under vLLM's logger: its handlers print it


def register() -> None:
    """Install the load-model wrapper when :data:`ENV` is set (idempotent)."""
    from collectors.vllm.settings import VLLMCollectorSettings

    settings = VLLMCollectorSettings.from_env()
    if settings is None:
        return
    try:
        from vllm.v1.worker.gpu_worker import Worker
    except ImportError as exc:  # another vLLM layout: say so, serve unchanged
        log.error("vlm-monitor plugin: cannot find vLLM's worker (%s); not monitoring", exc)
        return
    if getattr(Worker.load_model, "_vlm_monitor", False):
        return
    original = Worker.load_model

    @functools.wraps(original)
    def load_model(self: Any, *args: Any, **kwargs: Any) -> Any:
        from collectors.vllm.extension import attach_collector

        result = original(self, *args, **kwargs)
        stats = attach_collector(self, settings.to_dict())
        log.info("vlm-monitor collector attached: %s", stats)
        return result

    load_model._vlm_monitor = True  # type: ignore[attr-defined]
    Worker.load_model = load_model
