"""The policy's decisions: may this person do this to this call, now? Which legs are heard?

``decide`` is one pure function over the actor, the action, the call, the quota counts, the
policy and the current time. It never reads a clock or a store: the caller passes ``now`` and
the counts (``quota.py`` helps to compute them), so every decision can be replayed and
tested. Its ``reason`` is machine-readable (``Reason``) and goes to the ledger and the API.

Listening (``Listen``) is checked in this order; the first failing rule is the reason:

1. ``role_forbidden``: only supervisors listen;
2. ``call_unknown``: there is no such call;
3. ``purpose_required`` / ``purpose_not_allowed``: a purpose from the policy's list;
4. ``call_private``: private calls can never be listened to (COMPLIANCE.md, "Exclusions");
   ``excluded``: nor can calls matching an ``[[exclusions]]`` entry;
5. ``outside_team``: the call's agent is outside the supervisor's scope;
6. ``outside_hours``: not within ``[hours] allowed`` in the policy's time zone;
7. ``quota_supervisor_day`` / ``quota_agent_month``: the listens already started reach a quota;
8. ``ok``.

Changing a call's state protects in one direction only: anyone responsible for a call may
*lower* what can be heard (consent ``denied``, PCI pause), but only the call's agent and the
CTI integration (admin) may *raise* it again; a supervisor, who would profit, may not.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import ClassVar, Protocol, TypeAlias

from ..errors import BadRequest, Forbidden, LiveError, NotFound
from ..model import CallInfo
from ..types import Consent, LegName, Role
from .listener import shown_listener
from .model import ANNOUNCED_MODES, NoticeMode, Policy
from .quota import QuotaState


class Actor(Protocol):
    """Who asks: what ``decide`` reads of an identity.

    ``live.auth.Identity`` fits; it is not imported here because ``auth`` sits in a lower
    layer than ``policy`` (ARCHITECTURE.md, "Layers").
    """

    @property
    def user_id(self) -> str: ...

    @property
    def display_name(self) -> str: ...

    @property
    def role(self) -> Role: ...

    @property
    def teams(self) -> tuple[str, ...]: ...


class Reason(str, enum.Enum):
    """Why a decision went the way it did (a stable, machine-readable code)."""

    OK = "ok"
    ROLE_FORBIDDEN = "role_forbidden"
    CALL_UNKNOWN = "call_unknown"
    PURPOSE_REQUIRED = "purpose_required"
    PURPOSE_NOT_ALLOWED = "purpose_not_allowed"
    CALL_PRIVATE = "call_private"
    EXCLUDED = "excluded"
    OUTSIDE_TEAM = "outside_team"
    OUTSIDE_HOURS = "outside_hours"
    QUOTA_SUPERVISOR_DAY = "quota_supervisor_day"
    QUOTA_AGENT_MONTH = "quota_agent_month"
    NOT_OWN_CALL = "not_own_call"
    CONSENT_GRANT_FORBIDDEN = "consent_grant_forbidden"
    PCI_RESUME_FORBIDDEN = "pci_resume_forbidden"


# --- actions ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Listen:
    """Start a listen session, for ``purpose`` (which must be one of the policy's)."""

    name: ClassVar[str] = "listen"
    purpose: str | None


@dataclass(frozen=True, slots=True)
class SetConsent:
    """Record the caller's consent state on a call."""

    name: ClassVar[str] = "set_consent"
    consent: Consent


@dataclass(frozen=True, slots=True)
class SetPci:
    """Enter (``paused=True``) or leave a payment pause."""

    name: ClassVar[str] = "set_pci"
    paused: bool


@dataclass(frozen=True, slots=True)
class ViewRosterCall:
    """See the call in the roster (``GET /api/calls``, ``/api/events``)."""

    name: ClassVar[str] = "view_roster_call"


Action: TypeAlias = Listen | SetConsent | SetPci | ViewRosterCall


# --- what is heard ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LegAudibility:
    """Whether one leg reaches listeners now, and why (``payment-pause``, ``consent-denied``,
    ``consent-unknown``; when heard ``ok``, ``consent-granted`` or ``consent-not-required``).
    These reasons are what ``leg.muted`` / ``leg.unmuted`` ledger entries record."""

    audible: bool
    reason: str


def leg_audibility(call: CallInfo, policy: Policy) -> dict[LegName, LegAudibility]:
    """Which legs of ``call`` a listener may hear now (architecture decision 1: legs are tracks).

    A payment pause silences both legs (PCI DSS). A caller who denied consent is never heard,
    whatever the policy; a caller whose consent is unknown is heard only when the policy says
    ``[consent] caller = "not_required"``; granted consent is heard.
    """
    if call.pci_paused:
        paused = LegAudibility(False, "payment-pause")
        return {"agent": paused, "caller": paused}
    if call.consent is Consent.GRANTED:
        caller = LegAudibility(True, "consent-granted")
    elif call.consent is Consent.DENIED:
        caller = LegAudibility(False, "consent-denied")
    elif policy.caller_consent == "not_required":
        caller = LegAudibility(True, "consent-not-required")
    else:
        caller = LegAudibility(False, "consent-unknown")
    return {"agent": LegAudibility(True, "ok"), "caller": caller}


# --- decisions --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Decision:
    """The answer to one request. ``legs`` (who is heard) and ``notice_mode`` are set for an
    allowed ``Listen``; ``team`` is the call's agent's team when the policy names one."""

    allowed: bool
    reason: Reason
    message: str
    policy_version: str
    legs: Mapping[LegName, LegAudibility] = field(default_factory=dict)
    notice_mode: NoticeMode | None = None
    team: str | None = None

    def refusal(self) -> LiveError:
        """The error to raise for a refused decision (400 for a bad purpose, 404 for an unknown
        call, 403 otherwise), coded with the reason and naming the policy version."""
        kind: type[LiveError] = Forbidden
        if self.reason in (Reason.PURPOSE_REQUIRED, Reason.PURPOSE_NOT_ALLOWED):
            kind = BadRequest
        elif self.reason is Reason.CALL_UNKNOWN:
            kind = NotFound
        return kind(self.message, code=self.reason.value, policy_version=self.policy_version)

    def raise_if_refused(self) -> None:
        if not self.allowed:
            raise self.refusal()


_Refuse: TypeAlias = Callable[[Reason, str], Decision]


def decide(
    actor: Actor,
    action: Action,
    call: CallInfo | None,
    state: QuotaState,
    policy: Policy,
    now: datetime,
) -> Decision:
    """Decide ``action`` by ``actor`` on ``call`` under ``policy`` at ``now`` (timezone-aware).

    ``state`` holds the listens already started this month on the call's agent and today by
    the actor (see ``quota.quota_state``); it matters only for ``Listen``.
    """
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    team = policy.team_of(call.agent_id) if call is not None else None

    def refuse(reason: Reason, message: str) -> Decision:
        return Decision(False, reason, message, policy.version, team=team)

    def allow(message: str = "allowed") -> Decision:
        return Decision(True, Reason.OK, message, policy.version, team=team)

    if isinstance(action, Listen):
        return _decide_listen(actor, action, call, state, policy, now, refuse)
    if call is None:
        return refuse(Reason.CALL_UNKNOWN, "there is no such call")
    if actor.role is Role.ADMIN:  # the CTI integration and operators
        if isinstance(action, ViewRosterCall):
            hidden = _hidden(call, policy, refuse)
            return hidden or allow()
        return allow()
    if actor.role is Role.AGENT:
        if call.agent_id != actor.user_id:
            return refuse(Reason.NOT_OWN_CALL, "agents may act only on their own calls")
        return allow()
    if actor.role is not Role.SUPERVISOR:
        return refuse(Reason.ROLE_FORBIDDEN, f"the {actor.role.value} role may not do this")
    if isinstance(action, ViewRosterCall):
        hidden = _hidden(call, policy, refuse)
        if hidden is not None:
            return hidden
    if not in_scope(actor, call.agent_id, policy):
        return refuse(Reason.OUTSIDE_TEAM, "this call's agent is outside your teams")
    if isinstance(action, SetConsent) and action.consent is not Consent.DENIED:
        return refuse(
            Reason.CONSENT_GRANT_FORBIDDEN,
            "supervisors may only record that the caller objects; the agent or the telephony "
            "system records consent",
        )
    if isinstance(action, SetPci) and not action.paused:
        return refuse(
            Reason.PCI_RESUME_FORBIDDEN,
            "only the agent or the telephony system ends a payment pause",
        )
    return allow()


def _hidden(call: CallInfo, policy: Policy, refuse: _Refuse) -> Decision | None:
    """Refuse a call that may never be listened to (private or excluded), else ``None``."""
    if call.private:
        return refuse(Reason.CALL_PRIVATE, "this call is private and can never be listened to")
    exclusion = policy.exclusion_for(call)
    if exclusion is not None:
        return refuse(Reason.EXCLUDED, f"the policy excludes this call ({exclusion.name})")
    return None


def _decide_listen(
    actor: Actor,
    action: Listen,
    call: CallInfo | None,
    state: QuotaState,
    policy: Policy,
    now: datetime,
    refuse: _Refuse,
) -> Decision:
    if actor.role is not Role.SUPERVISOR:
        return refuse(Reason.ROLE_FORBIDDEN, "only supervisors may listen")
    if call is None:
        return refuse(Reason.CALL_UNKNOWN, "there is no such call")
    purposes = ", ".join(policy.purposes)
    if not action.purpose:
        return refuse(Reason.PURPOSE_REQUIRED, f"a purpose is required, one of: {purposes}")
    if action.purpose not in policy.purposes:
        return refuse(
            Reason.PURPOSE_NOT_ALLOWED,
            f"{action.purpose!r} is not an allowed purpose; one of: {purposes}",
        )
    hidden = _hidden(call, policy, refuse)
    if hidden is not None:
        return hidden
    if not in_scope(actor, call.agent_id, policy):
        return refuse(Reason.OUTSIDE_TEAM, "this call's agent is outside your teams")
    if not within_hours(policy, now):
        windows = ", ".join(w.text for w in policy.hours.windows)
        return refuse(
            Reason.OUTSIDE_HOURS, f"listening is allowed only {windows} ({policy.hours.timezone})"
        )
    quotas = policy.quotas
    if state.supervisor_day >= quotas.per_supervisor_per_day:
        return refuse(
            Reason.QUOTA_SUPERVISOR_DAY,
            f"you have reached today's quota of {quotas.per_supervisor_per_day} listens",
        )
    if state.agent_month >= quotas.per_agent_per_month:
        return refuse(
            Reason.QUOTA_AGENT_MONTH,
            f"this agent has been listened to {quotas.per_agent_per_month} times this month, the quota",
        )
    team = policy.team_of(call.agent_id)
    return Decision(
        True,
        Reason.OK,
        "allowed",
        policy.version,
        legs=leg_audibility(call, policy),
        notice_mode=notice_mode_for(call.agent_id, policy),
        team=team,
    )


# --- the rules decide uses, also useful on their own --------------------------------------


def supervisor_scope(actor: Actor, policy: Policy) -> frozenset[str]:
    """The agents named in a supervisor's scope (empty for every other role).

    ``assigned``: the teams and agents of ``[supervisors.<user_id>]``; ``own_teams``: the
    policy's teams that the supervisor's identity belongs to (``Identity.teams``). The
    ``all_agents`` grant names no one: ``in_scope`` answers it.
    """
    if actor.role is not Role.SUPERVISOR:
        return frozenset()
    teams: set[str] = set()
    agents: set[str] = set()
    if "assigned" in policy.supervisors_listen_to:
        grant = policy.supervisors.get(actor.user_id)
        if grant is not None:
            teams |= grant.teams
            agents |= grant.agents
    if "own_teams" in policy.supervisors_listen_to:
        teams |= set(actor.teams)
    for name in teams:
        team = policy.teams.get(name)
        if team is not None:
            agents |= team.agents
    return frozenset(agents)


def in_scope(actor: Actor, agent_id: str, policy: Policy) -> bool:
    """Whether ``agent_id`` is in the supervisor's scope; with the ``all_agents`` grant (the
    built-in default policy's) every agent is."""
    if actor.role is Role.SUPERVISOR and "all_agents" in policy.supervisors_listen_to:
        return True
    return agent_id in supervisor_scope(actor, policy)


def within_hours(policy: Policy, now: datetime) -> bool:
    """Whether ``now`` lies in one of the policy's allowed windows, in its time zone."""
    local = now.astimezone(policy.hours.zone)
    return any(window.contains(local) for window in policy.hours.windows)


def notice_mode_for(agent_id: str, policy: Policy) -> NoticeMode:
    """How the agent learns of listens: their team's override, else the policy's default."""
    team = policy.team_of(agent_id)
    if team is not None:
        return policy.notices.teams.get(team, policy.notices.default)
    return policy.notices.default


def listener_label(listener: Actor, policy: Policy) -> str:
    """What agents are shown as the listener: the name, or only the role, as the policy says
    (``shown_listener``, the one rule)."""
    return shown_listener(
        names=policy.listener_names,
        display_name=listener.display_name,
        user_id=listener.user_id,
        role=listener.role.value,
    ).text


def unannounced(policy: Policy) -> bool:
    """Whether the policy allows listening without a live indicator to the agent."""
    return policy.notices.unannounced_allowed


def announced(mode: NoticeMode) -> bool:
    """Whether a notice mode tells the agent while the listen is happening."""
    return mode in ANNOUNCED_MODES
