"""The configuration's schema: one pydantic model per section of ``config.yaml``.

The layout follows the reference article's configuration template
(``reliability_monitor:`` target_layer, probe, routing, monitoring, logging),
extended with ``model``, ``kafka``, ``store``, ``alerts``, ``metrics`` and
``retrain``. Unknown keys are errors, so a typo never silently falls back to a
default; every key is read somewhere. Loading and error messages:
:mod:`monitor.config.load`.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from collectors.routing.gate import gray_zone_samples
from monitor.config.assignment import AssignmentConfig
from monitor.config.monitoring import MonitoringConfig, PinnedReference
from monitor.config.strict import Strict

__all__ = ["Config", "MonitoringConfig", "PinnedReference", "ReliabilityMonitorConfig"]

PACKAGE_ROOT = Path(__file__).resolve().parents[2]
_TOPIC = re.compile(r"^[A-Za-z0-9._-]{1,249}$")


_Strict = Strict


class ProbeConfig(_Strict):
    dropout: float = Field(0.1, ge=0.0, lt=1.0)  # LayerNorm+Linear probes (retrain.probe)
    pooling: Literal["last_prompt_token", "mean_prompt_tokens", "mean_image_tokens"] = (
        "last_prompt_token"
    )


class RoutingConfig(_Strict):
    confidence_threshold: float = Field(0.72, ge=0.0, le=1.0)
    gray_zone_bounds: tuple[float, float] = (0.65, 0.80)
    gray_zone_action: str = "self_consistency_k5"

    @field_validator("gray_zone_action")
    @classmethod
    def _action(cls, v: str) -> str:
        gray_zone_samples(v)  # the collector's own parser: what check-config accepts, it runs
        return v

    @field_validator("gray_zone_bounds")
    @classmethod
    def _ordered(cls, v: tuple[float, float]) -> tuple[float, float]:
        lo, hi = v
        if not (0.0 <= lo <= hi <= 1.0):
            raise ValueError(f"must satisfy 0 <= low <= high <= 1, got [{lo}, {hi}]")
        return v


class AlertsConfig(_Strict):
    sinks: list[Literal["log", "store", "kafka", "webhook"]] = Field(
        default_factory=lambda: ["log", "store", "kafka"]
    )
    webhook_url: str | None = None
    webhook_timeout_s: float = Field(5.0, gt=0.0)
    cooldown: str = "6h"
    persistence_windows: int = Field(1, ge=1)

    @field_validator("cooldown")
    @classmethod
    def _cooldown(cls, v: str) -> str:
        from monitor.config.durations import parse_cooldown

        parse_cooldown(v)
        return v

    @model_validator(mode="after")
    def _webhook(self) -> AlertsConfig:
        if "webhook" in self.sinks and not self.webhook_url:
            raise ValueError("the webhook sink needs webhook_url")
        if self.webhook_url and not self.webhook_url.startswith(("http://", "https://")):
            raise ValueError(f"webhook_url must be http(s)://..., got {self.webhook_url!r}")
        return self


class MetricsConfig(_Strict):
    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = Field(9464, ge=0, le=65535)


class LoggingConfig(_Strict):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    capture_states: bool | float = False  # or the share of requests, in [0, 1], whose state is kept
    projection_dims: int | None = Field(None, ge=1)  # project captured states to k dims (random)
    projection_seed: int = 0
    alert_on_calibration_drift: bool = True

    @field_validator("capture_states")
    @classmethod
    def _rate(cls, v: bool | float) -> bool | float:
        if not isinstance(v, bool) and not 0.0 <= v <= 1.0:
            raise ValueError(f"must be true, false or a rate in [0, 1], got {v}")
        return v


class ModelConfig(_Strict):
    id: str = "shapes-llava"
    path: Path = PACKAGE_ROOT / "monitor" / "reference_vlm" / "hallucinating"
    device: str = "cpu"


class TopicsConfig(_Strict):
    events: str = "vlm-monitor.events"
    labels: str = "vlm-monitor.labels"
    alerts: str = "vlm-monitor.alerts"
    control: str = "vlm-monitor.control"
    heartbeats: str = "vlm-monitor.heartbeats"

    @field_validator("events", "labels", "alerts", "control", "heartbeats")
    @classmethod
    def _legal(cls, v: str) -> str:
        if v in (".", "..") or not _TOPIC.match(v):
            raise ValueError(f"not a Kafka topic name (1-249 of a-z A-Z 0-9 . _ -), got {v!r}")
        return v


class KafkaConfig(_Strict):
    bootstrap_servers: list[str] = Field(default_factory=lambda: ["127.0.0.1:9092"], min_length=1)
    client_id: str = "vlm-monitor"
    topics: TopicsConfig = Field(default_factory=TopicsConfig)
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    sasl_plain_username: str | None = None
    sasl_plain_password: str | None = None
    ssl_cafile: str | None = None
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None
    producer_queue_size: int = Field(10_000, ge=1)
    spill_path: Path | None = None  # local spill file behind the memory queue (None: no spill)
    spill_max_bytes: int = Field(256 * 2**20, ge=1)
    heartbeat_interval_s: float = Field(15.0, gt=0)  # collector heartbeats (emitter counters)
    wire_version: Literal[3, 4] = 4  # 4: MessagePack, raw fp16 states; 3: JSON (older monitors)
    # several ingesters sharing the topics' partitions, each with its own store file
    assignment: AssignmentConfig = Field(default_factory=AssignmentConfig)

    @field_validator("bootstrap_servers")
    @classmethod
    def _host_port(cls, v: list[str]) -> list[str]:
        for server in v:
            host, sep, port = server.rpartition(":")
            if not sep or not host or not port.isdigit():
                raise ValueError(f"expected host:port, got {server!r}")
        return v

    def client_kwargs(self) -> dict[str, Any]:
        """Keyword arguments shared by kafka-python's producer and consumer."""
        kwargs: dict[str, Any] = {
            "bootstrap_servers": list(self.bootstrap_servers),
            "client_id": self.client_id,
            "security_protocol": self.security_protocol,
        }
        optional = {
            "sasl_mechanism": self.sasl_mechanism,
            "sasl_plain_username": self.sasl_plain_username,
            "sasl_plain_password": self.sasl_plain_password,
            "ssl_cafile": self.ssl_cafile,
            "ssl_certfile": self.ssl_certfile,
            "ssl_keyfile": self.ssl_keyfile,
        }
        kwargs.update({k: v for k, v in optional.items() if v is not None})
        return kwargs


class StoreConfig(_Strict):
    path: Path = Path("vlm-monitor-data/monitor.duckdb")
    reports_dir: Path = Path("vlm-monitor-data/reports")
    # Parquet archive of events/states older than retention_days (0: keep all live)
    archive_dir: Path = Path("vlm-monitor-data/archive")
    retention_days: float = Field(30.0, ge=0.0)
    ingest_batch_size: int = Field(122_880, ge=1)  # records per transaction: a DuckDB row group
    ingest_linger_s: float = Field(0.5, ge=0.0)  # keep polling this long to fill a transaction
    # other ingesters' store files that detection, reports and review read with this one
    members: list[Path] = Field(default_factory=list)
    # an event's ts against its Kafka record's time and the ingester's clock (monitor.ingest.clock)
    max_clock_skew: str = "5m"
    max_lateness: str = "7d"

    @field_validator("max_clock_skew", "max_lateness")
    @classmethod
    def _duration(cls, v: str) -> str:
        from monitor.config.durations import parse_duration

        parse_duration(v)
        return v


class RetrainConfig(_Strict):
    """Retrain loop (:mod:`retrain`): probe refits, champion/challenger, triggers."""

    registry_dir: Path = Path("vlm-monitor-data/probes")  # versions + champion pointer
    probe: Literal["l2", "l1", "layernorm_linear"] = "l2"
    layers: list[int] | None = None  # stacked probe over these decoder layers; None: target_layer
    calibration: Literal["auto", "temperature", "isotonic"] = "auto"
    window: str = "7d"  # labelled traffic of the last window feeds a retrain
    min_labelled_samples: int = Field(500, ge=20)
    cooldown: str = "24h"  # no automatic retrain within this of the previous one
    schedule: str = "0 3 * * 0"  # used when monitoring.retrain_trigger is "scheduled"
    train_fraction: float = Field(0.6, gt=0.0, lt=1.0)
    calibration_fraction: float = Field(0.2, gt=0.0, lt=1.0)  # test split: the rest
    bootstrap_resamples: int = Field(500, ge=50)
    promotion_alpha: float = Field(0.001, gt=0.0, lt=1.0)  # rule 1: challenger AUROC > 0.5 test
    min_auroc: float = Field(0.6, ge=0.5, le=1.0)  # rule 1: and at least this AUROC
    # a change in the champion's log loss inside the window at this level: fit after it
    change_alpha: float | None = Field(0.01, gt=0.0, lt=1.0)
    seed: int = 0
    announce: bool = True  # publish promotions on the kafka control topic

    @field_validator("window")
    @classmethod
    def _window(cls, v: str) -> str:
        from monitor.config.durations import parse_duration

        parse_duration(v)
        return v

    @field_validator("cooldown")
    @classmethod
    def _cooldown(cls, v: str) -> str:
        from monitor.config.durations import parse_cooldown

        parse_cooldown(v)
        return v

    @field_validator("schedule")
    @classmethod
    def _schedule(cls, v: str) -> str:
        from monitor.config.durations import parse_schedule

        parse_schedule(v)
        return v

    @model_validator(mode="after")
    def _splits(self) -> RetrainConfig:
        if self.train_fraction + self.calibration_fraction >= 1.0:
            raise ValueError("train_fraction + calibration_fraction must leave a test split")
        return self


class ReliabilityMonitorConfig(_Strict):
    family: str | None = (
        None  # collectors.model.registry key; None: detected from config.model_type
    )
    target_layer: int = Field(3, ge=0)
    probe: ProbeConfig = Field(default_factory=ProbeConfig)
    routing: RoutingConfig = Field(default_factory=RoutingConfig)
    monitoring: MonitoringConfig = Field(default_factory=MonitoringConfig)
    logging: LoggingConfig = Field(default_factory=LoggingConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    kafka: KafkaConfig = Field(default_factory=KafkaConfig)
    store: StoreConfig = Field(default_factory=StoreConfig)
    alerts: AlertsConfig = Field(default_factory=AlertsConfig)
    metrics: MetricsConfig = Field(default_factory=MetricsConfig)
    retrain: RetrainConfig = Field(default_factory=RetrainConfig)


class Config(_Strict):
    """Root of ``config.yaml``: a single ``reliability_monitor`` key."""

    reliability_monitor: ReliabilityMonitorConfig = Field(default_factory=ReliabilityMonitorConfig)
    base_dir: Path = Field(default_factory=Path.cwd, exclude=True)

    @model_validator(mode="after")
    def _resolve_paths(self) -> Config:
        rm = self.reliability_monitor
        resolved = {
            "model": rm.model.model_copy(update={"path": _resolve(self.base_dir, rm.model.path)}),
            "store": rm.store.model_copy(
                update={
                    "path": _resolve(self.base_dir, rm.store.path),
                    "reports_dir": _resolve(self.base_dir, rm.store.reports_dir),
                    "archive_dir": _resolve(self.base_dir, rm.store.archive_dir),
                }
            ),
            "retrain": rm.retrain.model_copy(
                update={"registry_dir": _resolve(self.base_dir, rm.retrain.registry_dir)}
            ),
        }
        kafka = rm.kafka
        tls = {}
        for key in ("ssl_cafile", "ssl_certfile", "ssl_keyfile"):
            value = getattr(kafka, key)
            if value is not None:
                path = _resolve(self.base_dir, Path(value))
                if not path.is_file():
                    raise ValueError(f"reliability_monitor.kafka.{key}: no such file {path}")
                tls[key] = str(path)
        if tls:
            resolved["kafka"] = kafka.model_copy(update=tls)
        object.__setattr__(self, "reliability_monitor", rm.model_copy(update=resolved))
        return self


def _resolve(base: Path, path: Path) -> Path:
    return path if path.is_absolute() else (base / path).resolve()
