"""``reliability_monitor.monitoring``: windows, schedules, detector thresholds, references."""

from __future__ import annotations

import math
from typing import Literal

from pydantic import Field, field_validator, model_validator

from monitor.config.strict import Strict as _Strict


class PinnedReference(_Strict):
    """A fixed reference range (ISO 8601 times, e.g. ``"2026-11-02T00:00:00Z"``)."""

    start: str
    end: str

    def bounds(self) -> tuple[float, float]:
        """``(start, end)``, seconds since the Unix epoch."""
        from datetime import datetime, timezone

        def ts(v: str) -> float:
            t = datetime.fromisoformat(v.replace("Z", "+00:00"))
            return (t if t.tzinfo else t.replace(tzinfo=timezone.utc)).timestamp()

        return ts(self.start), ts(self.end)

    @model_validator(mode="after")
    def _ordered(self) -> PinnedReference:
        try:
            start, end = self.bounds()
        except ValueError as exc:
            raise ValueError(f"start and end must be ISO 8601 times: {exc}") from None
        if not start < end:
            raise ValueError(f"start {self.start} must be before end {self.end}")
        return self


class MonitoringConfig(_Strict):
    drift_detection_interval: str = "weekly"
    kl_divergence_threshold: float = Field(0.15, gt=0.0)
    kl_bins: int = Field(10, ge=2, le=1000)
    kl_epsilon: float = Field(1e-4, gt=0.0, lt=1.0)
    ece_threshold: float = Field(0.10, gt=0.0, le=1.0)
    ece_bins: int = Field(15, ge=2, le=1000)
    min_window_events: int = Field(100, ge=1)
    retrain_trigger: Literal["auto", "manual", "scheduled"] = "auto"
    # windows, schedules and per-detector thresholds (monitor.detection)
    detection_window: str = "7d"
    reference_window: str = "7d"
    report_schedule: str = "0 6 * * 1"
    psi_threshold: float = Field(0.2, gt=0.0)
    js_threshold: float = Field(0.1, gt=0.0, le=1.0)
    ks_alpha: float = Field(0.01, gt=0.0, lt=1.0)
    mmd_alpha: float = Field(0.01, gt=0.0, lt=1.0)
    mmd_permutations: int = Field(200, ge=20)
    state_pca_components: int = Field(32, ge=1)
    state_max_samples: int = Field(1000, ge=10)
    domain_auroc_threshold: float = Field(0.65, gt=0.5, le=1.0)
    # alerts from a false-alarm rate: p < alpha under a resampled null, and the thresholds
    # above as floors on the effect (KL, PSI, JS, domain classifier); null: thresholds alone
    false_alarm_rate: float | None = Field(0.01, gt=0.0, lt=1.0)
    null_resamples: int = Field(1000, ge=100)
    # pooled-state drift against the model's reference across probe versions ("model"), or
    # each version's own first traffic ("probe"); pinned ranges per model id take precedence
    state_reference: Literal["model", "probe"] = "model"
    pinned_references: dict[str, PinnedReference] = Field(default_factory=dict)
    accuracy_drop_threshold: float = Field(0.05, gt=0.0, le=1.0)
    bootstrap_resamples: int = Field(200, ge=0)
    # KS, the adaptive ECE and the bootstrap intervals read at most this many values per
    # window (a fixed hash sample); bin counts, ECE, Brier and estimates are exact in SQL
    sample_rows: int = Field(100_000, ge=100)

    @field_validator("drift_detection_interval", "report_schedule")
    @classmethod
    def _schedule(cls, v: str) -> str:
        from monitor.config.durations import parse_schedule

        parse_schedule(v)
        return v

    @field_validator("detection_window", "reference_window")
    @classmethod
    def _duration(cls, v: str) -> str:
        from monitor.config.durations import parse_duration

        parse_duration(v)
        return v

    @model_validator(mode="after")
    def _permutations_reach_alpha(self) -> MonitoringConfig:
        if self.mmd_permutations + 1 <= 1 / self.mmd_alpha:
            raise ValueError(
                f"mmd_permutations={self.mmd_permutations} cannot reach a p-value below "
                f"mmd_alpha={self.mmd_alpha}: use at least {math.ceil(1 / self.mmd_alpha)}"
            )
        return self
