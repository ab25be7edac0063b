"""The collector inside vLLM: per-request probe scores where production VLMs are served.

Offline ``vllm.LLM``::

    llm = LLM(model_dir, **monitored_llm_kwargs())
    collector = VLLMCollector(llm, VLLMCollectorSettings(probe_path="probe.json"))
    scores = collector.collect(llm.generate(requests, params))

``vllm serve``: set ``VLM_MONITOR_VLLM`` (settings as JSON, ``emit: true``) and pass
``--enforce-eager``; the plugin attaches the collector in every worker and events
reach Kafka keyed by the client's request id. See ``docs/vllm.md``. Nothing here
imports vLLM at module import; names load lazily (PEP 562).
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "collectors.vllm.offline": ("VLLMCollector", "monitored_llm_kwargs"),
    "collectors.vllm.settings": ("ENV", "SettingsError", "VLLMCollectorSettings"),
    "collectors.vllm.extension": ("EXTENSION", "MonitorWorkerExtension"),
    "collectors.vllm.worker": ("WorkerCollector",),
}
_WHERE = {name: module for module, names in _EXPORTS.items() for name in names}
__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'collectors.vllm' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
