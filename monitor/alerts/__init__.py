"""Alerts: from detector results to deduplicated, rate-limited messages on sinks."""
