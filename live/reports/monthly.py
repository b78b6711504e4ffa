"""The works-council report: listens per team and month, and the policy and exports behind them.

COMPLIANCE.md ("Disclosure"; BetrVG §87(1) no. 6): a site's agreement usually asks for
regular reports to the works council. For one month, per team: how many listen sessions
started, their minutes, how many agents were listened to, for which purposes, and how many
listen requests were refused (``listen.refused``) and why; for the whole site: the policy
versions in force, the policy changes in the month and the exports made. Numbers only, no
names: the council sees how monitoring is used, not who listened to whom.

An agent's team, in order: the given team map (a policy's ``[teams.<name>] agents = [...]``
tables, or ``[agents] <agent id> = "<team>"``), else the ``team`` recorded with the agent's
``listen.started`` entries, else ``all``.

``aggregate`` and ``ledger_facts`` are pure; ``collect_report`` reads the ledger.
"""

from __future__ import annotations

import tomllib
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..audit.entry import LedgerEntry
from ..audit.log import MerkleLedger
from ..errors import ConfigError
from .checkpoint import CheckpointInfo, current_checkpoint
from .periods import Month
from .sessions import ListenRecord, join_sessions

ALL_TEAMS = "all"
"""The team of agents no map or entry names (and of refusals with no agent)."""

TOTAL = "total"

TEAM_SOURCES = ("recorded", "policy")
"""Where teams came from, besides a team map file (shown in the report)."""


# --------------------------------------------------------------------------- teams


def load_team_map(path: Path) -> dict[str, str]:
    """Agent id → team from a TOML file (module docstring); ``ConfigError`` if unreadable,
    or if an agent is in two teams (each agent counts in one team)."""
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read the team map {path}: {exc}") from exc
    return team_map_from(doc, str(path))


def team_map_from(doc: Mapping[str, Any], source: str = "team map") -> dict[str, str]:
    teams: dict[str, str] = {}

    def put(agent: object, team: object) -> None:
        if not isinstance(agent, str) or not isinstance(team, str) or not agent or not team:
            raise ConfigError(f"{source}: agent ids and team names must be non-empty text")
        if teams.get(agent, team) != team:
            raise ConfigError(
                f"{source}: agent {agent!r} is in teams {teams[agent]!r} and {team!r}"
            )
        teams[agent] = team

    section = doc.get("teams", {})
    if not isinstance(section, dict):
        raise ConfigError(f"{source}: [teams] must be a table of teams")
    for name, body in section.items():
        agents = body.get("agents") if isinstance(body, dict) else None
        if not isinstance(agents, list):
            raise ConfigError(f"{source}: [teams.{name}] needs agents = [...]")
        for agent in agents:
            put(agent, name)
    flat = doc.get("agents", {})
    if not isinstance(flat, dict):
        raise ConfigError(f'{source}: [agents] must map agent ids to teams: agent-1 = "billing"')
    for agent, team in flat.items():
        put(agent, team)
    return teams


# --------------------------------------------------------------------------- aggregation


@dataclass(slots=True)
class TeamMonth:
    """What the council reads for one team (or ``total``) in one month."""

    team: str
    listens: int = 0
    seconds: float = 0.0
    running: int = 0
    attempts: int = 0  # sessions that never connected (setup-failed): nothing heard
    end_unknown: int = 0
    """Listens cut by a server crash (``node-lost``): the end is known only within bounds."""
    seconds_max: float = 0.0
    """The longest the listens can have lasted (``seconds`` is the shortest)."""
    agents: set[str] = field(default_factory=set)
    purposes: Counter[str] = field(default_factory=Counter)
    refused: int = 0
    refused_reasons: Counter[str] = field(default_factory=Counter)

    @property
    def minutes(self) -> float:
        return round(self.seconds / 60, 1)

    @property
    def minutes_max(self) -> float:
        return round(self.seconds_max / 60, 1)

    def add(self, other: TeamMonth) -> None:
        self.listens += other.listens
        self.seconds += other.seconds
        self.running += other.running
        self.attempts += other.attempts
        self.end_unknown += other.end_unknown
        self.seconds_max += other.seconds_max
        self.agents |= other.agents
        self.purposes.update(other.purposes)
        self.refused += other.refused
        self.refused_reasons.update(other.refused_reasons)

    def to_json(self) -> dict[str, Any]:
        return {
            "team": self.team,
            "listens": self.listens,
            "minutes": self.minutes,
            "running": self.running,
            "attempts": self.attempts,
            "end_unknown": self.end_unknown,
            "minutes_max": self.minutes_max,
            "agents": len(self.agents),
            "purposes": dict(sorted(self.purposes.items())),
            "refused": self.refused,
            "refused_reasons": dict(sorted(self.refused_reasons.items())),
        }


def team_resolver(team_map: Mapping[str, str], records: Iterable[ListenRecord]) -> dict[str, str]:
    """Agent id → team: the map first, then the team recorded with their latest listen."""
    resolved: dict[str, str] = {}
    for record in sorted(records, key=lambda r: r.started_seq):
        if record.agent_id and record.team:
            resolved[record.agent_id] = record.team
    resolved.update(team_map)
    return resolved


def aggregate(
    records: Iterable[ListenRecord],
    refused: Iterable[LedgerEntry],
    teams: Mapping[str, str],
    *,
    since: float,
    until: float,
) -> tuple[list[TeamMonth], TeamMonth]:
    """Per-team figures (sorted by team name) and the total, for sessions started and
    refusals made in ``[since, until)``. A session still running counts as a listen with no
    minutes yet (``running``); one that never connected (``setup-failed``) is an attempt,
    not a listen: nothing was heard, so it adds no listen and no minutes (``attempts``). A
    listen cut by a crash counts its shortest duration in ``minutes`` and its longest in
    ``minutes_max`` (``end_unknown`` counts them)."""
    by_team: dict[str, TeamMonth] = {}

    def team(agent_id: str | None) -> TeamMonth:
        name = teams.get(agent_id, ALL_TEAMS) if agent_id else ALL_TEAMS
        return by_team.setdefault(name, TeamMonth(name))

    for record in records:
        if not since <= record.started_at < until:
            continue
        row = team(record.agent_id)
        if record.attempt:
            row.attempts += 1
            continue
        row.listens += 1
        if record.agent_id:
            row.agents.add(record.agent_id)
        row.purposes[record.purpose or "-"] += 1
        if record.duration_s is None:
            row.running += 1
        else:
            row.seconds += max(0.0, record.duration_s)
            row.seconds_max += max(0.0, record.longest_s or record.duration_s)
            if record.end_bounded:
                row.end_unknown += 1
    for entry in refused:
        if entry.kind != "listen.refused" or not since <= entry.at < until:
            continue
        agent = entry.fields.get("agent_id")
        row = team(agent if isinstance(agent, str) else None)
        row.refused += 1
        reason = entry.fields.get("code") or entry.fields.get("reason") or "-"
        row.refused_reasons[str(reason)] += 1
    rows = [by_team[name] for name in sorted(by_team)]
    total = TeamMonth(TOTAL)
    for row in rows:
        total.add(row)
    return rows, total


@dataclass(frozen=True, slots=True)
class PolicyChange:
    """A ``policy.changed`` entry: the policy the works council signed was replaced."""

    at: float
    version: str
    previous_version: str | None


@dataclass(frozen=True, slots=True)
class ExportMade:
    """An ``export.made`` entry, without who made it (the report names no one)."""

    at: float
    scope: str
    format: str
    role: str | None
    entries: int | None


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def ledger_facts(
    changes: Iterable[LedgerEntry],
    exports: Iterable[LedgerEntry],
    records: Iterable[ListenRecord],
    *,
    since: float,
    until: float,
) -> tuple[tuple[str, ...], tuple[PolicyChange, ...], tuple[ExportMade, ...]]:
    """The policy versions in force in ``[since, until)`` (in the order they came into
    force: the one in force at the start, those the month's changes brought, and any other
    a listen of the month recorded), the month's policy changes, and its exports."""
    versions: list[str] = []

    def note(version: str | None) -> None:
        if version and version not in versions:
            versions.append(version)

    before = [e for e in changes if e.kind == "policy.changed" and e.at < since]
    if before:
        note(_text(max(before, key=lambda e: e.seq).fields.get("version")))
    month_changes = []
    for entry in sorted(changes, key=lambda e: e.seq):
        version = _text(entry.fields.get("version"))
        if entry.kind != "policy.changed" or not since <= entry.at < until or version is None:
            continue
        note(version)
        month_changes.append(
            PolicyChange(entry.at, version, _text(entry.fields.get("previous_version")))
        )
    for record in sorted(records, key=lambda r: r.started_seq):
        if since <= record.started_at < until:
            note(record.policy_version)
    made = []
    for entry in sorted(exports, key=lambda e: e.seq):
        if entry.kind != "export.made" or not since <= entry.at < until:
            continue
        f = entry.fields
        count = f.get("entries")
        made.append(
            ExportMade(
                entry.at,
                _text(f.get("scope")) or "-",
                _text(f.get("format")) or "-",
                _text(f.get("role")),
                count if isinstance(count, int) and not isinstance(count, bool) else None,
            )
        )
    return tuple(versions), tuple(month_changes), tuple(made)


@dataclass(frozen=True, slots=True)
class MonthReport:
    month: Month
    teams: tuple[TeamMonth, ...]
    total: TeamMonth
    checkpoint: CheckpointInfo
    generated_at: float
    team_source: str
    """``recorded``, ``policy``, or the team map's file name (``TEAM_SOURCES``)."""
    policy_versions: tuple[str, ...] = ()
    policy_changes: tuple[PolicyChange, ...] = ()
    exports: tuple[ExportMade, ...] = ()

    @property
    def purposes(self) -> list[str]:
        """Every purpose that occurs, sorted."""
        return sorted(self.total.purposes)

    @property
    def refusal_reasons(self) -> list[str]:
        return sorted(self.total.refused_reasons)

    @property
    def entries(self) -> int:
        """How many sessions and refusals the report counts."""
        return self.total.listens + self.total.refused

    def to_json(self) -> dict[str, Any]:
        return {
            "month": self.month.label,
            "timezone": self.month.zone.key,
            "teams": [t.to_json() for t in self.teams],
            "total": self.total.to_json(),
            "policy_versions": list(self.policy_versions),
            "policy_changes": [
                {"at": c.at, "version": c.version, "previous_version": c.previous_version}
                for c in self.policy_changes
            ],
            "exports": [
                {"at": e.at, "scope": e.scope, "format": e.format, "role": e.role, "entries": e.entries}
                for e in self.exports
            ],
            "tree_size": self.checkpoint.size,
            "root": self.checkpoint.root_b64,
            "generated_at": self.generated_at,
        }


async def collect_report(
    ledger: MerkleLedger,
    month: Month,
    *,
    team_map: Mapping[str, str],
    team_source: str,
    generated_at: float,
) -> MonthReport:
    """Read the month's sessions, refusals, policy changes and exports up to the current
    checkpoint."""
    checkpoint = await current_checkpoint(ledger)
    since, until, stop = month.since, month.until, checkpoint.size
    started = await ledger.entries(kind="listen.started", since=since, until=until, stop=stop)
    ended = await ledger.entries(kind="listen.ended", since=since, stop=stop)
    refused = await ledger.entries(kind="listen.refused", since=since, until=until, stop=stop)
    changes = await ledger.entries(kind="policy.changed", until=until, stop=stop)
    exports = await ledger.entries(kind="export.made", since=since, until=until, stop=stop)
    records = join_sessions([*started, *ended])
    teams = team_resolver(team_map, records)
    rows, total = aggregate(records, refused, teams, since=since, until=until)
    versions, month_changes, made = ledger_facts(
        changes, exports, records, since=since, until=until
    )
    return MonthReport(
        month,
        tuple(rows),
        total,
        checkpoint,
        generated_at,
        team_source,
        versions,
        month_changes,
        made,
    )
