"""APScheduler set-up for the daemon's periodic jobs.

Every job runs with ``coalesce=True`` (runs missed while the daemon was busy or
suspended collapse into one), ``max_instances=1`` (a slow run is never
overlapped by the next) and ``misfire_grace_time=None`` (a late run still
happens, however late). A job that raises is logged with its traceback by
:func:`guarded`, and, when given an ``on_error`` callback, reported (the daemon
turns it into a ``detector_error`` alert); the scheduler keeps the job and its
next run still happens.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from monitor.config.durations import Schedule, parse_schedule

log = logging.getLogger(__name__)

JOB_DEFAULTS = {"coalesce": True, "max_instances": 1, "misfire_grace_time": None}


@dataclass(frozen=True)
class Job:
    """A periodic job.

    Attributes
    ----------
    name : str
        Job id, e.g. ``"drift"``.
    func : callable
        Called with no arguments.
    schedule : Schedule
        When it runs (:func:`monitor.config.durations.parse_schedule`).
    run_now : bool
        Also run once right after the scheduler starts.
    """

    name: str
    func: Callable[[], Any]
    schedule: Schedule
    run_now: bool = False


def guarded(
    name: str,
    func: Callable[[], Any],
    on_error: Callable[[str, BaseException], None] | None = None,
) -> Callable[[], Any]:
    """Wrap ``func`` so an exception is logged (and passed to ``on_error``), never raised."""

    @functools.wraps(func)
    def wrapper() -> Any:
        try:
            return func()
        except Exception as exc:  # noqa: BLE001 - a job must not take the scheduler down
            log.exception("scheduled job %r failed; its next run is still scheduled", name)
            if on_error is not None:
                try:
                    on_error(name, exc)
                except Exception:  # noqa: BLE001
                    log.exception("error handler of job %r failed", name)
            return None

    return wrapper


def build_scheduler(
    jobs: list[Job],
    on_error: Callable[[str, BaseException], None] | None = None,
    now: datetime | None = None,
) -> Any:
    """A stopped ``BackgroundScheduler`` (UTC) holding ``jobs``; call ``start()`` on it.

    Parameters
    ----------
    jobs : list of Job
    on_error : callable, optional
        ``on_error(job_name, exc)`` when a job raises.
    now : datetime, optional
        Time of the first run of ``run_now`` jobs (default: now).

    Returns
    -------
    apscheduler.schedulers.background.BackgroundScheduler
    """
    from apscheduler.schedulers.background import BackgroundScheduler

    scheduler = BackgroundScheduler(timezone=timezone.utc, job_defaults=dict(JOB_DEFAULTS))
    for job in jobs:
        kwargs: dict[str, Any] = {}
        if job.run_now:
            kwargs["next_run_time"] = now or datetime.now(tz=timezone.utc)
        scheduler.add_job(
            guarded(job.name, job.func, on_error),
            trigger=job.schedule.trigger(),
            id=job.name,
            name=job.name,
            **kwargs,
        )
    return scheduler


def schedule_of(expression: str) -> Schedule:
    """Parse a schedule expression from the config (see :mod:`monitor.config.durations`)."""
    return parse_schedule(expression)
