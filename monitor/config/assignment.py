"""The static partition share of one ingester among several (``kafka.assignment``)."""

from __future__ import annotations

from pydantic import Field, model_validator

from monitor.config.strict import Strict as _Strict

__all__ = ["AssignmentConfig"]


class AssignmentConfig(_Strict):
    """Static partition assignment: this ingester takes partition ``p`` of both topics
    when ``p % members == member`` (``monitor.ingest.assignment``)."""

    member: int = Field(0, ge=0)
    members: int = Field(1, ge=1)

    @model_validator(mode="after")
    def _member_in_range(self) -> AssignmentConfig:
        if self.member >= self.members:
            raise ValueError(f"member must be in 0..{self.members - 1}, got {self.member}")
        return self
