"""Weekly time windows and digest schedules, as a policy writes them.

Both are local wall-clock times in the policy's time zone; the functions here convert an
aware ``datetime`` to that zone first (with ``zoneinfo``), so daylight-saving changes move
the windows with the local clock, as a works-council agreement means them.

Grammar (English day names, case-insensitive, as in ``Mon-Fri 08:00-18:00``)::

    window   = days " " time "-" time          e.g. "Mon-Fri 08:00-18:00", "Sat 09:00-13:00"
    days     = item ("," item)*                e.g. "Mon,Wed,Fri", "Mon-Fri", "Fri-Mon"
    item     = day | day "-" day               (a range may wrap past Sunday)
    time     = HH ":" MM                       00:00 .. 23:59, and 24:00 as an end only
    schedule = "daily " time | "weekly " day " " time     e.g. "daily 17:00", "weekly Fri 16:00"

A window's end is exclusive and must be after its start: a window across midnight is written
as two windows ("Mon-Fri 22:00-24:00" and "Tue-Sat 00:00-06:00").
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

DAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_DAY_INDEX = {name.lower(): index for index, name in enumerate(DAY_NAMES)}
_TIME = re.compile(r"^(\d{1,2}):(\d{2})$")


@dataclass(frozen=True, slots=True)
class HoursWindow:
    """Listening is allowed on ``days`` (0 = Monday) from ``start`` to before ``end`` minutes."""

    text: str
    days: frozenset[int]
    start: int
    end: int

    def contains(self, local: datetime) -> bool:
        """Whether a wall-clock time (already in the policy's zone) lies in this window."""
        minute = local.hour * 60 + local.minute
        return local.weekday() in self.days and self.start <= minute < self.end


@dataclass(frozen=True, slots=True)
class DigestSchedule:
    """When digest notices go out: every day, or one weekday, at ``at`` minutes past midnight."""

    text: str
    period: Literal["daily", "weekly"]
    weekday: int | None
    at: int

    def next_after(self, moment: datetime, zone: ZoneInfo) -> datetime:
        """The first digest time strictly after ``moment`` (aware), in ``zone``."""
        local = moment.astimezone(zone)
        day = local.date()
        for offset in range(8):
            candidate_day = day + timedelta(days=offset)
            if self.weekday is not None and candidate_day.weekday() != self.weekday:
                continue
            naive = datetime(candidate_day.year, candidate_day.month, candidate_day.day)
            candidate = (naive + timedelta(minutes=self.at)).replace(tzinfo=zone)
            if candidate > local:
                return candidate
        raise AssertionError("unreachable: a daily or weekly schedule recurs within 8 days")


def parse_day(text: str) -> int:
    index = _DAY_INDEX.get(text.strip().lower())
    if index is None:
        raise ValueError(f"{text.strip()!r} is not a day; use one of {', '.join(DAY_NAMES)}")
    return index


def parse_days(text: str) -> frozenset[int]:
    days: set[int] = set()
    for item in text.split(","):
        first, dash, last = item.partition("-")
        start = parse_day(first)
        if not dash:
            days.add(start)
            continue
        stop = parse_day(last)
        span = (stop - start) % 7  # "Fri-Mon" wraps past Sunday
        days.update((start + step) % 7 for step in range(span + 1))
    return frozenset(days)


def parse_time(text: str, *, end: bool = False) -> int:
    """Minutes past midnight of ``HH:MM``; ``24:00`` only as the end of a window."""
    match = _TIME.match(text.strip())
    if match is None:
        raise ValueError(f"{text.strip()!r} is not a time; write HH:MM, e.g. 08:00")
    hours, minutes = int(match[1]), int(match[2])
    if (hours, minutes) == (24, 0) and end:
        return 24 * 60
    if hours > 23 or minutes > 59:
        raise ValueError(f"{text.strip()!r} is not a time of day")
    return hours * 60 + minutes


def parse_window(text: str) -> HoursWindow:
    """Parse ``"Mon-Fri 08:00-18:00"``; ``ValueError`` says what is wrong with it."""
    days_text, _, times = text.strip().partition(" ")
    first, dash, last = times.strip().partition("-")
    if not days_text or not dash:
        raise ValueError(
            f"{text!r} is not a window; write days and times, e.g. 'Mon-Fri 08:00-18:00'"
        )
    days = parse_days(days_text)
    start, end = parse_time(first), parse_time(last, end=True)
    if end <= start:
        raise ValueError(
            f"{text!r} ends before it starts; split a window across midnight in two, "
            "e.g. 'Mon-Fri 22:00-24:00' and 'Tue-Sat 00:00-06:00'"
        )
    return HoursWindow(text, days, start, end)


def parse_schedule(text: str) -> DigestSchedule:
    """Parse ``"daily 17:00"`` or ``"weekly Fri 16:00"``."""
    words = text.split()
    if len(words) == 2 and words[0].lower() == "daily":
        return DigestSchedule(text, "daily", None, parse_time(words[1]))
    if len(words) == 3 and words[0].lower() == "weekly":
        return DigestSchedule(text, "weekly", parse_day(words[1]), parse_time(words[2]))
    raise ValueError(f"{text!r} is not a schedule; write 'daily 17:00' or 'weekly Fri 16:00'")
