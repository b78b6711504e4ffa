"""Periods of time as people write them: days, ISO times, months, in a time zone.

Pure. Bad input raises ``PeriodError`` (a domain error with a ``code``: ``bad_date``,
``bad_month``, ``bad_timezone``); the HTTP layer answers it with 400, the command line
prints its message.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ..errors import LiveError


class PeriodError(LiveError):
    """A date, time, month or time zone that cannot be read."""

    code = "bad_date"


def zone_named(name: str | None) -> ZoneInfo:
    """An IANA time zone (default UTC); ``PeriodError`` (``bad_timezone``) if unknown."""
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        raise PeriodError(f"unknown time zone {name!r:.60}", code="bad_timezone") from None


def parse_moment(text: str, zone: ZoneInfo, *, end: bool = False) -> float:
    """``YYYY-MM-DD`` (the start of that day in ``zone``; with ``end``, the start of the next
    day, so an end date is inclusive) or an ISO 8601 date and time (``zone`` if it names
    none). ``PeriodError`` (``bad_date``) otherwise."""
    value = text.strip()
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
            day = datetime.strptime(value, "%Y-%m-%d").date()
            if end:
                day += timedelta(days=1)
            return datetime.combine(day, time(), tzinfo=zone).timestamp()
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise PeriodError(
            f"{text!r:.40} is not a date (YYYY-MM-DD) or an ISO 8601 time", code="bad_date"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone)
    return moment.timestamp()


def parse_period(
    start: str | None, end: str | None, zone: ZoneInfo
) -> tuple[float | None, float | None]:
    """``[since, until)`` from optional from/to texts (``parse_moment``)."""
    since = parse_moment(start, zone) if start else None
    until = parse_moment(end, zone, end=True) if end else None
    if since is not None and until is not None and since >= until:
        raise PeriodError("the period ends before it starts", code="bad_date")
    return since, until


@dataclass(frozen=True, slots=True)
class Month:
    """A calendar month in a time zone: ``[since, until)`` in unix seconds."""

    year: int
    month: int
    zone: ZoneInfo

    @property
    def label(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"

    @property
    def since(self) -> float:
        return datetime(self.year, self.month, 1, tzinfo=self.zone).timestamp()

    @property
    def until(self) -> float:
        year, month = (self.year + 1, 1) if self.month == 12 else (self.year, self.month + 1)
        return datetime(year, month, 1, tzinfo=self.zone).timestamp()

    @property
    def days(self) -> int:
        return calendar.monthrange(self.year, self.month)[1]


def parse_month(text: str | None, zone: ZoneInfo) -> Month:
    """``YYYY-MM``; ``PeriodError`` (``bad_month``) otherwise."""
    match = re.fullmatch(r"(\d{4})-(\d{2})", (text or "").strip())
    if match is None or not 1 <= int(match.group(2)) <= 12 or int(match.group(1)) < 1970:
        raise PeriodError(f"month must be YYYY-MM, got {text!r:.20}", code="bad_month")
    return Month(int(match.group(1)), int(match.group(2)), zone)


def local(at: float, zone: ZoneInfo) -> datetime:
    """Unix time ``at`` as a time in ``zone``."""
    return datetime.fromtimestamp(at, tz=UTC).astimezone(zone)


def day(at: float | None, zone: ZoneInfo) -> str:
    """``YYYY-MM-DD`` in ``zone``, empty for no time."""
    return local(at, zone).strftime("%Y-%m-%d") if at is not None else ""


def last_day(until: float | None, zone: ZoneInfo) -> str:
    """The last day of a period whose end is exclusive."""
    return day(until - 1, zone) if until is not None else ""


def stamp(at: float, zone: ZoneInfo) -> str:
    """``YYYY-MM-DD HH:MM:SS <zone>`` for people."""
    moment = local(at, zone)
    return moment.strftime("%Y-%m-%d %H:%M:%S ") + (moment.tzname() or zone.key)
