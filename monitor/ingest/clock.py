"""Event times checked against the clocks that saw the event sent and received.

An event's ``ts`` is the collector's clock. The wire format bounds it to
[2000, 2100] (:data:`collectors.wire.events.MIN_TS`); inside that range one event
stamped years off would still move its subject's windows. The ingester checks
each event against two more clocks:

- **the Kafka record's timestamp** (the producer's clock at send for
  ``CreateTime`` topics, the broker's at append for ``LogAppendTime``): an
  event stamped more than ``max_lateness`` before its record was sent, or more
  than ``max_clock_skew`` after it, is a dead letter. This is the same decision
  on every replay of the topic, so a rebuilt store holds the same rows;
- **the ingester's own clock**, for the future only: ``ts`` more than
  ``max_clock_skew`` ahead of the time it is read cannot have been measured yet
  (also stable on replay, since the clock only moves forward).

A spilled event replayed after a broker outage is sent late by the length of
the outage: ``max_lateness`` (default 7 days) bounds how long an outage can be
before its events are dead-lettered rather than stored; their bytes stay in
``dead_letters``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

import numpy as np

from monitor.config.durations import parse_duration
from monitor.config.settings import StoreConfig
from monitor.ingest.decode import DecodedBatch
from monitor.ingest.rejects import reject_events


def _utc(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


@dataclass(frozen=True)
class EventClock:
    """Bounds on an event's ``ts`` relative to its record's time and the ingester's clock.

    Parameters
    ----------
    max_clock_skew_s : float
        Seconds an event may be stamped after its record's timestamp or the
        ingester's clock (clock skew between hosts).
    max_lateness_s : float
        Seconds an event may be stamped before its record's timestamp (queueing,
        spill replay after an outage).

    Raises
    ------
    ValueError
        A bound is negative or not finite.
    """

    max_clock_skew_s: float = 300.0
    max_lateness_s: float = 7 * 86_400.0

    def __post_init__(self) -> None:
        for name in ("max_clock_skew_s", "max_lateness_s"):
            value = getattr(self, name)
            if not (np.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")

    @classmethod
    def from_config(cls, store: StoreConfig) -> EventClock:
        """The bounds of a ``StoreConfig`` (``max_clock_skew``, ``max_lateness``)."""
        return cls(parse_duration(store.max_clock_skew), parse_duration(store.max_lateness))

    def check(self, batch: DecodedBatch, record_ms: np.ndarray, now: float) -> None:
        """Move events outside the bounds to ``batch.errors``, with the clocks compared.

        Parameters
        ----------
        batch : DecodedBatch
            Modified in place (:func:`monitor.ingest.rejects.reject_events`).
        record_ms : ndarray of shape (n_messages,), int64
            Each message's Kafka record timestamp, milliseconds since the Unix
            epoch; negative where the record carries none.
        now : float
            The ingester's clock, seconds since the Unix epoch.
        """
        if batch.events.num_rows == 0:
            return
        ts = np.asarray(batch.events.column("ts").to_numpy(), dtype=np.float64)
        sent_ms = np.asarray(record_ms, dtype=np.int64)[batch.event_positions]
        known = sent_ms >= 0
        sent = sent_ms / 1000.0
        ahead_now = ts > now + self.max_clock_skew_s
        ahead_sent = known & (ts > sent + self.max_clock_skew_s)
        late = known & (sent - ts > self.max_lateness_s)
        bad = ahead_now | ahead_sent | late
        reasons = []
        for row in np.flatnonzero(bad):
            when = _utc(ts[row])
            if ahead_now[row]:
                reasons.append(
                    f"field 'ts' {when} is {ts[row] - now:,.0f} s ahead of the ingester's "
                    f"clock (max_clock_skew {self.max_clock_skew_s:,.0f} s)"
                )
            elif ahead_sent[row]:
                reasons.append(
                    f"field 'ts' {when} is {ts[row] - sent[row]:,.0f} s after its record was "
                    f"sent at {_utc(sent[row])} (max_clock_skew {self.max_clock_skew_s:,.0f} s)"
                )
            else:
                reasons.append(
                    f"field 'ts' {when} is {sent[row] - ts[row]:,.0f} s before its record was "
                    f"sent at {_utc(sent[row])} (max_lateness {self.max_lateness_s:,.0f} s)"
                )
        reject_events(batch, bad, reasons)
