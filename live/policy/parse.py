"""TOML text -> ``Policy``, reporting every problem with its line, key and a plain message.

The format is documented, key by key, in ``deploy/policy.example.toml``. A policy is what a
works council signs, so nothing that widens monitoring has a default: the keys that decide
*whether* and *how much* listening happens (purposes, quotas, hours, caller consent, notice
mode, unannounced listening, name disclosure, retention) must be written out. Optional
sections default to the narrow choice (no teams, no grants, only explicitly ``assigned``
scopes, no extra exclusions; private calls are always excluded).

``load_policy`` collects *all* problems before raising, so one ``live policy check`` shows
everything a draft gets wrong.
"""

from __future__ import annotations

import hashlib
import json
import re
import tomllib
from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Any, cast
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ._locate import KeyPath
from ._reader import PolicyReader, describe
from .model import (
    ANNOUNCED_MODES,
    CALLER_CONSENT,
    NOTICE_MODES,
    SCOPE_GRANTS,
    CallerConsent,
    Exclusion,
    Hours,
    NoticeMode,
    Notices,
    Policy,
    Quotas,
    ScopeGrant,
    SupervisorGrant,
    Team,
)
from .problems import PolicyError, PolicyProblem, key_name
from .schedule import DigestSchedule, HoursWindow, parse_schedule, parse_window

_SYNTAX_POSITION = re.compile(r"\(at line (\d+), column (\d+)\)$")

TOP_LEVEL_KEYS = (
    "version",
    "purposes",
    "teams",
    "supervisors",
    "access",
    "quotas",
    "hours",
    "exclusions",
    "consent",
    "notices",
    "disclosure",
    "retention",
)
EXCLUSION_MATCH_KEYS = ("private", "queue", "agent_id", "source", "attributes")


def content_sha256(document: Mapping[str, Any]) -> str:
    """SHA-256 of a parsed document as canonical JSON (sorted keys, no spaces, UTF-8).

    Reproducible without ``live``: ``hashlib.sha256(json.dumps(tomllib.loads(text),
    sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()).hexdigest()``.
    """
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def load_policy(text: str, source: str = "policy.toml") -> Policy:
    """Parse and check a policy; raise ``PolicyError`` listing every problem found."""
    text = text.removeprefix("\ufeff")  # a byte-order mark, as some Windows editors write
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise PolicyError(source, [_syntax_problem(exc, text)]) from None
    checker = _Checker(text)
    policy = checker.policy(document, source, text)
    if checker.problems or policy is None:
        raise PolicyError(source, checker.problems)
    return policy


def _syntax_problem(exc: tomllib.TOMLDecodeError, text: str) -> PolicyProblem:
    message = str(exc)
    line = getattr(exc, "lineno", None)  # Python 3.14+ has the position as attributes
    column = getattr(exc, "colno", None)
    match = _SYNTAX_POSITION.search(message)
    if match is not None:
        message = message[: match.start()].rstrip()
        line, column = line or int(match[1]), column or int(match[2])
    elif message.endswith("(at end of document)"):
        message = message[: -len("(at end of document)")].rstrip() + " at the end of the file"
        line = line or text.count("\n") + 1
    detail = f"{message} (column {column})" if column else message
    return PolicyProblem(int(line or 1), "syntax", f"not valid TOML: {detail}")


class _Checker(PolicyReader):
    """Checks each section of a policy; see the module docstring for what is required."""

    # --- the sections ---------------------------------------------------------------------

    def policy(self, doc: dict[str, Any], source: str, text: str) -> Policy | None:
        self.known_keys(doc, (), TOP_LEVEL_KEYS)
        version = self.text(
            doc,
            "version",
            (),
            hint='write the version the works council signed, e.g. version = "2024-1"',
        )
        purposes = self.purposes(doc)
        teams, agent_teams = self.teams(doc)
        supervisors = self.supervisors(doc, teams)
        access = self.access(doc)
        quotas = self.quotas(doc)
        hours = self.hours(doc)
        exclusions = self.exclusions(doc)
        consent = self.consent(doc)
        notices = self.notices(doc, teams)
        listener_names = self.disclosure(doc)
        retention = self.retention(doc)
        if self.problems:
            return None
        assert version is not None and purposes is not None and teams is not None
        assert agent_teams is not None and supervisors is not None and access is not None
        assert quotas is not None and hours is not None and exclusions is not None
        assert consent is not None and notices is not None and listener_names is not None
        assert retention is not None
        return Policy(
            version=version,
            sha256=content_sha256(doc),
            source_sha256=hashlib.sha256(text.encode("utf-8")).hexdigest(),
            source=source,
            purposes=tuple(purposes),
            teams=MappingProxyType(teams),
            supervisors=MappingProxyType(supervisors),
            supervisors_listen_to=access,
            quotas=quotas,
            hours=hours,
            exclusions=exclusions,
            caller_consent=consent,
            notices=notices,
            listener_names=listener_names,
            retention_days=retention,
            agent_teams=MappingProxyType(agent_teams),
        )

    def purposes(self, doc: dict[str, Any]) -> list[str] | None:
        hint = 'list what listening is for, e.g. purposes = ["quality", "training"]'
        purposes = self.texts(doc, "purposes", (), required=True, non_empty=True, hint=hint)
        if purposes is None:
            return None
        bad = [i for i, p in enumerate(purposes) if p != p.strip() or len(p) > 64]
        for index in bad:
            self.problem(
                ("purposes", index),
                "a purpose is a short word without surrounding spaces (at most 64 characters)",
            )
        return None if bad else purposes

    def teams(self, doc: dict[str, Any]) -> tuple[dict[str, Team] | None, dict[str, str] | None]:
        section = self.table(doc, "teams", (), required=False)
        if section is None:
            return ({}, {}) if "teams" not in doc else (None, None)
        teams: dict[str, Team] = {}
        agent_teams: dict[str, str] = {}
        ok = True
        for name, body in section.items():
            path: KeyPath = ("teams", name)
            if not isinstance(body, dict):
                self.problem(
                    path,
                    f"expected a table [teams.{key_name((name,))}] with agents = [...], found {describe(body)}",
                )
                ok = False
                continue
            self.known_keys(body, path, ("agents", "description"))
            self.value(body, "description", path, str, required=False)
            agents = self.texts(
                body,
                "agents",
                path,
                required=True,
                hint='list the team\'s agent ids, e.g. agents = ["agent-1"]',
            )
            if agents is None:
                ok = False
                continue
            for index, agent in enumerate(agents):
                other = agent_teams.get(agent)
                if other is not None:
                    self.problem(
                        path + ("agents", index),
                        f"agent {agent!r} is already in team {other!r}; an agent belongs to one team "
                        "(reports to the works council count per team)",
                    )
                    ok = False
                else:
                    agent_teams[agent] = name
            teams[name] = Team(name, frozenset(agents))
        if ok:
            return teams, agent_teams
        # Keep the names of teams with problems so references to them are not reported too.
        return _names_only(section, teams), None

    def known_team(self, path: KeyPath, name: str, teams: Mapping[str, Team] | None) -> bool:
        if teams is None or name in teams:
            return True
        known = ", ".join(sorted(teams)) or "none are defined"
        self.problem(path, f"unknown team {name!r}; teams in [teams]: {known}")
        return False

    def supervisors(
        self, doc: dict[str, Any], teams: Mapping[str, Team] | None
    ) -> dict[str, SupervisorGrant] | None:
        section = self.table(doc, "supervisors", (), required=False)
        if section is None:
            return {} if "supervisors" not in doc else None
        grants: dict[str, SupervisorGrant] = {}
        ok = True
        for user_id, body in section.items():
            path: KeyPath = ("supervisors", user_id)
            if not isinstance(body, dict):
                self.problem(
                    path,
                    f"expected a table with teams = [...] and/or agents = [...], found {describe(body)}",
                )
                ok = False
                continue
            self.known_keys(body, path, ("teams", "agents"))
            granted_teams = self.texts(body, "teams", path, required=False)
            agents = self.texts(body, "agents", path, required=False)
            if (granted_teams is None and "teams" in body) or (agents is None and "agents" in body):
                ok = False
                continue
            for index, team in enumerate(granted_teams or ()):
                ok = self.known_team(path + ("teams", index), team, teams) and ok
            if not granted_teams and not agents:
                self.problem(path, "grants nothing; give teams = [...] and/or agents = [...]")
                ok = False
                continue
            grants[user_id] = SupervisorGrant(
                user_id, frozenset(granted_teams or ()), frozenset(agents or ())
            )
        return grants if ok else None

    def access(self, doc: dict[str, Any]) -> frozenset[ScopeGrant] | None:
        section = self.table(doc, "access", (), required=False)
        if section is None:
            return frozenset({"assigned"}) if "access" not in doc else None
        self.known_keys(section, ("access",), ("supervisors_listen_to",))
        if "supervisors_listen_to" not in section:
            return frozenset({"assigned"})
        grants = self.texts(
            section, "supervisors_listen_to", ("access",), required=True, non_empty=True
        )
        if grants is None:
            return None
        bad = [i for i, g in enumerate(grants) if g not in SCOPE_GRANTS]
        for index in bad:
            self.problem(
                ("access", "supervisors_listen_to", index),
                f"{grants[index]!r} is not allowed; use one of: {', '.join(SCOPE_GRANTS)}",
            )
        return None if bad else frozenset(cast(list[ScopeGrant], grants))

    def quotas(self, doc: dict[str, Any]) -> Quotas | None:
        section = self.table(doc, "quotas", (), required=True)
        if section is None:
            return None
        path: KeyPath = ("quotas",)
        self.known_keys(section, path, ("per_agent_per_month", "per_supervisor_per_day"))
        per_agent = self.count(
            section,
            "per_agent_per_month",
            path,
            minimum=0,
            hint="how many listens per agent per calendar month",
        )
        per_supervisor = self.count(
            section,
            "per_supervisor_per_day",
            path,
            minimum=0,
            hint="how many listens per supervisor per day",
        )
        if per_agent is None or per_supervisor is None:
            return None
        return Quotas(per_agent, per_supervisor)

    def hours(self, doc: dict[str, Any]) -> Hours | None:
        section = self.table(doc, "hours", (), required=True)
        if section is None:
            return None
        path: KeyPath = ("hours",)
        self.known_keys(section, path, ("timezone", "allowed"))
        zone = None
        name = self.text(
            section,
            "timezone",
            path,
            hint='name the site\'s time zone, e.g. timezone = "Europe/Berlin"',
        )
        if name is not None:
            try:
                zone = ZoneInfo(name)
            except (ZoneInfoNotFoundError, ValueError, OSError):
                self.problem(
                    path + ("timezone",),
                    f"unknown time zone {name!r}; use an IANA name such as Europe/Berlin",
                )
        hint = 'list when listening is allowed, e.g. allowed = ["Mon-Fri 08:00-18:00"]'
        texts = self.texts(section, "allowed", path, required=True, non_empty=True, hint=hint)
        windows: list[HoursWindow] = []
        for index, text in enumerate(texts or ()):
            try:
                windows.append(parse_window(text))
            except ValueError as exc:
                self.problem(path + ("allowed", index), str(exc))
        if zone is None or name is None or texts is None or len(windows) != len(texts):
            return None
        return Hours(name, zone, tuple(windows))

    def exclusions(self, doc: dict[str, Any]) -> tuple[Exclusion, ...] | None:
        if "exclusions" not in doc:
            return ()
        items = self.value(doc, "exclusions", (), list, required=True)
        if items is None:
            return None
        exclusions: list[Exclusion] = []
        for index, body in enumerate(items):
            path: KeyPath = ("exclusions", index)
            if not isinstance(body, dict):
                self.problem(path, f"expected a table ([[exclusions]]), found {describe(body)}")
                continue
            exclusion = self.exclusion(body, path, index)
            if exclusion is not None:
                exclusions.append(exclusion)
        return tuple(exclusions) if len(exclusions) == len(items) else None

    def exclusion(self, body: dict[str, Any], path: KeyPath, index: int) -> Exclusion | None:
        before = len(self.problems)
        self.known_keys(body, path, ("name",) + EXCLUSION_MATCH_KEYS)
        name = self.text(body, "name", path, required=False) or f"exclusion {index + 1}"
        if not any(key in body for key in EXCLUSION_MATCH_KEYS):
            self.problem(
                path, f"matches nothing; give at least one of: {', '.join(EXCLUSION_MATCH_KEYS)}"
            )
            return None
        private = self.value(body, "private", path, bool, required=False)
        if private is False:
            self.problem(
                path + ("private",),
                "private = false would exclude every ordinary call; private calls are always "
                "excluded, so write private = true or leave it out",
            )
        fields: dict[str, frozenset[str] | None] = {}
        for key in ("queue", "agent_id", "source"):
            fields[key] = self.text_or_texts(body, key, path) if key in body else None
        attributes: list[tuple[str, frozenset[str]]] = []
        table = self.value(body, "attributes", path, dict, required=False)
        for attribute in table or {}:
            values = self.text_or_texts(table or {}, attribute, path + ("attributes",))
            if values is not None:
                attributes.append((attribute, values))
        if table is not None and not table:
            self.problem(
                path + ("attributes",),
                "an empty attributes table matches nothing; name at least one attribute",
            )
        if len(self.problems) != before:
            return None
        return Exclusion(
            name=name,
            private=private,
            queue=fields["queue"],
            agent_id=fields["agent_id"],
            source=fields["source"],
            attributes=tuple(sorted(attributes)),
        )

    def consent(self, doc: dict[str, Any]) -> CallerConsent | None:
        section = self.table(doc, "consent", (), required=True)
        if section is None:
            return None
        self.known_keys(section, ("consent",), ("caller",))
        hint = 'say whether the caller\'s leg needs consent: caller = "required" or "not_required"'
        return self.choice(section, "caller", ("consent",), CALLER_CONSENT, hint)

    def notices(self, doc: dict[str, Any], teams: Mapping[str, Team] | None) -> Notices | None:
        section = self.table(doc, "notices", (), required=True)
        if section is None:
            return None
        path: KeyPath = ("notices",)
        self.known_keys(
            section, path, ("default", "teams", "digest_schedule", "unannounced_allowed")
        )
        hint = 'how agents learn of a listen: default = "live", "after_call" or "digest"'
        default = self.choice(section, "default", path, NOTICE_MODES, hint)
        overrides: dict[str, NoticeMode] = {}
        ok = default is not None
        per_team = self.value(section, "teams", path, dict, required=False)
        ok = ok and (per_team is not None or "teams" not in section)
        for team, mode in (per_team or {}).items():
            where = path + ("teams", team)
            if not self.known_team(where, team, teams):
                ok = False
            elif not isinstance(mode, str) or mode not in NOTICE_MODES:
                self.problem(
                    where, f"expected one of {', '.join(NOTICE_MODES)}, found {describe(mode)}"
                )
                ok = False
            else:
                overrides[team] = mode
        schedule: DigestSchedule | None = None
        schedule_text = self.text(section, "digest_schedule", path, required=False)
        if schedule_text is not None:
            try:
                schedule = parse_schedule(schedule_text)
            except ValueError as exc:
                self.problem(path + ("digest_schedule",), str(exc))
                ok = False
        elif "digest_schedule" in section:
            ok = False
        unannounced = self.boolean(
            section,
            "unannounced_allowed",
            path,
            "say whether supervisors may listen without a live indicator: unannounced_allowed = true or false",
        )
        # The contradictions are checked on whatever is valid, so they show up alongside
        # other mistakes in the same section.
        modes: list[tuple[KeyPath, NoticeMode]] = [
            (path + ("teams", t), m) for t, m in overrides.items()
        ]
        if default is not None:
            modes.insert(0, (path + ("default",), default))
        for where, mode in modes:
            if mode not in ANNOUNCED_MODES and unannounced is False:
                self.problem(
                    where,
                    f"{mode!r} notices mean the agent learns of a listen only afterwards (unannounced "
                    'listening), but unannounced_allowed = false; use "live" or allow it',
                )
                ok = False
        if any(mode == "digest" for _, mode in modes) and "digest_schedule" not in section:
            self.problem(
                path + ("digest_schedule",),
                'missing; digest notices need a schedule, e.g. "weekly Fri 16:00"',
            )
            ok = False
        if not ok or default is None or unannounced is None:
            return None
        return Notices(default, MappingProxyType(overrides), schedule, unannounced)

    def disclosure(self, doc: dict[str, Any]) -> bool | None:
        section = self.table(doc, "disclosure", (), required=True)
        if section is None:
            return None
        self.known_keys(section, ("disclosure",), ("listener_names",))
        return self.boolean(
            section,
            "listener_names",
            ("disclosure",),
            "say whether agents see who listened (true) or only the role (false)",
        )

    def retention(self, doc: dict[str, Any]) -> int | None:
        section = self.table(doc, "retention", (), required=True)
        if section is None:
            return None
        self.known_keys(section, ("retention",), ("days",))
        return self.count(
            section,
            "days",
            ("retention",),
            minimum=1,
            hint="after how many days personal details are erased",
        )


def _names_only(section: Iterable[str], teams: Mapping[str, Team]) -> dict[str, Team]:
    """Teams with problems, by name only, so that references to them are still recognised."""
    return {name: teams.get(name, Team(name, frozenset())) for name in section}
