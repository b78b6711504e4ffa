"""Quota periods and counts: listens per agent per calendar month, per supervisor per day.

Periods are calendar months and days in the policy's time zone (``[hours] timezone``), as a
works-council agreement counts them. ``decide`` takes the counts as a ``QuotaState``; the
service computes them from the ledger's ``listen.started`` entries with ``quota_state``.
A listen counts when it *started* (refused requests do not count; a session counts once
however long it lasts).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from .model import Policy


@dataclass(frozen=True, slots=True)
class QuotaState:
    """Listens already started: on the call's agent this month, by the actor today."""

    agent_month: int = 0
    supervisor_day: int = 0


@dataclass(frozen=True, slots=True)
class StartedListen:
    """One ``listen.started`` entry, as much as quotas need of it."""

    agent_id: str
    listener_id: str
    started_at: float  # Unix time


def _midnight(day: date, zone: ZoneInfo) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=zone)


def day_bounds(now: datetime, policy: Policy) -> tuple[datetime, datetime]:
    """The local calendar day containing ``now``: [start, end) in the policy's zone."""
    zone = policy.hours.zone
    today = now.astimezone(zone).date()
    return _midnight(today, zone), _midnight(today + timedelta(days=1), zone)


def month_bounds(now: datetime, policy: Policy) -> tuple[datetime, datetime]:
    """The local calendar month containing ``now``: [start, end) in the policy's zone."""
    zone = policy.hours.zone
    local = now.astimezone(zone)
    first = date(local.year, local.month, 1)
    following = (
        date(local.year + 1, 1, 1) if local.month == 12 else date(local.year, local.month + 1, 1)
    )
    return _midnight(first, zone), _midnight(following, zone)


def quota_state(
    listens: Iterable[StartedListen],
    *,
    agent_id: str,
    listener_id: str,
    policy: Policy,
    now: datetime,
) -> QuotaState:
    """Count the listens on ``agent_id`` this month and by ``listener_id`` today."""
    month_start, month_end = (t.timestamp() for t in month_bounds(now, policy))
    day_start, day_end = (t.timestamp() for t in day_bounds(now, policy))
    agent_month = supervisor_day = 0
    for listen in listens:
        if listen.agent_id == agent_id and month_start <= listen.started_at < month_end:
            agent_month += 1
        if listen.listener_id == listener_id and day_start <= listen.started_at < day_end:
            supervisor_day += 1
    return QuotaState(agent_month, supervisor_day)


def quota_left(state: QuotaState, policy: Policy) -> tuple[int, int]:
    """Listens still allowed: (on this agent this month, by this supervisor today)."""
    return (
        max(0, policy.quotas.per_agent_per_month - state.agent_month),
        max(0, policy.quotas.per_supervisor_per_day - state.supervisor_day),
    )
