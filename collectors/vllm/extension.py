"""The worker extension: RPCs that attach the collector in each vLLM worker and read it.

vLLM mixes the class named by ``worker_extension_cls`` into its worker class; its
methods are then callable in every worker through ``LLM.collective_rpc`` (offline)
or ``AsyncLLM.collective_rpc``. The collector itself is :class:`WorkerCollector`;
the plugin (:mod:`collectors.vllm.plugin`) attaches the same object under the same
attribute, so these RPCs read it in ``vllm serve`` too.
"""

from __future__ import annotations

from typing import Any

EXTENSION = "collectors.vllm.extension.MonitorWorkerExtension"
"""The qualified name to pass as vLLM's ``worker_extension_cls``."""

ATTRIBUTE = "_vlm_monitor_collector"


def attach_collector(worker: Any, settings: dict[str, Any]) -> dict[str, Any]:
    """Attach a :class:`WorkerCollector` to ``worker`` (replacing one already there).

    Returns
    -------
    dict
        The collector's :meth:`~WorkerCollector.stats`.

    Raises
    ------
    SettingsError, LayerResolutionError, ValueError
        As :class:`WorkerCollector`.
    """
    from collectors.vllm.settings import VLLMCollectorSettings
    from collectors.vllm.worker import WorkerCollector

    detach_collector(worker)
    collector = WorkerCollector(worker.model_runner, VLLMCollectorSettings.from_dict(settings))
    setattr(worker, ATTRIBUTE, collector.attach())
    return collector.stats()


def detach_collector(worker: Any) -> dict[str, Any] | None:
    """Detach the worker's collector, if any; its final stats."""
    collector = getattr(worker, ATTRIBUTE, None)
    if collector is None:
        return None
    setattr(worker, ATTRIBUTE, None)
    return collector.detach()


class MonitorWorkerExtension:
    """Mixed into vLLM's worker; each method runs in every worker process."""

    def vlm_monitor_attach(self, settings: dict[str, Any]) -> dict[str, Any]:
        """Start scoring with ``settings`` (:meth:`VLLMCollectorSettings.to_dict`)."""
        return attach_collector(self, settings)

    def vlm_monitor_take(self, request_ids: list[str] | None = None) -> dict[str, Any]:
        """Remove and return results by request id; empty on a rank that does not report."""
        collector = getattr(self, ATTRIBUTE, None)
        if collector is None or not collector.primary:
            return {}
        return collector.take(request_ids)

    def vlm_monitor_peek(self, request_ids: list[str]) -> dict[str, Any]:
        """Results by request id, left in place (the response-header middleware reads them)."""
        collector = getattr(self, ATTRIBUTE, None)
        if collector is None or not collector.primary:
            return {}
        return collector.peek(request_ids)

    def vlm_monitor_stats(self) -> dict[str, Any] | None:
        """Counters and state of this worker's collector, or None when none is attached."""
        collector = getattr(self, ATTRIBUTE, None)
        return None if collector is None else collector.stats()

    def vlm_monitor_detach(self) -> dict[str, Any] | None:
        """Stop scoring; final stats."""
        return detach_collector(self)
