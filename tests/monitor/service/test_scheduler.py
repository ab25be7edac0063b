"""Schedules from config, coalescing of missed runs, and jobs that raise (real APScheduler)."""

from __future__ import annotations

import logging
import threading
import time
from datetime import datetime, timedelta, timezone

import pytest

from monitor.config.durations import parse_cooldown, parse_duration, parse_schedule
from monitor.config.load import ConfigError, parse_config
from monitor.service.scheduler import Job, build_scheduler


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30s", 30), ("15m", 900), ("6h", 21600), ("7d", 604800), ("2w", 1209600), ("weekly", 604800)],
)
def test_durations(text, seconds):
    assert parse_duration(text) == seconds
    assert parse_schedule(text).interval_s == seconds


def test_cron_schedules_and_errors():
    sched = parse_schedule("0 6 * * 1")
    assert sched.cron == "0 6 * * 1" and sched.interval_s is None
    monday = datetime(2026, 11, 16, 6, 0, tzinfo=timezone.utc)
    fire = sched.trigger().get_next_fire_time(None, monday - timedelta(hours=1))
    assert fire == monday
    assert sched.period_s(monday) == 7 * 86400
    sunday = parse_schedule("30 23 * * 0").trigger().get_next_fire_time(None, monday)
    assert (
        sunday.weekday() == 6
        and parse_schedule("0 0 * * 7").trigger().get_next_fire_time(None, monday).weekday() == 6
    )
    weekdays = parse_schedule("0 9 * * 1-5").trigger()
    saturday = datetime(2026, 11, 21, 12, tzinfo=timezone.utc)
    assert weekdays.get_next_fire_time(None, saturday) == datetime(
        2026, 11, 23, 9, tzinfo=timezone.utc
    )
    for bad in ("every week", "0 25 * * 1", "", "-5m"):
        with pytest.raises(ValueError):
            parse_schedule(bad)
    assert parse_cooldown("0") == 0.0 and parse_cooldown("6h") == 21600


def test_config_rejects_a_bad_interval_naming_the_key():
    with pytest.raises(ConfigError, match="drift_detection_interval.*not a schedule"):
        parse_config({"reliability_monitor": {"monitoring": {"drift_detection_interval": "x"}}})
    cfg = parse_config({"reliability_monitor": {"monitoring": {"drift_detection_interval": "1h"}}})
    assert cfg.reliability_monitor.monitoring.drift_detection_interval == "1h"


def _wait(predicate, timeout=10.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.02)
    return False


def test_missed_runs_coalesce_into_one():
    runs: list[float] = []
    job = Job("drift", lambda: runs.append(time.time()), parse_schedule("1h"), run_now=True)
    # The scheduler was "down" for ten periods: ten fire times are overdue.
    overdue = datetime.now(tz=timezone.utc) - timedelta(hours=10)
    scheduler = build_scheduler([job], now=overdue)
    scheduler.start()
    try:
        assert _wait(lambda: len(runs) >= 1)
        time.sleep(0.5)
        assert len(runs) == 1  # one run, not ten
        next_run = scheduler.get_job("drift").next_run_time
        assert next_run > datetime.now(tz=timezone.utc)
    finally:
        scheduler.shutdown(wait=True)


def test_a_job_that_raises_is_logged_reported_and_runs_again(caplog):
    calls, errors = [], []
    ran_twice = threading.Event()

    def flaky():
        calls.append(time.time())
        if len(calls) >= 2:
            ran_twice.set()
        raise RuntimeError("detector exploded")

    caplog.set_level(logging.ERROR, logger="monitor.service.scheduler")
    job = Job("drift", flaky, parse_schedule("1s"), run_now=True)
    scheduler = build_scheduler([job], on_error=lambda name, exc: errors.append((name, exc)))
    scheduler.start()
    try:
        assert ran_twice.wait(10)
    finally:
        scheduler.shutdown(wait=True)
    assert len(errors) >= 2 and errors[0][0] == "drift"
    assert isinstance(errors[0][1], RuntimeError)
    assert any("scheduled job 'drift' failed" in r.getMessage() for r in caplog.records)
    assert any(r.exc_info is not None for r in caplog.records)


def test_job_defaults():
    scheduler = build_scheduler([Job("a", lambda: None, parse_schedule("0 6 * * 1"))])
    scheduler.start(paused=True)
    try:
        job = scheduler.get_job("a")
        assert job.coalesce is True and job.max_instances == 1
        assert job.misfire_grace_time is None
    finally:
        scheduler.shutdown(wait=False)
