"""Alert sinks that leave the process: an HTTP webhook and the Kafka alerts topic.

Both send :meth:`monitor.alerts.dispatch.Alert.as_dict` as UTF-8 JSON (``allow_nan=False``:
a NaN statistic, as in a detector-error alert, becomes ``null``). A failed
delivery raises from ``send``; :func:`monitor.alerts.dispatch.send_alerts` logs it and
goes on with the other sinks. :func:`build_sinks` assembles the sinks named in
``reliability_monitor.alerts.sinks``; with a store, the external ones (webhook,
Kafka) go through its outbox (:mod:`monitor.alerts.outbox`). Webhook URLs are
logged redacted (:func:`redact`): their path is often the secret.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from monitor.alerts.dispatch import Alert, AlertSink, LogAlertSink, StoreAlertSink
from monitor.config.settings import Config, KafkaConfig

log = logging.getLogger(__name__)


class AlertDeliveryError(RuntimeError):
    """An alert could not be delivered to a sink (HTTP error, broker error, timeout)."""


def alert_json(alert: Alert) -> bytes:
    """The alert as UTF-8 JSON bytes, NaN as ``null``."""
    body = {
        k: (None if isinstance(v, float) and math.isnan(v) else v)
        for k, v in alert.as_dict().items()
    }
    return json.dumps(body, allow_nan=False, separators=(",", ":")).encode("utf-8")


class WebhookAlertSink:
    """HTTP POST of each alert as JSON (``Content-Type: application/json``).

    Parameters
    ----------
    url : str
        ``http://`` or ``https://`` endpoint (a Slack or PagerDuty relay, ...).
    timeout_s : float, default 5.0
        Connect and read timeout per request, seconds.
    headers : dict of str -> str, optional
        Extra request headers (e.g. an ``Authorization`` token).

    Raises
    ------
    ValueError
        ``url`` is not http(s).
    """

    def __init__(
        self, url: str, timeout_s: float = 5.0, headers: dict[str, str] | None = None
    ) -> None:
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"webhook url must start with http:// or https://, got {redact(url)}")
        self.url = url
        self.display_url = redact(url)
        self.timeout_s = timeout_s
        self.headers = {"Content-Type": "application/json", **(headers or {})}

    def send(self, alert: Alert) -> None:
        """POST the alert.

        Raises
        ------
        AlertDeliveryError
            A non-2xx status, a connection error or a timeout.
        """
        request = urllib.request.Request(
            self.url, data=alert_json(alert), headers=self.headers, method="POST"
        )
        result: dict[str, Any] = {}

        def post() -> None:  # urllib's timeout bounds each socket read, not the whole call
            try:
                with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                    response.read(1 << 16)
                    result["status"] = response.status
            except BaseException as exc:  # noqa: BLE001 - handed to the caller below
                result["error"] = exc

        worker = threading.Thread(target=post, name="webhook", daemon=True)
        worker.start()
        worker.join(self.timeout_s)
        where = f"webhook {self.display_url}"
        exc = result.get("error")
        # the join and urllib's own socket timeout end together: either is the same timeout
        if worker.is_alive() or isinstance(getattr(exc, "reason", exc), TimeoutError):
            raise AlertDeliveryError(f"{where} did not answer within {self.timeout_s:g} s")
        if isinstance(exc, urllib.error.HTTPError):
            raise AlertDeliveryError(f"{where} answered HTTP {exc.code}") from None
        if exc is not None:
            reason = getattr(exc, "reason", exc)
            raise AlertDeliveryError(
                f"{where} unreachable: {type(exc).__name__}: {reason}"
            ) from None
        if not 200 <= result["status"] < 300:
            raise AlertDeliveryError(f"{where} answered HTTP {result['status']}")

    def __repr__(self) -> str:
        return f"WebhookAlertSink({self.display_url!r})"


def redact(url: str) -> str:
    """``scheme://host[:port]/…``: the path and query of a webhook URL are often its secret.

    >>> redact("https://hooks.slack.com/services/T000/B000/XXXX?token=1")
    'https://hooks.slack.com/…'
    """
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}/…" if parts.scheme else "<url>"


class KafkaAlertSink:
    """Produce each alert to the Kafka alerts topic, keyed by its subject.

    The producer is created on the first alert, so building the sink never
    blocks; each ``send`` waits for the broker's acknowledgement.

    Parameters
    ----------
    kafka : KafkaConfig
        Broker address, security settings and ``topics.alerts``.
    timeout_s : float, default 10.0
        How long to wait for the acknowledgement, seconds.
    """

    def __init__(self, kafka: KafkaConfig, timeout_s: float = 10.0) -> None:
        self.kafka = kafka
        self.topic = kafka.topics.alerts
        self.timeout_s = timeout_s
        self._producer: Any = None

    def send(self, alert: Alert) -> None:
        """Produce the alert and wait for the ack.

        Raises
        ------
        AlertDeliveryError
            The broker is unreachable or did not acknowledge in time.
        """
        from kafka import KafkaProducer
        from kafka.errors import KafkaError

        try:
            if self._producer is None:
                kwargs = self.kafka.client_kwargs()
                self._ensure_topic(kwargs)
                ms = int(self.timeout_s * 1000)
                self._producer = KafkaProducer(
                    acks="all", request_timeout_ms=ms, max_block_ms=ms, **kwargs
                )
            future = self._producer.send(
                self.topic, value=alert_json(alert), key=alert.subject.encode("utf-8")
            )
            future.get(timeout=self.timeout_s)
        except KafkaError as exc:
            raise AlertDeliveryError(f"kafka alerts topic {self.topic!r}: {exc!r}") from exc

    def _ensure_topic(self, kwargs: dict[str, Any]) -> None:
        """Create the alerts topic if missing (a broker without auto-create would block)."""
        from monitor.ingest.admin import ensure_topics

        try:
            ensure_topics(kwargs, [self.topic])
        except Exception as exc:  # noqa: BLE001 - the send below reports the real failure
            log.warning("could not ensure alerts topic %r: %r", self.topic, exc)

    def close(self) -> None:
        """Close the producer (idempotent)."""
        if self._producer is not None:
            self._producer.close(timeout=self.timeout_s)
            self._producer = None

    def __repr__(self) -> str:
        return f"KafkaAlertSink({self.topic!r})"


def build_sinks(cfg: Config, store: Any) -> list[AlertSink]:
    """The sinks named in ``reliability_monitor.alerts.sinks``, in that order.

    Raises
    ------
    ValueError
        ``webhook`` is listed without ``webhook_url`` (also caught by the config).
    """
    rm = cfg.reliability_monitor
    sinks: list[AlertSink] = []
    for name in rm.alerts.sinks:
        if name == "log":
            sinks.append(LogAlertSink())
        elif name == "store":
            sinks.append(StoreAlertSink(store))
        elif name == "kafka":
            sinks.append(_outbox(store, name, KafkaAlertSink(rm.kafka)))
        elif name == "webhook":
            if not rm.alerts.webhook_url:
                raise ValueError("alerts.sinks lists webhook but alerts.webhook_url is not set")
            webhook = WebhookAlertSink(rm.alerts.webhook_url, rm.alerts.webhook_timeout_s)
            sinks.append(_outbox(store, name, webhook))
    return sinks


def _outbox(store: Any, name: str, sink: Any) -> Any:
    """External sinks go through the store's outbox when the store has one."""
    if store is None or not hasattr(store, "enqueue_alert"):
        return sink
    from monitor.alerts.outbox import OutboxSink

    return OutboxSink(store, name, sink)


def close_sinks(sinks: list[AlertSink]) -> None:
    """Close the sinks that hold a connection."""
    for sink in sinks:
        close = getattr(sink, "close", None)
        if callable(close):
            try:
                close()
            except Exception:  # noqa: BLE001 - shutting down anyway
                log.warning("closing %r failed", sink, exc_info=True)
