"""The base of every configuration section: unknown keys are errors, values frozen."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Strict(BaseModel):
    """A pydantic model that forbids unknown keys and is immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)
