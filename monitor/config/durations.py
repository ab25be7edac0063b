"""Durations (``"7d"``, ``"15m"``) and schedule expressions (``"weekly"``, cron) from config.

A schedule is either an interval, written as a duration or one of the words
``hourly``, ``daily``, ``weekly``, or a five-field crontab line in UTC with the
standard crontab(5) meaning (``"0 6 * * 1"``: Mondays at 06:00; 0 or 7 is
Sunday). :func:`parse_schedule` validates both and returns a :class:`Schedule`
that :mod:`monitor.service.scheduler` turns into an APScheduler trigger.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_WORDS = {"hourly": 3600.0, "daily": 86400.0, "weekly": 604800.0}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")


def parse_duration(text: str | float | int) -> float:
    """Seconds in a duration such as ``"90s"``, ``"15m"``, ``"6h"``, ``"7d"``, ``"2w"``.

    A bare number is taken as seconds; ``hourly``, ``daily`` and ``weekly`` are
    1 h, 1 d and 1 w.

    Raises
    ------
    ValueError
        Not a positive duration in one of these forms.
    """
    if isinstance(text, bool):
        raise ValueError(f"not a duration: {text!r}")
    if isinstance(text, (int, float)):
        seconds = float(text)
    elif text.strip().lower() in _WORDS:
        seconds = _WORDS[text.strip().lower()]
    else:
        match = _DURATION.match(text)
        if match is None:
            raise ValueError(
                f"not a duration: {text!r} (expected e.g. '30s', '15m', '6h', '7d', '2w')"
            )
        seconds = float(match.group(1)) * _UNITS[match.group(2)]
    if not seconds > 0:
        raise ValueError(f"duration must be positive, got {text!r}")
    return seconds


def parse_cooldown(text: str | float | int) -> float:
    """Seconds of a cooldown: a duration, or ``0`` / ``"0"`` / ``"0s"`` for none.

    Raises
    ------
    ValueError
        Neither zero nor a positive duration.
    """
    if isinstance(text, (int, float)) and not isinstance(text, bool) and text == 0:
        return 0.0
    if isinstance(text, str) and text.strip() in ("0", "0s"):
        return 0.0
    return parse_duration(text)


@dataclass(frozen=True)
class Schedule:
    """A parsed schedule: every ``interval_s`` seconds, or a crontab line (UTC).

    Attributes
    ----------
    expression : str
        The text it was parsed from.
    interval_s : float or None
        Seconds between runs, for interval schedules.
    cron : str or None
        Five-field crontab line, for cron schedules.
    """

    expression: str
    interval_s: float | None = None
    cron: str | None = None

    def trigger(self):  # -> apscheduler BaseTrigger
        """The APScheduler trigger (interval or cron, UTC)."""
        from apscheduler.triggers.cron import CronTrigger
        from apscheduler.triggers.interval import IntervalTrigger

        if self.cron is not None:
            return CronTrigger.from_crontab(_apscheduler_crontab(self.cron), timezone=timezone.utc)
        return IntervalTrigger(seconds=self.interval_s, timezone=timezone.utc)

    def period_s(self, now: datetime | None = None) -> float:
        """Seconds between two consecutive runs (for cron: the next two after ``now``)."""
        if self.interval_s is not None:
            return self.interval_s
        now = now or datetime.now(tz=timezone.utc)
        trigger = self.trigger()
        first = trigger.get_next_fire_time(None, now)
        second = trigger.get_next_fire_time(first, first + timedelta(seconds=1))
        return (second - first).total_seconds()


_DOW = ("sun", "mon", "tue", "wed", "thu", "fri", "sat", "sun")


def _apscheduler_crontab(line: str) -> str:
    """Standard crontab to APScheduler 3's dialect: day-of-week numbers become names.

    In crontab(5) 0 and 7 are Sunday and 1 is Monday; APScheduler 3 counts 0 as
    Monday, so ``"0 6 * * 1"`` would fire on Tuesdays. Numbers after a ``/`` are
    steps and stay numbers.
    """
    fields = line.split()
    fields[4] = re.sub(r"(?<![/\d])(\d+)", lambda m: _DOW[int(m.group(1)) % 8], fields[4])
    return " ".join(fields)


def parse_schedule(text: str) -> Schedule:
    """Parse ``"weekly"``, ``"15m"`` or a crontab line such as ``"0 6 * * 1"``.

    Raises
    ------
    ValueError
        Neither a valid duration nor a valid five-field crontab line.
    """
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"empty schedule expression: {text!r}")
    if len(text.split()) == 5:
        from apscheduler.triggers.cron import CronTrigger

        try:
            CronTrigger.from_crontab(_apscheduler_crontab(text), timezone=timezone.utc)
        except ValueError as exc:
            raise ValueError(f"not a valid crontab line {text!r}: {exc}") from None
        return Schedule(expression=text, cron=text)
    try:
        return Schedule(expression=text, interval_s=parse_duration(text))
    except ValueError:
        raise ValueError(
            f"not a schedule: {text!r} (expected 'hourly', 'daily', 'weekly', a duration such "
            "as '15m', or a crontab line such as '0 6 * * 1')"
        ) from None
