"""When an alert is sent: deduplication, cooldown and persistence over N windows.

An alert is identified by its detector and subject. Before it reaches the sinks:

1. **persistence** - with ``persistence_windows = N > 1``, the last N stored runs
   of that detector on that subject (runs without enough data skipped) must all
   have drifted; one noisy window does not page anyone. Detector errors skip
   this rule.
2. **deduplication** - an alert for a window already alerted on (same detector,
   subject and ``ts``) is dropped, as is a second one for the same pair in one batch.
3. **cooldown** - within ``cooldown_s`` seconds (event time, the alerts' ``ts``)
   of the previous alert for the pair, a new one is dropped unless its severity
   is higher (a warning that became critical still goes out).

State is read back from DuckDB (``detector_runs`` and ``alerts``, via
:mod:`monitor.store.queries`), so a restarted daemon keeps its cooldowns; alerts sent
by this process are also remembered in memory, for configurations without the
store sink.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from monitor.alerts.dispatch import SEVERITY_RANK, Alert
from monitor.store import alert_queries

log = logging.getLogger(__name__)


@dataclass
class Decision:
    """Outcome of :meth:`AlertPolicy.decide`.

    Attributes
    ----------
    send : list of Alert
        Alerts to deliver.
    suppressed : list of (Alert, str)
        Alerts held back, with the rule that held them (``"persistence 1/3"``,
        ``"duplicate"``, ``"cooldown"``).
    """

    send: list[Alert] = field(default_factory=list)
    suppressed: list[tuple[Alert, str]] = field(default_factory=list)


class AlertPolicy:
    """Deduplication, cooldown and persistence in front of the alert sinks.

    Parameters
    ----------
    store : Store
        Holds ``detector_runs`` (for persistence) and ``alerts`` (for cooldown).
    cooldown_s : float, default 0.0
        Minimum event-time gap between two alerts of one detector and subject, seconds.
    persistence_windows : int, default 1
        Consecutive drifting runs needed before alerting.

    Raises
    ------
    ValueError
        ``cooldown_s < 0`` or ``persistence_windows < 1``.
    """

    def __init__(self, store: Any, cooldown_s: float = 0.0, persistence_windows: int = 1) -> None:
        if cooldown_s < 0:
            raise ValueError(f"cooldown_s must be >= 0, got {cooldown_s}")
        if int(persistence_windows) < 1:
            raise ValueError(f"persistence_windows must be >= 1, got {persistence_windows}")
        self.store = store
        self.cooldown_s = float(cooldown_s)
        self.persistence_windows = int(persistence_windows)
        self._sent: dict[tuple[str, str], tuple[float, str]] = {}

    def decide(self, alerts: Sequence[Alert]) -> Decision:
        """Split alerts into those to send and those held back (see the module docstring).

        The detector runs of the current window must already be stored.
        """
        decision = Decision()
        batch: set[tuple[str, str]] = set()
        for alert in alerts:
            key = (alert.detector, alert.subject)
            reason = self._hold(alert, key, batch)
            if reason is None:
                decision.send.append(alert)
                batch.add(key)
                self._sent[key] = (alert.ts, alert.severity)
            else:
                decision.suppressed.append((alert, reason))
                log.info("alert held back (%s): %s", reason, alert.log_line())
        return decision

    def _hold(self, alert: Alert, key: tuple[str, str], batch: set[tuple[str, str]]) -> str | None:
        if key in batch:
            return "duplicate"
        n = self.persistence_windows
        if n > 1 and alert.kind != "detector_error":
            flags = alert_queries.recent_drift_flags(self.store, alert.detector, alert.subject, n)
            streak = next((i for i, f in enumerate(flags) if not f), len(flags))
            if streak < n:
                return f"persistence {streak}/{n}"
        previous = self._previous(key, alert)
        if previous is None:
            return None
        last_ts, last_severity = previous
        if last_ts == alert.ts:
            return "duplicate"
        escalated = SEVERITY_RANK[alert.severity] > SEVERITY_RANK.get(last_severity, 0)
        if alert.ts - last_ts < self.cooldown_s and not escalated:
            return "cooldown"
        return None

    def _previous(self, key: tuple[str, str], alert: Alert) -> tuple[float, str] | None:
        """Newest earlier-or-equal alert of this pair: stored or sent by this process."""
        candidates = []
        stored = alert_queries.last_alert(self.store, *key)
        if stored is not None:
            candidates.append((float(stored["ts"]), str(stored["severity"])))
        if key in self._sent:
            candidates.append(self._sent[key])
        candidates = [c for c in candidates if c[0] <= alert.ts]
        return max(candidates, default=None)
