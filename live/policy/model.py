"""The monitoring policy as typed, immutable data: what a works council signed.

A ``Policy`` is built only by ``load_policy`` (``parse.py``), which checks every rule the
format documents (``deploy/policy.example.toml``); code that holds a ``Policy`` can trust it.
Nothing here does I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal, TypeAlias
from zoneinfo import ZoneInfo

from ..model import CallInfo
from .schedule import DigestSchedule, HoursWindow

NoticeMode: TypeAlias = Literal["live", "after_call", "digest"]
NOTICE_MODES: tuple[NoticeMode, ...] = ("live", "after_call", "digest")

CallerConsent: TypeAlias = Literal["required", "not_required"]
CALLER_CONSENT: tuple[CallerConsent, ...] = ("required", "not_required")

ScopeGrant: TypeAlias = Literal["assigned", "own_teams", "all_agents"]
SCOPE_GRANTS: tuple[ScopeGrant, ...] = ("assigned", "own_teams", "all_agents")

# Notices given before or while listening are "announced"; the others tell the agent later.
ANNOUNCED_MODES: frozenset[NoticeMode] = frozenset({"live"})


@dataclass(frozen=True, slots=True)
class Team:
    name: str
    agents: frozenset[str]


@dataclass(frozen=True, slots=True)
class SupervisorGrant:
    """What ``[supervisors.<user_id>]`` assigns to one supervisor: whole teams and/or agents."""

    user_id: str
    teams: frozenset[str]
    agents: frozenset[str]


@dataclass(frozen=True, slots=True)
class Quotas:
    """Most listen sessions started per agent per calendar month and per supervisor per day."""

    per_agent_per_month: int
    per_supervisor_per_day: int


@dataclass(frozen=True, slots=True)
class Hours:
    timezone: str
    zone: ZoneInfo
    windows: tuple[HoursWindow, ...]


@dataclass(frozen=True, slots=True)
class Exclusion:
    """Calls matching *every* given field can never be listened to (``None`` = not matched on).

    String fields match when the call's value is one of the listed values; ``attributes``
    matches when each named call attribute has one of its listed values.
    """

    name: str
    private: bool | None = None
    queue: frozenset[str] | None = None
    agent_id: frozenset[str] | None = None
    source: frozenset[str] | None = None
    attributes: tuple[tuple[str, frozenset[str]], ...] = ()

    def matches(self, call: CallInfo) -> bool:
        if self.private is not None and call.private != self.private:
            return False
        for wanted, value in (
            (self.queue, call.queue),
            (self.agent_id, call.agent_id),
            (self.source, call.source),
        ):
            if wanted is not None and value not in wanted:
                return False
        return all(call.attributes.get(name) in values for name, values in self.attributes)


@dataclass(frozen=True, slots=True)
class Notices:
    default: NoticeMode
    teams: Mapping[str, NoticeMode]
    digest_schedule: DigestSchedule | None
    unannounced_allowed: bool


@dataclass(frozen=True, slots=True)
class Policy:
    """One checked version of the monitoring policy.

    ``sha256`` identifies the *content* (what is enforced): the SHA-256 of the parsed TOML
    document as canonical JSON (object keys sorted, no insignificant whitespace, UTF-8), so
    comments, blank lines, key order and quoting style do not change it.
    ``source_sha256`` is the SHA-256 of the file text as UTF-8, byte for byte: it matches
    the exact document the works council signed. ``policy.changed`` ledger entries record
    ``sha256``; keep both with the signed copy.
    """

    version: str
    sha256: str
    source_sha256: str
    source: str
    purposes: tuple[str, ...]
    teams: Mapping[str, Team]
    supervisors: Mapping[str, SupervisorGrant]
    supervisors_listen_to: frozenset[ScopeGrant]
    quotas: Quotas
    hours: Hours
    exclusions: tuple[Exclusion, ...]
    caller_consent: CallerConsent
    notices: Notices
    listener_names: bool
    retention_days: int
    agent_teams: Mapping[str, str]
    """Each agent named in ``[teams]`` and the one team they belong to."""

    def team_of(self, agent_id: str) -> str | None:
        return self.agent_teams.get(agent_id)

    def exclusion_for(self, call: CallInfo) -> Exclusion | None:
        """The first ``[[exclusions]]`` entry matching the call, if any."""
        return next((x for x in self.exclusions if x.matches(call)), None)
