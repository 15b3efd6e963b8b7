"""Serving schedules: how many hours a month a KEDA cron window (`start`/`end` cron expressions) holds replicas up.

KEDA's cron scaler (kedacore/keda pkg/scalers/cron_scaler.go) is active from the last `start` until the next `end`
(5-field cron, robfig/cron). The planner prices the weekly windows such schedules describe: the same minute of the
same hour on the same days of the week, `start` before `end`; anything else is refused, so a report never prices a
window it cannot reason about. The config validates schedules with the same function.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

HOURS_PER_WEEK = 24 * 7
_DAY_NAMES = {"sun": 0, "mon": 1, "tue": 2, "wed": 3, "thu": 4, "fri": 5, "sat": 6}
_FIELD = re.compile(r"^(\d{1,2})$")


@dataclass(frozen=True)
class WeeklyWindow:
    days: frozenset[int]
    start_minutes: int
    end_minutes: int

    @property
    def hours_per_week(self) -> float:
        return len(self.days) * (self.end_minutes - self.start_minutes) / 60

    def monthly_hours(self, hours_per_month: float) -> float:
        return self.hours_per_week * hours_per_month / HOURS_PER_WEEK

    def describe(self) -> str:
        names = [name.capitalize() for name, _ in sorted(_DAY_NAMES.items(), key=lambda kv: kv[1])]
        ordered = sorted(self.days)
        contiguous = len(ordered) > 2 and ordered == list(range(ordered[0], ordered[-1] + 1))
        days = f"{names[ordered[0]]}-{names[ordered[-1]]}" if contiguous else ",".join(names[d] for d in ordered)
        start, end = divmod(self.start_minutes, 60), divmod(self.end_minutes, 60)
        return f"{days} {start[0]:02d}:{start[1]:02d}-{end[0]:02d}:{end[1]:02d}"


def _number(text: str, low: int, high: int, what: str) -> int:
    if not _FIELD.match(text) or not low <= int(text) <= high:
        raise ValueError(f"{what} must be a number {low}-{high} (got {text!r})")
    return int(text)


def _day(text: str) -> int:
    lowered = text.lower()
    if lowered in _DAY_NAMES:
        return _DAY_NAMES[lowered]
    day = _number(text, 0, 7, "day of week")
    return 0 if day == 7 else day


def _days(text: str) -> frozenset[int]:
    if text == "*":
        return frozenset(range(7))
    days: set[int] = set()
    for part in text.split(","):
        if "-" in part:
            first, last = (_day(p) for p in part.split("-", 1))
            if last < first:
                raise ValueError(f"day-of-week range {part!r} runs backwards")
            days.update(range(first, last + 1))
        else:
            days.add(_day(part))
    return frozenset(days)


def _parse(expression: str) -> tuple[int, frozenset[int]]:
    fields = expression.split()
    if len(fields) != 5:
        raise ValueError(f"must be a 5-field cron expression 'minute hour * * day-of-week' (got {expression!r})")
    minute, hour, day_of_month, month, day_of_week = fields
    if day_of_month != "*" or month != "*":
        raise ValueError(f"day of month and month must be '*': the window repeats weekly (got {expression!r})")
    return _number(hour, 0, 23, "hour") * 60 + _number(minute, 0, 59, "minute"), _days(day_of_week)


def weekly_window(start: str, end: str) -> WeeklyWindow:
    """The weekly window between two cron expressions such as `0 8 * * 1-5` and `0 19 * * 1-5`; ValueError when
    they do not describe one (same days, `start` earlier in the day than `end`)."""
    start_minutes, start_days = _parse(start)
    end_minutes, end_days = _parse(end)
    if start_days != end_days:
        raise ValueError(f"start and end must name the same days of the week (got {start!r} and {end!r})")
    if end_minutes <= start_minutes:
        raise ValueError(f"end must be later in the day than start (got {start!r} and {end!r})")
    return WeeklyWindow(start_days, start_minutes, end_minutes)
