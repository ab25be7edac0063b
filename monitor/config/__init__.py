"""Configuration: ``config.yaml`` validated with pydantic, durations and schedules."""
