"""Alerts to external sinks through the store's outbox: stored first, delivered until taken.

The guarantee: every alert that reaches the store is delivered at least once to
each external sink (webhook, Kafka) once that sink accepts it, retried with
backoff (10 s doubling to 1 h) across daemon restarts, with each attempt bounded
in total by the sink's timeout. :class:`OutboxSink` stands in for an external
sink in :func:`monitor.alerts.sinks.build_sinks`: ``send`` only queues (it never
waits on the network), :meth:`OutboxSink.deliver` sends what is due; the daemon
calls it every few seconds and right after each drift run.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from monitor.alerts.dispatch import Alert
from monitor.alerts.sinks import alert_json

log = logging.getLogger(__name__)
BACKOFF_S = (10.0, 3600.0)


def _alert(payload: str) -> Alert:
    body = json.loads(payload)
    body.pop("schema", None)
    for key in ("statistic", "threshold"):
        body[key] = float("nan") if body.get(key) is None else body[key]
    return Alert(**body)


class OutboxSink:
    """Queue alerts for ``sink`` in the store; deliver them with retries.

    Parameters
    ----------
    store : monitor.store.database.Store
    name : str
        The sink's name in ``alerts.sinks`` (``"webhook"``, ``"kafka"``).
    sink : object with ``send(alert)``
        Raises on a failed delivery.
    backoff_s : (float, float)
        First and largest wait between attempts of one alert, seconds.
    """

    def __init__(
        self, store: Any, name: str, sink: Any, backoff_s: tuple[float, float] = BACKOFF_S
    ) -> None:
        self.store, self.name, self.sink, self.backoff_s = store, name, sink, backoff_s

    def send(self, alert: Alert) -> None:
        """Queue the alert (one row in the store's outbox)."""
        self.store.enqueue_alert(self.name, alert_json(alert).decode("utf-8"))

    def deliver(self, now: float | None = None, budget_s: float = 30.0) -> tuple[int, int]:
        """Send the due alerts, oldest first, for at most about ``budget_s`` seconds.

        Returns
        -------
        (int, int)
            Alerts delivered and attempts that failed in this call. After a failure
            the rest waits for the next call (the sink is likely down).
        """
        start = time.monotonic()
        delivered = failed = 0
        for row_id, payload, attempts in self.store.due_alerts(self.name, now or time.time()):
            if time.monotonic() - start > budget_s:
                break
            try:
                self.sink.send(_alert(payload))
            except Exception as exc:  # noqa: BLE001 - a failed delivery is retried later
                wait = min(self.backoff_s[1], self.backoff_s[0] * 2**attempts)
                self.store.mark_failed(row_id, str(exc), time.time() + wait)
                log.warning("alert delivery to %s failed (attempt %d, next in %.0f s): %s",
                            self.name, attempts + 1, wait, exc)  # fmt: skip
                failed += 1
                break
            self.store.mark_delivered(row_id, time.time())
            delivered += 1
        return delivered, failed

    def close(self) -> None:
        close = getattr(self.sink, "close", None)
        if callable(close):
            close()

    def __repr__(self) -> str:
        return f"OutboxSink({self.name!r}, {self.sink!r})"


def deliver_all(sinks: list[Any], budget_s: float = 30.0) -> tuple[int, int]:
    """:meth:`OutboxSink.deliver` on every outbox sink; summed (delivered, failed)."""
    total = [0, 0]
    for sink in sinks:
        if isinstance(sink, OutboxSink):
            d, f = sink.deliver(budget_s=budget_s)
            total[0] += d
            total[1] += f
    return total[0], total[1]
