"""What the collector inside a vLLM worker serves, as plain data that crosses processes.

vLLM runs the model in worker processes that it spawns; the settings reach them
either as the argument of an RPC (offline ``vllm.LLM``, :mod:`collectors.vllm.offline`)
or, for ``vllm serve``, through the environment variable :data:`ENV` (JSON text, or
the path of a JSON file), which the plugin (:mod:`collectors.vllm.plugin`) reads in
every worker.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from collectors.model.pooling import POOLINGS
from collectors.probe.linear import LinearProbe
from collectors.probe.registry import ProbeRegistryReader

ENV = "VLM_MONITOR_VLLM"


class SettingsError(ValueError):
    """Collector settings that cannot be served, naming the field and the value."""


@dataclass
class VLLMCollectorSettings:
    """Settings of the collector inside vLLM's workers.

    Attributes
    ----------
    probe_path : str, optional
        A probe JSON file (:meth:`LinearProbe.save`).
    registry_dir : str, optional
        A probe registry: serve its champion and follow promotions (hot reload inside
        the worker). One of ``probe_path`` and ``registry_dir`` is required.
    model_id : str
        Name stamped on events.
    layer : int or "auto", optional
        Decoder layer overriding the probe's.
    family : str, optional
        Architecture registry key overriding detection by ``model_type``.
    capture_states : float
        Share of requests, in [0, 1], whose pooled state is kept on the event.
    confidence_threshold : float
        Routing gate threshold, probability.
    gray_zone_bounds : list of two floats
        Routing gate gray zone, probabilities.
    emit : bool
        Emit events to Kafka from the worker (``vllm serve``). Offline callers usually
        emit from their own process, with the answer text.
    topic : str
        Events topic.
    kafka : dict
        kafka-python client settings (``bootstrap_servers``, security, ...).
    spill_path : str, optional
        The emitter's spill file (one per worker process: ``{rank}`` is replaced).
    control_topic : str, optional
        Kafka control topic announcing promotions (immediate reload).
    poll_s : float
        Seconds between reads of the registry's champion pointer.
    keep_results : int
        Scores kept in the worker for callers to take (oldest dropped first).
    seed : int
        Seed of the state-capture sampler.
    """

    probe_path: str | None = None
    registry_dir: str | None = None
    model_id: str = "model"
    layer: int | str | None = None
    family: str | None = None
    capture_states: float = 0.0
    confidence_threshold: float = 0.72
    gray_zone_bounds: list[float] = field(default_factory=lambda: [0.65, 0.80])
    emit: bool = False
    topic: str = "vlm-monitor.events"
    kafka: dict[str, Any] = field(default_factory=dict)
    spill_path: str | None = None
    control_topic: str | None = None
    poll_s: float = 5.0
    keep_results: int = 10_000
    seed: int = 0

    def __post_init__(self) -> None:
        if (self.probe_path is None) == (self.registry_dir is None):
            raise SettingsError("give exactly one of probe_path and registry_dir")
        if not 0.0 <= float(self.capture_states) <= 1.0:
            raise SettingsError(f"capture_states must be in [0, 1], got {self.capture_states}")
        if len(self.gray_zone_bounds) != 2:
            raise SettingsError(f"gray_zone_bounds needs two values, got {self.gray_zone_bounds}")
        if self.emit and not self.kafka.get("bootstrap_servers"):
            raise SettingsError("emit=True needs kafka.bootstrap_servers")
        if int(self.keep_results) < 1:
            raise SettingsError(f"keep_results must be >= 1, got {self.keep_results}")

    def to_dict(self) -> dict[str, Any]:
        """Plain data (JSON-serialisable) for an RPC or :data:`ENV`."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> VLLMCollectorSettings:
        """Build from :meth:`to_dict` output.

        Raises
        ------
        SettingsError
            An unknown key, or a value :meth:`__post_init__` refuses.
        """
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise SettingsError(f"unknown collector settings {unknown}; known: {sorted(known)}")
        return cls(**data)

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> VLLMCollectorSettings | None:
        """Settings from :data:`ENV` (JSON text or a JSON file's path), or None when unset.

        Raises
        ------
        SettingsError
            Not JSON, not an object, or refused by :meth:`from_dict`.
        """
        raw = (os.environ if environ is None else environ).get(ENV, "").strip()
        if not raw:
            return None
        text = raw if raw.startswith(("{", "[")) else _read(raw)
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise SettingsError(f"{ENV} is not valid JSON: {exc}") from None
        if not isinstance(data, dict):
            raise SettingsError(f"{ENV} must hold a JSON object, got {type(data).__name__}")
        return cls.from_dict(data)

    def emitter(self, rank: int = 0) -> Any:
        """A :class:`KafkaEmitter` for the events topic (``{rank}`` in ``spill_path`` replaced).

        Raises
        ------
        ValueError, OSError
            As :class:`KafkaEmitter`.
        """
        from collectors.transport.emitter import KafkaEmitter

        spill = None if self.spill_path is None else self.spill_path.replace("{rank}", str(rank))
        return KafkaEmitter(self.topic, spill_path=spill, **self.kafka)

    def load_probe(self) -> LinearProbe:
        """The probe to serve first: the file, or the registry's champion.

        Raises
        ------
        SettingsError
            The registry has no champion, or the probe's pooling is unknown.
        ProbeFileError, OSError
            The probe file is missing or invalid.
        """
        if self.probe_path is not None:
            probe = LinearProbe.load(self.probe_path)
        else:
            probe = ProbeRegistryReader(str(self.registry_dir)).champion()
            if probe is None:
                raise SettingsError(f"probe registry {self.registry_dir} has no champion")
        if probe.pooling not in POOLINGS:
            raise SettingsError(f"probe {probe.version!r} has unknown pooling {probe.pooling!r}")
        return probe


def _read(path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SettingsError(f"{ENV} names {path!r}, which cannot be read: {exc}") from None
