"""What a running ingester does besides ingesting: retention and the live status snapshot.

The same for ``vlm-monitor ingest`` and the daemon (``vlm-monitor run``): events
and states older than ``store.retention_days`` move to the Parquet archive once
an hour, and every couple of seconds the store's counts, offsets and the
ingester's rate and lag are written beside the store file, so ``vlm-monitor
status`` can answer while this process holds DuckDB's one writer lock.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any

from monitor.ingest.progress import IngestProgress
from monitor.service.status import collect, snapshot_path, write_snapshot

log = logging.getLogger(__name__)
SNAPSHOT_EVERY_S = 2.0
RETENTION_EVERY_S = 3600.0


class Housekeeping:
    """Retention and the status snapshot, driven by the ingester's polls.

    Parameters
    ----------
    store : monitor.store.database.Store
    store_config : StoreConfig
        ``retention_days`` and ``path`` (the snapshot lies beside it).
    progress : IngestProgress
        Updated by the caller on every poll.
    snapshot_every_s, retention_every_s : float
        Seconds between snapshots and between retention passes.
    """

    def __init__(
        self,
        store: Any,
        store_config: Any,
        progress: IngestProgress,
        snapshot_every_s: float = SNAPSHOT_EVERY_S,
        retention_every_s: float = RETENTION_EVERY_S,
    ) -> None:
        self.store, self.config, self.progress = store, store_config, progress
        self.snapshot_every_s, self.retention_every_s = snapshot_every_s, retention_every_s
        self.path = snapshot_path(store_config.path)
        self._last = {"snapshot": float("-inf"), "retention": float("-inf")}

    def tick(self) -> None:
        """Run whatever is due; call after each poll (and once before the first)."""
        now = time.monotonic()
        days = self.config.retention_days
        if days > 0 and now - self._last["retention"] > self.retention_every_s:
            self._last["retention"] = now
            result = self.store.archive(days)
            if result.n_events:
                log.info("archived %d events, %d states before %s to %s", result.n_events,
                         result.n_states, result.cutoff, self.store.archive_dir)  # fmt: skip
        if now - self._last["snapshot"] > self.snapshot_every_s:
            self._last["snapshot"] = now
            self.snapshot(running=True)

    def snapshot(self, running: bool) -> None:
        """Write the status snapshot now (``running=False`` when the ingester stopped)."""
        progress = self.progress
        msg_s, _ = progress.rates()
        status = collect(self.store, detailed=False)
        status["ingest"] = {
            "pid": os.getpid(),
            "running": running,
            "messages_per_s": msg_s,
            "n_messages": progress.totals.n_messages,
            "lag": [[t, p, n] for (t, p), n in sorted(progress.lag.items())],
        }
        for row in status["offsets"]:
            n = progress.lag.get((row["topic"], row["partition"]))
            if n is not None:
                row["lag"] = n
        write_snapshot(self.path, status)
