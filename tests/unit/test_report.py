"""The works-council report: per-team figures of one month, as CSV and as a PDF with a chart."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from live.audit import SqliteLedger
from live.audit.entry import LedgerEntry
from live.errors import ConfigError
from live.reports.csvfiles import duration_text, ended_text
from live.reports.monthly import aggregate, load_team_map, team_resolver
from live.reports.periods import PeriodError, parse_month, zone_named
from live.reports.sessions import ListenRecord

BERLIN = zone_named("Europe/Berlin")
MARCH = parse_month("2026-03", BERLIN)
DAY = 86_400.0


def session(
    n: int,
    agent: str | None,
    at: float,
    duration: float | None,
    purpose: str = "quality",
    team: str | None = None,
) -> ListenRecord:
    return ListenRecord(
        session_id=f"ls_{n}",
        call_id=f"CA{n}",
        agent_id=agent,
        started_seq=n,
        started_at=at,
        purpose=purpose,
        legs=("agent",),
        listener_id="sam",
        listener_name=None,
        listener_role=None,
        policy_version=None,
        team=team,
        node_id="node-a",
        ended_seq=None if duration is None else n + 100,
        duration_s=duration,
    )


def refusal(seq: int, agent: str | None, at: float, code: str) -> LedgerEntry:
    fields = {"agent_id": agent, "purpose": "quality", "reason": "no", "code": code}
    return LedgerEntry(seq, "listen.refused", at, "user", fields)


def test_months_are_calendar_months_in_the_time_zone() -> None:
    assert MARCH.label == "2026-03" and MARCH.days == 31
    assert MARCH.since == 1_772_319_600.0  # 2026-03-01 00:00 CET
    assert MARCH.until == 1_774_994_400.0  # 2026-04-01 00:00 CEST
    december = parse_month("2025-12", zone_named("UTC"))
    assert december.until == 1_767_225_600.0  # 2026-01-01 00:00 UTC
    for bad in ("2026-3", "2026-13", "March", "", None):
        with pytest.raises(PeriodError) as caught:
            parse_month(bad, BERLIN)
        assert caught.value.code == "bad_month"


def test_aggregation_per_team() -> None:
    start = MARCH.since
    records = [
        session(1, "a1", start, 90.0, "quality", team="billing"),
        session(2, "a1", start + DAY, 30.0, "coaching"),
        session(3, "a2", start + 2 * DAY, 600.0, "quality"),
        session(4, "a3", start + 3 * DAY, None, "training"),  # still running
        session(5, "a9", start + 4 * DAY, 60.0, "quality"),  # in no team
        dataclasses.replace(  # never connected: an attempt, no listen, no minutes
            session(8, "a1", start + 5 * DAY, 10.0, "quality"), end_reason="setup-failed"
        ),
        session(6, "a1", start - 1, 999.0),  # February: not counted
        session(7, "a1", MARCH.until, 999.0),  # April: not counted
    ]
    refused = [
        refusal(20, "a2", start + 5, "outside_team"),
        refusal(21, "a2", start + 6, "quota_agent_month"),
        refusal(22, None, start + 7, "call_unknown"),  # no agent: the "all" team
        refusal(23, "a1", MARCH.until + 1, "outside_team"),  # April
    ]
    teams = team_resolver({"a2": "support", "a3": "support"}, records)
    assert teams == {"a1": "billing", "a2": "support", "a3": "support"}
    rows, total = aggregate(records, refused, teams, since=MARCH.since, until=MARCH.until)
    by_team = {row.team: row.to_json() for row in rows}
    assert list(by_team) == ["all", "billing", "support"]
    assert by_team["billing"] == {
        "team": "billing",
        "listens": 2,
        "minutes": 2.0,
        "running": 0,
        "attempts": 1,
        "end_unknown": 0,
        "minutes_max": 2.0,
        "agents": 1,
        "purposes": {"coaching": 1, "quality": 1},
        "refused": 0,
        "refused_reasons": {},
    }
    assert by_team["support"]["listens"] == 2 and by_team["support"]["minutes"] == 10.0
    assert by_team["support"]["running"] == 1 and by_team["support"]["agents"] == 2
    assert by_team["support"]["refused_reasons"] == {"outside_team": 1, "quota_agent_month": 1}
    assert by_team["all"]["listens"] == 1 and by_team["all"]["refused"] == 1
    assert total.listens == 5 and total.refused == 3 and total.minutes == 13.0
    assert total.attempts == 1
    assert len(total.agents) == 4
    assert dict(total.purposes) == {"quality": 3, "coaching": 1, "training": 1}


def test_the_team_map_wins_over_the_recorded_team() -> None:
    records = [session(1, "a1", MARCH.since, 60.0, team="old-team")]
    assert team_resolver({"a1": "new-team"}, records) == {"a1": "new-team"}
    assert team_resolver({}, records) == {"a1": "old-team"}


def test_team_maps(tmp_path: Path) -> None:
    policy_style = tmp_path / "teams.toml"
    policy_style.write_text(
        'version = "x"\n[teams.billing]\nagents = ["a1", "a2"]\n[teams.support]\nagents = ["a3"]\n'
    )
    assert load_team_map(policy_style) == {"a1": "billing", "a2": "billing", "a3": "support"}
    flat = tmp_path / "agents.toml"
    flat.write_text('[agents]\na1 = "sales"\n"agent.4" = "sales"\n')
    assert load_team_map(flat) == {"a1": "sales", "agent.4": "sales"}
    twice = tmp_path / "twice.toml"
    twice.write_text('[teams.x]\nagents = ["a1"]\n[agents]\na1 = "y"\n')
    with pytest.raises(ConfigError, match="a1"):
        load_team_map(twice)
    with pytest.raises(ConfigError):
        load_team_map(tmp_path / "missing.toml")


@pytest.fixture
async def ledger(tmp_path: Path):  # type: ignore[no-untyped-def]
    ledger = SqliteLedger(tmp_path / "ledger.sqlite3", checkpoint_interval_s=0)
    await ledger.open()
    start = MARCH.since + 3600
    purposes = ["quality", "training", "coaching"]
    for n in range(9):
        agent = f"agent-{n % 3}"
        at = start + n * DAY
        await ledger.append(
            "listen.started",
            actor="sam",
            at=at,
            session_id=f"ls_{n}",
            call_id=f"CA{n}",
            agent_id=agent,
            user_id="sam",
            purpose=purposes[n % 3],
            legs=["agent"],
            node_id="node-a",
            started_at=at,
            team="billing" if n % 3 else None,
        )
        await ledger.append(
            "listen.ended",
            actor="system",
            at=at + 120,
            session_id=f"ls_{n}",
            call_id=f"CA{n}",
            agent_id=agent,
            reason="stopped",
            ended_at=at + 120,
            duration_s=120.0,
        )
    for n in range(4):
        await ledger.append(
            "listen.refused",
            actor="kim",
            at=start + n,
            call_id=f"CA{n}",
            agent_id="agent-1",
            purpose="quality",
            reason="outside",
            code="outside_team",
            role="supervisor",
            user_id="kim",
        )
    yield ledger
    await ledger.aclose()


def test_a_listen_cut_by_a_crash_counts_with_its_bounds() -> None:
    start = MARCH.since + DAY
    lost = dataclasses.replace(
        session(1, "a1", start, 60.0, team="billing"),
        ended_at=start + 60,
        end_reason="node-lost",
        ended_after=start + 60,
        ended_before=start + 300,
    )
    known = session(2, "a1", start + 1000, 120.0, team="billing")
    rows, total = aggregate([lost, known], [], {"a1": "billing"}, since=MARCH.since, until=MARCH.until)
    [billing] = rows
    assert (billing.end_unknown, billing.minutes, billing.minutes_max) == (1, 3.0, 7.0)
    assert (total.end_unknown, total.minutes_max) == (1, 7.0)


def test_the_disclosure_csv_shows_a_crashed_listen_between_its_bounds() -> None:
    start = MARCH.since + DAY  # 2026-03-02 00:00 Berlin
    lost = dataclasses.replace(
        session(1, "a1", start, 60.0),
        ended_at=start + 60,
        end_reason="node-lost",
        ended_after=start + 60,
        ended_before=start + 300,
    )
    assert duration_text(lost) == "1:00-5:00"
    assert ended_text(lost, BERLIN) == "between 2026-03-02 00:01:00 and 2026-03-02 00:05:00"
    assert ended_text(dataclasses.replace(lost, ended_before=None), BERLIN) == "2026-03-02 00:01:00"
