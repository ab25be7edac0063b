"""Keep a daemon thread's work running: restart it with exponential backoff when it dies.

A worker that raises (or returns while the daemon is not stopping) is reported
through ``on_failure`` (the daemon alerts, counts and logs it) and started again
after a backoff that doubles from ``backoff_s[0]`` to ``backoff_s[1]`` seconds and
resets once the worker has run for ``healthy_after_s``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

log = logging.getLogger(__name__)


def supervise(
    name: str,
    work: Callable[[], None],
    stop_event: threading.Event,
    on_failure: Callable[[BaseException, float], None],
    backoff_s: tuple[float, float] = (1.0, 60.0),
    healthy_after_s: float = 60.0,
) -> None:
    """Run ``work()`` until ``stop_event`` is set, restarting it after each failure.

    Parameters
    ----------
    name : str
        For the log.
    work : callable
        Returns when ``stop_event`` is set; anything else is a failure.
    stop_event : threading.Event
    on_failure : callable
        ``on_failure(exc, restart_in_s)``; an exception it raises is logged.
    backoff_s : (float, float)
        First and largest wait before a restart, seconds.
    healthy_after_s : float
        A run at least this long resets the backoff.
    """
    wait = backoff_s[0]
    while not stop_event.is_set():
        started = time.monotonic()
        try:
            work()
            if stop_event.is_set():
                return
            raise RuntimeError(f"{name} returned while the daemon was running")
        except Exception as exc:  # noqa: BLE001 - the supervisor's job is to outlive it
            if time.monotonic() - started >= healthy_after_s:
                wait = backoff_s[0]
            log.error("%s died (%s: %s); restarting in %.0f s", name, type(exc).__name__, exc, wait)
            try:
                on_failure(exc, wait)
            except Exception:  # noqa: BLE001
                log.exception("reporting the failure of %s failed", name)
        if stop_event.wait(wait):
            return
        wait = min(backoff_s[1], wait * 2)
