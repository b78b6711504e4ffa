"""``decide`` rule by rule, and in combination; which legs are heard; notices; quotas."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from live.auth.identity import Identity
from live.errors import BadRequest, Forbidden, NotFound
from live.model import CallInfo
from live.policy import (
    Action,
    Listen,
    Policy,
    QuotaState,
    Reason,
    SetConsent,
    SetPci,
    StartedListen,
    ViewRosterCall,
    day_bounds,
    decide,
    leg_audibility,
    listener_label,
    load_policy,
    month_bounds,
    notice_mode_for,
    quota_left,
    quota_state,
    supervisor_scope,
    unannounced,
)
from live.types import CallId, Consent, NodeId, Role

BERLIN = ZoneInfo("Europe/Berlin")

POLICY_TEXT = """\
version = "t1"
purposes = ["quality", "training"]

[teams.billing]
agents = ["ag-b1", "ag-b2"]

[teams.support]
agents = ["ag-s1"]

[teams.sales]
agents = ["ag-x1"]

[supervisors.sam]
teams = ["billing"]
agents = ["ag-s1"]

[access]
supervisors_listen_to = ["assigned", "own_teams"]

[quotas]
per_agent_per_month = 2
per_supervisor_per_day = 3

[hours]
timezone = "Europe/Berlin"
allowed = ["Mon-Fri 08:00-18:00"]

[[exclusions]]
name = "works council"
queue = "works-council"

[[exclusions]]
name = "vip callers"
attributes = { vip = ["yes", "true"] }

[consent]
caller = "required"

[notices]
default = "after_call"
unannounced_allowed = true
digest_schedule = "daily 17:00"

[notices.teams]
sales = "live"
support = "digest"

[disclosure]
listener_names = false

[retention]
days = 30
"""

POLICY = load_policy(POLICY_TEXT)
ASSIGNED_ONLY = load_policy(POLICY_TEXT.replace('["assigned", "own_teams"]', '["assigned"]'))
OWN_TEAMS_ONLY = load_policy(POLICY_TEXT.replace('["assigned", "own_teams"]', '["own_teams"]'))

SAM = Identity("sam", "Sam Supervisor", Role.SUPERVISOR)
KIM = Identity("kim", "Kim Supervisor", Role.SUPERVISOR, teams=("sales",))
PAT = Identity("pat", "Pat Supervisor", Role.SUPERVISOR)
AGENT = Identity("ag-b1", "Alex Agent", Role.AGENT, teams=("billing",))
AUDITOR = Identity("dana", "Dana Auditor", Role.AUDITOR)
ADMIN = Identity("cti", "CTI", Role.ADMIN)

MONDAY_10 = datetime(2024, 6, 3, 10, 0, tzinfo=BERLIN)
FREE = QuotaState()


def call(agent_id: str = "ag-b1", **changes: Any) -> CallInfo:
    base = CallInfo(CallId("c1"), "demo", agent_id, 1717401600.0, NodeId("n1"))
    return dataclasses.replace(base, **changes)


def reason(
    actor: Identity,
    action: Action,
    target: CallInfo | None,
    *,
    state: QuotaState = FREE,
    policy: Policy = POLICY,
    now: datetime = MONDAY_10,
) -> str:
    decision = decide(actor, action, target, state, policy, now)
    assert decision.allowed == (decision.reason is Reason.OK)
    assert decision.policy_version == policy.version
    return decision.reason.value


QUALITY = Listen("quality")

LISTEN_CASES: list[tuple[str, dict[str, Any], str]] = [
    # who listens
    ("assigned team", {"actor": SAM, "target": call("ag-b2")}, "ok"),
    ("assigned single agent", {"actor": SAM, "target": call("ag-s1")}, "ok"),
    ("not assigned", {"actor": SAM, "target": call("ag-x1")}, "outside_team"),
    ("agent in no team", {"actor": SAM, "target": call("ag-nobody")}, "outside_team"),
    ("own team from identity", {"actor": KIM, "target": call("ag-x1")}, "ok"),
    ("not own team", {"actor": KIM, "target": call("ag-b1")}, "outside_team"),
    ("no grant, no team", {"actor": PAT, "target": call("ag-b1")}, "outside_team"),
    (
        "own teams not granted",
        {"actor": KIM, "target": call("ag-x1"), "policy": ASSIGNED_ONLY},
        "outside_team",
    ),
    (
        "assignment not granted",
        {"actor": SAM, "target": call("ag-b1"), "policy": OWN_TEAMS_ONLY},
        "outside_team",
    ),
    (
        "identity team unknown to policy",
        {"actor": dataclasses.replace(PAT, teams=("hr",)), "target": call()},
        "outside_team",
    ),
    ("agent", {"actor": AGENT, "target": call("ag-b1")}, "role_forbidden"),
    ("auditor", {"actor": AUDITOR, "target": call()}, "role_forbidden"),
    ("admin", {"actor": ADMIN, "target": call()}, "role_forbidden"),
    ("no such call", {"actor": SAM, "target": None}, "call_unknown"),
    # purpose
    ("no purpose", {"actor": SAM, "action": Listen(None)}, "purpose_required"),
    ("empty purpose", {"actor": SAM, "action": Listen("")}, "purpose_required"),
    ("other purpose", {"actor": SAM, "action": Listen("curiosity")}, "purpose_not_allowed"),
    (
        "purpose is case-sensitive",
        {"actor": SAM, "action": Listen("Quality")},
        "purpose_not_allowed",
    ),
    ("second purpose", {"actor": SAM, "action": Listen("training")}, "ok"),
    # exclusions
    ("private", {"actor": SAM, "target": call(private=True)}, "call_private"),
    ("excluded queue", {"actor": SAM, "target": call(queue="works-council")}, "excluded"),
    ("other queue", {"actor": SAM, "target": call(queue="billing-de")}, "ok"),
    ("excluded attribute", {"actor": SAM, "target": call(attributes={"vip": "true"})}, "excluded"),
    ("attribute other value", {"actor": SAM, "target": call(attributes={"vip": "no"})}, "ok"),
    # hours (Europe/Berlin, summer time: UTC+2)
    ("Saturday", {"actor": SAM, "now": datetime(2024, 6, 8, 10, tzinfo=BERLIN)}, "outside_hours"),
    (
        "before opening",
        {"actor": SAM, "now": datetime(2024, 6, 3, 7, 59, tzinfo=BERLIN)},
        "outside_hours",
    ),
    (
        "at closing",
        {"actor": SAM, "now": datetime(2024, 6, 3, 18, 0, tzinfo=BERLIN)},
        "outside_hours",
    ),
    ("last minute", {"actor": SAM, "now": datetime(2024, 6, 3, 17, 59, 59, tzinfo=BERLIN)}, "ok"),
    (
        "UTC 06:30 is 08:30 local",
        {"actor": SAM, "now": datetime(2024, 6, 3, 6, 30, tzinfo=UTC)},
        "ok",
    ),
    (
        "UTC 16:30 is 18:30 local",
        {"actor": SAM, "now": datetime(2024, 6, 3, 16, 30, tzinfo=UTC)},
        "outside_hours",
    ),
    (
        "winter: UTC 07:30 is 08:30",
        {"actor": SAM, "now": datetime(2024, 1, 8, 7, 30, tzinfo=UTC)},
        "ok",
    ),
    (
        "winter: UTC 06:30 is 07:30",
        {"actor": SAM, "now": datetime(2024, 1, 8, 6, 30, tzinfo=UTC)},
        "outside_hours",
    ),
    # quotas
    ("supervisor below day quota", {"actor": SAM, "state": QuotaState(supervisor_day=2)}, "ok"),
    (
        "supervisor at day quota",
        {"actor": SAM, "state": QuotaState(supervisor_day=3)},
        "quota_supervisor_day",
    ),
    ("agent below month quota", {"actor": SAM, "state": QuotaState(agent_month=1)}, "ok"),
    (
        "agent at month quota",
        {"actor": SAM, "state": QuotaState(agent_month=2)},
        "quota_agent_month",
    ),
    (
        "agent over month quota",
        {"actor": SAM, "state": QuotaState(agent_month=7)},
        "quota_agent_month",
    ),
    # combinations: the first rule in decide's documented order is the reason
    ("agent on private call", {"actor": AGENT, "target": call(private=True)}, "role_forbidden"),
    (
        "no purpose, private",
        {"actor": SAM, "action": Listen(None), "target": call(private=True)},
        "purpose_required",
    ),
    (
        "private, outside team",
        {"actor": SAM, "target": call("ag-x1", private=True)},
        "call_private",
    ),
    (
        "excluded, outside team",
        {"actor": KIM, "target": call("ag-b1", queue="works-council")},
        "excluded",
    ),
    (
        "private and excluded",
        {"actor": SAM, "target": call(private=True, queue="works-council")},
        "call_private",
    ),
    (
        "outside team and hours",
        {"actor": PAT, "now": datetime(2024, 6, 8, 10, tzinfo=BERLIN)},
        "outside_team",
    ),
    (
        "outside hours, quotas used",
        {"actor": SAM, "now": datetime(2024, 6, 8, 10, tzinfo=BERLIN), "state": QuotaState(9, 9)},
        "outside_hours",
    ),
    (
        "both quotas used",
        {"actor": SAM, "state": QuotaState(agent_month=2, supervisor_day=3)},
        "quota_supervisor_day",
    ),
    (
        "quota, no purpose",
        {"actor": SAM, "action": Listen(None), "state": QuotaState(2, 3)},
        "purpose_required",
    ),
]


@pytest.mark.parametrize(
    ("case", "given", "expected"), LISTEN_CASES, ids=[c[0] for c in LISTEN_CASES]
)
def test_listen(case: str, given: dict[str, Any], expected: str) -> None:
    given = dict(given)
    actor = given.pop("actor")
    action = given.pop("action", QUALITY)
    target = given.pop("target", call())
    assert reason(actor, action, target, **given) == expected


def test_a_zero_quota_forbids_listening() -> None:
    closed = load_policy(POLICY_TEXT.replace("per_agent_per_month = 2", "per_agent_per_month = 0"))
    assert reason(SAM, QUALITY, call(), policy=closed) == "quota_agent_month"


def test_an_allowed_listen_says_which_legs_and_which_notice() -> None:
    decision = decide(SAM, QUALITY, call("ag-s1", consent=Consent.GRANTED), FREE, POLICY, MONDAY_10)
    assert decision.allowed and decision.reason == "ok"
    assert {leg: (x.audible, x.reason) for leg, x in decision.legs.items()} == {
        "agent": (True, "ok"),
        "caller": (True, "consent-granted"),
    }
    assert (decision.notice_mode, decision.team, decision.policy_version) == (
        "digest",
        "support",
        "t1",
    )
    decision.raise_if_refused()


def test_a_refusal_has_no_legs_and_maps_to_an_error() -> None:
    refused = decide(SAM, QUALITY, call(private=True), FREE, POLICY, MONDAY_10)
    assert not refused.allowed and dict(refused.legs) == {} and refused.notice_mode is None
    error = refused.refusal()
    assert isinstance(error, Forbidden) and error.code == "call_private"
    assert error.to_json()["error"]["policy_version"] == "t1"
    with pytest.raises(Forbidden):
        refused.raise_if_refused()
    purpose = decide(SAM, Listen("x"), call(), FREE, POLICY, MONDAY_10).refusal()
    assert isinstance(purpose, BadRequest) and purpose.code == "purpose_not_allowed"
    assert "quality, training" in purpose.message
    unknown = decide(SAM, QUALITY, None, FREE, POLICY, MONDAY_10).refusal()
    assert isinstance(unknown, NotFound) and unknown.code == "call_unknown"


def test_decide_needs_an_aware_time() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        decide(SAM, QUALITY, call(), FREE, POLICY, datetime(2024, 6, 3, 10))


# --- changing a call, seeing it ------------------------------------------------------------

OTHER_CASES: list[tuple[str, Identity, Action, CallInfo | None, str]] = [
    ("cti grants consent", ADMIN, SetConsent(Consent.GRANTED), call(), "ok"),
    ("cti on a private call", ADMIN, SetConsent(Consent.DENIED), call(private=True), "ok"),
    ("agent records consent", AGENT, SetConsent(Consent.GRANTED), call("ag-b1"), "ok"),
    ("agent on another's call", AGENT, SetConsent(Consent.GRANTED), call("ag-b2"), "not_own_call"),
    ("supervisor records objection", SAM, SetConsent(Consent.DENIED), call(), "ok"),
    (
        "supervisor may not grant",
        SAM,
        SetConsent(Consent.GRANTED),
        call(),
        "consent_grant_forbidden",
    ),
    (
        "supervisor may not reset",
        SAM,
        SetConsent(Consent.UNKNOWN),
        call(),
        "consent_grant_forbidden",
    ),
    ("supervisor outside team", SAM, SetConsent(Consent.DENIED), call("ag-x1"), "outside_team"),
    ("auditor consent", AUDITOR, SetConsent(Consent.DENIED), call(), "role_forbidden"),
    ("consent on no call", ADMIN, SetConsent(Consent.DENIED), None, "call_unknown"),
    ("cti pauses", ADMIN, SetPci(True), call(), "ok"),
    ("cti resumes", ADMIN, SetPci(False), call(), "ok"),
    ("agent pauses", AGENT, SetPci(True), call("ag-b1"), "ok"),
    ("agent resumes", AGENT, SetPci(False), call("ag-b1"), "ok"),
    ("agent pauses another's call", AGENT, SetPci(True), call("ag-b2"), "not_own_call"),
    ("supervisor pauses", SAM, SetPci(True), call(), "ok"),
    ("supervisor may not resume", SAM, SetPci(False), call(), "pci_resume_forbidden"),
    ("supervisor pauses outside team", SAM, SetPci(True), call("ag-x1"), "outside_team"),
    ("auditor pauses", AUDITOR, SetPci(True), call(), "role_forbidden"),
    ("pci on no call", AGENT, SetPci(True), None, "call_unknown"),
    ("roster: in scope", SAM, ViewRosterCall(), call(), "ok"),
    ("roster: out of scope", SAM, ViewRosterCall(), call("ag-x1"), "outside_team"),
    ("roster: private", SAM, ViewRosterCall(), call(private=True), "call_private"),
    ("roster: excluded", SAM, ViewRosterCall(), call(queue="works-council"), "excluded"),
    (
        "roster: private, out of scope",
        SAM,
        ViewRosterCall(),
        call("ag-x1", private=True),
        "call_private",
    ),
    ("roster: admin", ADMIN, ViewRosterCall(), call("ag-x1"), "ok"),
    ("roster: admin, private", ADMIN, ViewRosterCall(), call(private=True), "call_private"),
    (
        "roster: admin, excluded",
        ADMIN,
        ViewRosterCall(),
        call(attributes={"vip": "yes"}),
        "excluded",
    ),
    ("roster: agent's own call", AGENT, ViewRosterCall(), call("ag-b1"), "ok"),
    (
        "roster: agent's own private call",
        AGENT,
        ViewRosterCall(),
        call("ag-b1", private=True),
        "ok",
    ),
    ("roster: another agent's call", AGENT, ViewRosterCall(), call("ag-b2"), "not_own_call"),
    ("roster: auditor", AUDITOR, ViewRosterCall(), call(), "role_forbidden"),
    ("roster: no call", SAM, ViewRosterCall(), None, "call_unknown"),
]


@pytest.mark.parametrize(
    ("case", "actor", "action", "target", "expected"), OTHER_CASES, ids=[c[0] for c in OTHER_CASES]
)
def test_call_actions(
    case: str, actor: Identity, action: Action, target: CallInfo | None, expected: str
) -> None:
    # Hours and quotas are about listening: neither changes these answers.
    for now in (MONDAY_10, datetime(2024, 6, 9, 3, tzinfo=BERLIN)):
        for state in (FREE, QuotaState(99, 99)):
            assert reason(actor, action, target, state=state, now=now) == expected


# --- legs ----------------------------------------------------------------------------------

NOT_REQUIRED = load_policy(POLICY_TEXT.replace('caller = "required"', 'caller = "not_required"'))

LEG_CASES = [
    (POLICY, Consent.GRANTED, False, (True, "ok"), (True, "consent-granted")),
    (POLICY, Consent.UNKNOWN, False, (True, "ok"), (False, "consent-unknown")),
    (POLICY, Consent.DENIED, False, (True, "ok"), (False, "consent-denied")),
    (NOT_REQUIRED, Consent.GRANTED, False, (True, "ok"), (True, "consent-granted")),
    (NOT_REQUIRED, Consent.UNKNOWN, False, (True, "ok"), (True, "consent-not-required")),
    (NOT_REQUIRED, Consent.DENIED, False, (True, "ok"), (False, "consent-denied")),
    (POLICY, Consent.GRANTED, True, (False, "payment-pause"), (False, "payment-pause")),
    (NOT_REQUIRED, Consent.UNKNOWN, True, (False, "payment-pause"), (False, "payment-pause")),
    (NOT_REQUIRED, Consent.DENIED, True, (False, "payment-pause"), (False, "payment-pause")),
]


@pytest.mark.parametrize(("policy", "consent", "pci", "agent", "caller"), LEG_CASES)
def test_leg_audibility(
    policy: Policy, consent: Consent, pci: bool, agent: tuple[bool, str], caller: tuple[bool, str]
) -> None:
    legs = leg_audibility(call(consent=consent, pci_paused=pci), policy)
    assert (
        (legs["agent"].audible, legs["agent"].reason),
        (legs["caller"].audible, legs["caller"].reason),
    ) == (
        agent,
        caller,
    )


# --- notices and disclosure ----------------------------------------------------------------


def test_notice_mode_follows_the_team_override_else_the_default() -> None:
    assert notice_mode_for("ag-x1", POLICY) == "live"
    assert notice_mode_for("ag-s1", POLICY) == "digest"
    assert notice_mode_for("ag-b1", POLICY) == "after_call"
    assert notice_mode_for("ag-nobody", POLICY) == "after_call"
    assert unannounced(POLICY) is True


def test_listener_label_shows_the_name_only_when_the_policy_says_so() -> None:
    assert listener_label(SAM, POLICY) == "supervisor"
    named = load_policy(POLICY_TEXT.replace("listener_names = false", "listener_names = true"))
    assert listener_label(SAM, named) == "Sam Supervisor"
    assert listener_label(dataclasses.replace(SAM, display_name=""), named) == "sam"


def test_supervisor_scope_is_the_union_of_the_grants() -> None:
    both = dataclasses.replace(SAM, teams=("sales", "hr"))
    assert supervisor_scope(both, POLICY) == {"ag-b1", "ag-b2", "ag-s1", "ag-x1"}
    assert supervisor_scope(both, ASSIGNED_ONLY) == {"ag-b1", "ag-b2", "ag-s1"}
    assert supervisor_scope(both, OWN_TEAMS_ONLY) == {"ag-x1"}
    assert supervisor_scope(dataclasses.replace(both, role=Role.ADMIN), POLICY) == frozenset()


# --- quota periods -------------------------------------------------------------------------


def test_quota_periods_are_local_calendar_days_and_months() -> None:
    now = datetime(2024, 5, 31, 22, 30, tzinfo=UTC)  # 1 June 00:30 in Berlin
    assert day_bounds(now, POLICY) == (
        datetime(2024, 6, 1, tzinfo=BERLIN),
        datetime(2024, 6, 2, tzinfo=BERLIN),
    )
    assert month_bounds(now, POLICY) == (
        datetime(2024, 6, 1, tzinfo=BERLIN),
        datetime(2024, 7, 1, tzinfo=BERLIN),
    )
    december = month_bounds(datetime(2024, 12, 31, 23, 59, tzinfo=BERLIN), POLICY)
    assert december == (datetime(2024, 12, 1, tzinfo=BERLIN), datetime(2025, 1, 1, tzinfo=BERLIN))
    # The day summer time ends has 25 hours.
    start, end = day_bounds(datetime(2024, 10, 27, 12, tzinfo=BERLIN), POLICY)
    assert end.timestamp() - start.timestamp() == 25 * 3600


def test_quota_state_counts_this_agents_month_and_this_supervisors_day() -> None:
    now = datetime(2024, 6, 3, 10, tzinfo=BERLIN)

    def at(year: int, month: int, day: int, hour: int, minute: int = 0) -> float:
        return datetime(year, month, day, hour, minute, tzinfo=BERLIN).timestamp()

    listens = [
        StartedListen("ag-b1", "sam", at(2024, 6, 3, 9)),  # both
        StartedListen("ag-b1", "kim", at(2024, 6, 1, 0, 0)),  # agent's month
        StartedListen("ag-b1", "kim", at(2024, 5, 31, 23, 59)),  # last month
        StartedListen("ag-b2", "sam", at(2024, 6, 3, 0, 0)),  # supervisor's day
        StartedListen("ag-b2", "sam", at(2024, 6, 2, 23, 59)),  # yesterday
        StartedListen("ag-b1", "sam", at(2024, 7, 1, 0, 0)),  # future: not this month
    ]
    state = quota_state(listens, agent_id="ag-b1", listener_id="sam", policy=POLICY, now=now)
    assert state == QuotaState(agent_month=2, supervisor_day=2)
    assert quota_left(state, POLICY) == (0, 1)
    assert quota_left(QuotaState(9, 9), POLICY) == (0, 0)
    assert reason(SAM, QUALITY, call("ag-b1"), state=state) == "quota_agent_month"
