"""Keep the configuration's secrets out of every log line.

:class:`RedactSecrets` is a ``logging.Filter`` installed on the root handlers by
the CLI: any record whose text contains the SASL password, the TLS key password
or the webhook URL's secret path gets those strings replaced by ``***``, whatever
library logged them (kafka-python logs its whole client config at DEBUG).
"""

from __future__ import annotations

import logging
import urllib.parse
from typing import Any


def secrets_of(cfg: Any) -> list[str]:
    """The secret strings of a :class:`monitor.config.settings.Config` (non-empty only)."""
    rm = cfg.reliability_monitor
    found = [rm.kafka.sasl_plain_password or ""]
    url = rm.alerts.webhook_url or ""
    if url:
        parts = urllib.parse.urlsplit(url)
        found += [url, parts.path if len(parts.path) > 1 else "", parts.query, parts.password or ""]
    return sorted({s for s in found if len(s) >= 4}, key=len, reverse=True)


class RedactSecrets(logging.Filter):
    """Replace each secret in a record's final message by ``***`` (the record is rewritten)."""

    def __init__(self, secrets: list[str]) -> None:
        super().__init__()
        self.secrets = [s for s in secrets if s]

    def filter(self, record: logging.LogRecord) -> bool:
        if not self.secrets:
            return True
        text = record.getMessage()
        clean = text
        for secret in self.secrets:
            clean = clean.replace(secret, "***")
        if clean != text:
            record.msg, record.args = clean, None
        return True


def install(cfg: Any) -> None:
    """Add a :class:`RedactSecrets` for ``cfg`` to every root handler (idempotent per handler)."""
    secrets = secrets_of(cfg)
    for handler in logging.getLogger().handlers:
        handler.filters = [f for f in handler.filters if not isinstance(f, RedactSecrets)]
        handler.addFilter(RedactSecrets(secrets))
