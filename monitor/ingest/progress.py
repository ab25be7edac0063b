"""Throughput, totals and lag of a running ingester (``vlm-monitor ingest``, the daemon)."""

from __future__ import annotations

import time
from collections import deque

from rich.table import Table

from monitor.ingest.consumer import IngestStats


class IngestProgress:
    """Rates over a sliding window of polls, running totals, and lag per topic.

    Parameters
    ----------
    window_s : float
        Width of the window the rates are averaged over, seconds.
    """

    def __init__(self, window_s: float = 5.0) -> None:
        self.window_s = window_s
        self.started = time.monotonic()
        self.totals = IngestStats()
        self.last_message_at = self.started
        self.lag: dict[tuple[str, int], int] = {}
        self._recent: deque[tuple[float, int, int]] = deque()

    def update(self, stats: IngestStats, lag: dict[tuple[str, int], int] | None = None) -> None:
        """Add one poll's stats (and the ingester's current lag)."""
        now = time.monotonic()
        self.totals = self.totals + stats
        if stats.n_messages:
            self.last_message_at = now
        self._recent.append((now, stats.n_messages, stats.n_events))
        while self._recent and now - self._recent[0][0] > self.window_s:
            self._recent.popleft()
        if lag is not None:
            self.lag = lag

    def rates(self) -> tuple[float, float]:
        """Messages and stored events per second over the window."""
        if not self._recent:
            return 0.0, 0.0
        span = max(time.monotonic() - self._recent[0][0], 1e-3)
        span = max(span, min(self.window_s, time.monotonic() - self.started))
        return (
            sum(r[1] for r in self._recent) / span,
            sum(r[2] for r in self._recent) / span,
        )

    def idle_s(self) -> float:
        """Seconds since the last poll that returned messages (or since the start)."""
        return time.monotonic() - self.last_message_at

    def lag_by_topic(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for (topic, _), n in sorted(self.lag.items()):
            out[topic] = out.get(topic, 0) + n
        return out

    def line(self) -> str:
        """One plain-text progress line (for logs and non-terminal output)."""
        msg_s, ev_s = self.rates()
        t = self.totals
        lag = ", ".join(f"{k} {v:,}" for k, v in self.lag_by_topic().items()) or "?"
        return (
            f"{msg_s:,.0f} msg/s ({ev_s:,.0f} events/s); total {t.n_messages:,} messages: "
            f"{t.n_events:,} events, {t.n_labels:,} labels, {t.n_states:,} states, "
            f"{t.n_dead:,} dead letters, {t.n_duplicates:,} duplicates; lag {lag}"
        )

    def table(self, title: str = "vlm-monitor ingest") -> Table:
        """A rich table of the same figures."""
        msg_s, ev_s = self.rates()
        t = self.totals
        table = Table(title=title, show_header=False, min_width=50)
        table.add_row("throughput", f"{msg_s:,.0f} messages/s  ({ev_s:,.0f} events/s)")
        table.add_row("elapsed", f"{time.monotonic() - self.started:,.0f} s")
        table.add_row("messages", f"{t.n_messages:,}")
        table.add_row("events / states", f"{t.n_events:,} / {t.n_states:,}")
        table.add_row("labels", f"{t.n_labels:,}")
        table.add_row("dead letters", f"{t.n_dead:,}")
        table.add_row("duplicates ignored", f"{t.n_duplicates:,}")
        for topic, n in self.lag_by_topic().items():
            table.add_row(f"lag {topic}", f"{n:,} messages")
        return table
