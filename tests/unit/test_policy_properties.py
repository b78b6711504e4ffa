"""Properties of the policy over generated policies, actors, calls, counts and times.

Policies are generated as TOML *text* from a few parameters and loaded with ``load_policy``;
the properties are checked against those parameters directly (an independent oracle), not
against the parsed ``Policy``, so a parsing mistake cannot hide a decision mistake.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from live.auth.identity import Identity
from live.model import CallInfo
from live.policy import (
    Listen,
    Policy,
    PolicyError,
    QuotaState,
    SetConsent,
    SetPci,
    StartedListen,
    ViewRosterCall,
    decide,
    leg_audibility,
    load_policy,
    quota_state,
)
from live.types import CallId, Consent, NodeId, Role

BERLIN = ZoneInfo("Europe/Berlin")
AGENTS = ("a0", "a1", "a2", "a3", "a4", "a5")
TEAMS = ("t0", "t1", "t2")
SUPERVISORS = ("s0", "s1", "s2")
PURPOSES = ("quality", "training", "coaching")
QUEUES = ("", "q0", "q1", "works-council")
DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
ZONES = (UTC, BERLIN, ZoneInfo("America/New_York"), ZoneInfo("Asia/Kolkata"))

PROPERTY = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@dataclass(frozen=True)
class Params:
    """What a generated policy says, in the plainest terms (the oracle reads these)."""

    team_of: dict[str, str]  # agent -> team
    grants: dict[str, tuple[frozenset[str], frozenset[str]]]  # supervisor -> (teams, agents)
    access: frozenset[str]
    purposes: tuple[str, ...]
    per_agent: int
    per_supervisor: int
    windows: tuple[tuple[frozenset[int], int, int], ...]  # (weekdays, start hour, end hour)
    excluded_queues: frozenset[str]
    excluded_attribute: str | None  # calls with attribute {name: "1"} are excluded
    caller: str
    notice: str

    def toml(self) -> str:
        out = ['version = "gen"', f"purposes = {json.dumps(list(self.purposes))}"]
        for team in TEAMS:
            members = sorted(a for a, t in self.team_of.items() if t == team)
            out += [f"[teams.{team}]", f"agents = {json.dumps(members)}"]
        for user, (teams, agents) in self.grants.items():
            out.append(f"[supervisors.{user}]")
            if teams:
                out.append(f"teams = {json.dumps(sorted(teams))}")
            if agents:
                out.append(f"agents = {json.dumps(sorted(agents))}")
        out += ["[access]", f"supervisors_listen_to = {json.dumps(sorted(self.access))}"]
        out += [
            "[quotas]",
            f"per_agent_per_month = {self.per_agent}",
            f"per_supervisor_per_day = {self.per_supervisor}",
        ]
        windows = [
            f"{','.join(DAYS[d] for d in sorted(days))} {start:02d}:00-{end:02d}:00"
            for days, start, end in self.windows
        ]
        out += ["[hours]", 'timezone = "Europe/Berlin"', f"allowed = {json.dumps(windows)}"]
        if self.excluded_queues:
            out += ["[[exclusions]]", f"queue = {json.dumps(sorted(self.excluded_queues))}"]
        if self.excluded_attribute:
            out += ["[[exclusions]]", f'attributes = {{ {self.excluded_attribute} = "1" }}']
        out += ["[consent]", f'caller = "{self.caller}"']
        out += [
            "[notices]",
            f'default = "{self.notice}"',
            f"unannounced_allowed = {'false' if self.notice == 'live' else 'true'}",
            'digest_schedule = "daily 17:00"',
        ]
        out += ["[disclosure]", "listener_names = false", "[retention]", "days = 30"]
        return "\n".join(out) + "\n"

    # --- the oracle ------------------------------------------------------------------------

    def scope(self, actor: Identity) -> set[str]:
        if actor.role is not Role.SUPERVISOR:
            return set()
        teams: set[str] = set()
        agents: set[str] = set()
        if "assigned" in self.access and actor.user_id in self.grants:
            granted_teams, granted_agents = self.grants[actor.user_id]
            teams |= granted_teams
            agents |= granted_agents
        if "own_teams" in self.access:
            teams |= set(actor.teams)
        return agents | {a for a, t in self.team_of.items() if t in teams}

    def in_scope(self, actor: Identity, agent_id: str) -> bool:
        if actor.role is Role.SUPERVISOR and "all_agents" in self.access:
            return True
        return agent_id in self.scope(actor)

    def never_listenable(self, call: CallInfo) -> bool:
        return (
            call.private
            or call.queue in self.excluded_queues
            or (
                self.excluded_attribute is not None
                and call.attributes.get(self.excluded_attribute) == "1"
            )
        )

    def within_hours(self, now: datetime) -> bool:
        local = now.astimezone(BERLIN)
        minute = local.hour * 60 + local.minute
        return any(
            local.weekday() in days and start * 60 <= minute < end * 60
            for days, start, end in self.windows
        )


def _window() -> st.SearchStrategy[tuple[frozenset[int], int, int]]:
    return st.tuples(st.frozensets(st.integers(0, 6), min_size=1), st.integers(0, 23)).flatmap(
        lambda x: st.tuples(st.just(x[0]), st.just(x[1]), st.integers(x[1] + 1, 24))
    )


@st.composite
def params(draw: st.DrawFn) -> Params:
    team_of = {
        agent: team
        for agent in AGENTS
        if (team := draw(st.sampled_from((None,) + TEAMS))) is not None
    }
    grants: dict[str, tuple[frozenset[str], frozenset[str]]] = {}
    for user in SUPERVISORS:
        teams = draw(st.frozensets(st.sampled_from(TEAMS)))
        agents = draw(st.frozensets(st.sampled_from(AGENTS)))
        if teams or agents:
            grants[user] = (teams, agents)
    return Params(
        team_of=team_of,
        grants=grants,
        access=draw(st.frozensets(st.sampled_from(("assigned", "own_teams", "all_agents")), min_size=1)),
        purposes=tuple(draw(st.lists(st.sampled_from(PURPOSES), min_size=1, unique=True))),
        per_agent=draw(st.sampled_from((0, 1, 2, 3, 3, 3))),
        per_supervisor=draw(st.sampled_from((0, 1, 2, 3, 3, 3))),
        # Often a window that is always open, so that the other rules decide.
        # dict.fromkeys: the always-open window may already be among the drawn ones, and a
        # policy may not list a window twice.
        windows=tuple(
            dict.fromkeys(
                draw(st.lists(_window(), min_size=1, max_size=3, unique=True))
                + list(draw(st.sampled_from(((), ((frozenset(range(7)), 0, 24),)))))
            )
        ),
        excluded_queues=draw(st.frozensets(st.sampled_from(QUEUES[1:]))),
        excluded_attribute=draw(st.sampled_from((None, "vip", "hr"))),
        caller=draw(st.sampled_from(("required", "not_required"))),
        notice=draw(st.sampled_from(("live", "after_call", "digest"))),
    )


identities = st.builds(
    Identity,
    user_id=st.sampled_from(SUPERVISORS * 3 + AGENTS + ("zz",)),
    display_name=st.just("Someone"),
    role=st.sampled_from((Role.SUPERVISOR,) * 3 + tuple(Role)),
    teams=st.lists(st.sampled_from(TEAMS + ("other",)), max_size=3, unique=True).map(tuple),
)

calls = st.builds(
    CallInfo,
    call_id=st.just(CallId("c1")),
    source=st.sampled_from(("demo", "twilio")),
    agent_id=st.sampled_from(AGENTS + ("unknown",)),
    started_at=st.just(1717401600.0),
    node_id=st.just(NodeId("n1")),
    consent=st.sampled_from(Consent),
    pci_paused=st.booleans(),
    queue=st.sampled_from(("",) * 4 + QUEUES),
    private=st.sampled_from((False, False, False, True)),
    attributes=st.just({})
    | st.dictionaries(st.sampled_from(("vip", "hr", "lang")), st.sampled_from(("1", "0"))),
)

moments = st.datetimes(
    min_value=datetime(2023, 1, 1),
    max_value=datetime(2026, 12, 31),
    timezones=st.sampled_from(ZONES),
)
states = st.just(QuotaState()) | st.builds(
    QuotaState, agent_month=st.integers(0, 4), supervisor_day=st.integers(0, 4)
)
purposes = st.sampled_from(PURPOSES * 3 + ("", "gossip")) | st.none()


def policy_of(p: Params) -> Policy:
    return load_policy(p.toml(), "generated.toml")


# --- listening -----------------------------------------------------------------------------


@settings(PROPERTY, max_examples=1000)
@given(params(), identities, purposes, calls, states, moments)
def test_listening_is_allowed_exactly_when_every_rule_holds(
    p: Params,
    actor: Identity,
    purpose: str | None,
    call: CallInfo,
    state: QuotaState,
    now: datetime,
) -> None:
    policy = policy_of(p)
    decision = decide(actor, Listen(purpose), call, state, policy, now)
    rules = {
        "only supervisors listen": actor.role is Role.SUPERVISOR,
        "a purpose from the list": purpose in p.purposes,
        "never a private or excluded call": not p.never_listenable(call),
        "only agents in the supervisor's teams": p.in_scope(actor, call.agent_id),
        "only within hours": p.within_hours(now),
        "the agent's monthly quota holds": state.agent_month < p.per_agent,
        "the supervisor's daily quota holds": state.supervisor_day < p.per_supervisor,
    }
    assert decision.allowed == all(rules.values()), (decision, rules)
    if decision.allowed:
        assert dict(decision.legs) == leg_audibility(call, policy)
        assert decision.notice_mode is not None
    else:
        assert dict(decision.legs) == {} and decision.reason != "ok"


@PROPERTY
@given(params(), identities, calls, states, moments)
def test_a_refusal_names_a_rule_that_fails(
    p: Params, actor: Identity, call: CallInfo, state: QuotaState, now: datetime
) -> None:
    decision = decide(actor, Listen(p.purposes[0]), call, state, policy_of(p), now)
    failing = {
        "role_forbidden": actor.role is not Role.SUPERVISOR,
        "call_private": call.private,
        "excluded": p.never_listenable(call) and not call.private,
        "outside_team": not p.in_scope(actor, call.agent_id),
        "outside_hours": not p.within_hours(now),
        "quota_agent_month": state.agent_month >= p.per_agent,
        "quota_supervisor_day": state.supervisor_day >= p.per_supervisor,
    }
    if not decision.allowed:
        assert failing[decision.reason.value]


@PROPERTY
@given(
    params(),
    st.lists(st.tuples(st.sampled_from(SUPERVISORS), st.sampled_from(AGENTS)), max_size=40),
    moments,
)
def test_quotas_are_never_exceeded_when_counts_come_from_the_history(
    p: Params, requests: list[tuple[str, str]], start: datetime
) -> None:
    """Replay requests a few hours apart, counting with ``quota_state`` as the service does."""
    policy = policy_of(p)
    history: list[StartedListen] = []
    for step, (user, agent) in enumerate(requests):
        now = start + timedelta(hours=5 * step)
        actor = Identity(user, user, Role.SUPERVISOR, teams=TEAMS)
        call = CallInfo(CallId(f"c{step}"), "demo", agent, now.timestamp(), NodeId("n1"))
        state = quota_state(history, agent_id=agent, listener_id=user, policy=policy, now=now)
        if decide(actor, Listen(p.purposes[0]), call, state, policy, now).allowed:
            history.append(StartedListen(agent, user, now.timestamp()))
    for listen in history:
        moment = datetime.fromtimestamp(listen.started_at, BERLIN)
        same_month = [
            x
            for x in history
            if x.agent_id == listen.agent_id
            and datetime.fromtimestamp(x.started_at, BERLIN).strftime("%Y-%m")
            == moment.strftime("%Y-%m")
        ]
        same_day = [
            x
            for x in history
            if x.listener_id == listen.listener_id
            and datetime.fromtimestamp(x.started_at, BERLIN).date() == moment.date()
        ]
        assert len(same_month) <= p.per_agent
        assert len(same_day) <= p.per_supervisor


# --- other actions -------------------------------------------------------------------------


@PROPERTY
@given(params(), identities, calls, states, moments, st.sampled_from(Consent), st.booleans())
def test_no_one_sees_or_raises_what_they_may_not(
    p: Params,
    actor: Identity,
    call: CallInfo,
    state: QuotaState,
    now: datetime,
    consent: Consent,
    paused: bool,
) -> None:
    policy = policy_of(p)
    view = decide(actor, ViewRosterCall(), call, state, policy, now)
    set_consent = decide(actor, SetConsent(consent), call, state, policy, now)
    set_pci = decide(actor, SetPci(paused), call, state, policy, now)
    if actor.role is Role.AUDITOR:
        assert not (view.allowed or set_consent.allowed or set_pci.allowed)
    if actor.role is Role.SUPERVISOR:
        # A supervisor sees only listenable calls in scope, and can only lower what is heard.
        if view.allowed:
            assert p.in_scope(actor, call.agent_id) and not p.never_listenable(call)
        if set_consent.allowed:
            assert consent is Consent.DENIED and p.in_scope(actor, call.agent_id)
        if set_pci.allowed:
            assert paused and p.in_scope(actor, call.agent_id)
    if actor.role is Role.AGENT:
        own = call.agent_id == actor.user_id
        assert view.allowed == set_consent.allowed == set_pci.allowed == own
    if actor.role is Role.ADMIN and view.allowed:
        assert not p.never_listenable(call)


# --- legs ----------------------------------------------------------------------------------


@PROPERTY
@given(params(), calls)
def test_what_is_heard(p: Params, call: CallInfo) -> None:
    legs = leg_audibility(call, policy_of(p))
    if call.pci_paused:
        assert not legs["agent"].audible and not legs["caller"].audible
        assert legs["agent"].reason == legs["caller"].reason == "payment-pause"
    else:
        assert legs["agent"].audible
    if call.consent is Consent.DENIED:
        assert not legs["caller"].audible
    if call.consent is Consent.UNKNOWN and p.caller == "required":
        assert not legs["caller"].audible
    expected_caller = not call.pci_paused and (
        call.consent is Consent.GRANTED
        or (call.consent is Consent.UNKNOWN and p.caller == "not_required")
    )
    assert legs["caller"].audible == expected_caller


# --- parsing -------------------------------------------------------------------------------


@PROPERTY
@given(
    params(), st.lists(st.sampled_from(("", "# a comment", "   ", "# [teams.x] = 1")), min_size=1)
)
def test_comments_and_blank_lines_change_only_the_source_hash(p: Params, extra: list[str]) -> None:
    text = p.toml()
    lines = text.splitlines()
    padded = "\n".join(x for pair in zip(extra * len(lines), lines) for x in pair) + "\n"
    original, reformatted = load_policy(text), load_policy(padded)
    assert reformatted.sha256 == original.sha256
    assert (reformatted.source_sha256 == original.source_sha256) == (padded == text)


toml_fragments = st.sampled_from(
    (
        'version = "v"',
        "version = 1",
        "purposes = []",
        'purposes = ["quality"]',
        "[quotas]",
        "per_agent_per_month = -1",
        "per_supervisor_per_day = 2",
        "[hours]",
        'timezone = "X/Y"',
        'allowed = ["Mon 9:00-8:00"]',
        "[[exclusions]]",
        'queue = "q"',
        "[notices]",
        'default = "digest"',
        "[notices.teams]",
        't = "live"',
        "[teams.t]",
        'agents = ["a", "a"]',
        "[retention]",
        "days = 0",
        "[consent]",
        'caller = "x"',
        "x = [",
        '"',
        "]",
        "= =",
        "a.b.c = 1",
    )
)


@settings(max_examples=400, deadline=None)
@given(st.lists(toml_fragments, max_size=25) | st.text(max_size=200))
def test_any_text_gives_a_policy_or_problems_with_lines_inside_the_file(
    parts: list[str] | str,
) -> None:
    text = parts if isinstance(parts, str) else "\n".join(parts)
    try:
        load_policy(text)
    except PolicyError as exc:
        assert exc.problems
        for problem in exc.problems:
            assert 1 <= problem.line <= text.count("\n") + 1 + text.count("\r")
            assert problem.key and problem.message
