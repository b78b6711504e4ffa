"""A call as the console's roster shows it: the call's JSON plus who its agent is.

The telephony knows the agent by an id (``agent-17``); people know them by name and team.
``AgentDirectory`` answers both from what the server already holds: the user store's
display name (else an ``agent_name`` the telephony passed with the call) and the policy's
team (else the first team of the agent's user entry). It is built once per snapshot, so a
roster of hundreds of calls costs one read of the user store.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..auth import UserStore
from ..model import CallInfo, call_to_json
from ..policy import Policy

# Custom parameters a telephony flow may use for the agent's name (Twilio customParameters,
# AudioHook customConfig): the first one present wins.
NAME_ATTRIBUTES = ("agent_name", "agentName", "agent_display_name")


@dataclass(frozen=True, slots=True)
class AgentEntry:
    name: str
    teams: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class AgentDirectory:
    """Names and teams of agents, as of one moment."""

    agents: Mapping[str, AgentEntry]
    policy: Policy | None

    @classmethod
    def read(cls, users: UserStore, policy: Policy | None) -> AgentDirectory:
        agents = {
            user.user_id: AgentEntry(
                user.display_name if user.display_name != user.user_id else "", user.teams
            )
            for user in users.list()
        }
        return cls(agents, policy)

    def name_of(self, call: CallInfo) -> str:
        entry = self.agents.get(call.agent_id)
        if entry is not None and entry.name:
            return entry.name
        for key in NAME_ATTRIBUTES:
            value = call.attributes.get(key, "").strip()
            if value:
                return value[:80]
        return ""

    def team_of(self, call: CallInfo) -> str:
        team = self.policy.team_of(call.agent_id) if self.policy is not None else None
        if team:
            return team
        entry = self.agents.get(call.agent_id)
        return entry.teams[0] if entry is not None and entry.teams else ""

    def call_json(self, call: CallInfo) -> dict[str, Any]:
        """``call_to_json`` plus ``agent_name`` and ``team`` (empty strings when unknown)."""
        body = call_to_json(call)
        body["agent_name"] = self.name_of(call)
        body["team"] = self.team_of(call)
        return body
