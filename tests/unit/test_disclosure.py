"""An agent's disclosure: sessions joined from a real ledger, rendered as CSV and as a PDF
that a person can read (rendered to pixels and to text with poppler)."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from live.audit import SqliteLedger
from live.audit.csvsafe import safe_cell
from live.l10n import clock
from live.policy import ShownListener
from live.reports.csvfiles import CSV_COLUMNS, disclosure_csv
from live.reports.disclosure import collect_disclosure, listener_of
from live.reports.periods import PeriodError, parse_period, zone_named
from live.reports.service import AuditService, ExportRequest, People, Requester
from live.reports.sessions import ListenRecord, join_sessions

# 2026-03-02 09:00:00 UTC (10:00 in Berlin)
T0 = 1_772_442_000.0
UTC = zone_named("UTC")
BERLIN = zone_named("Europe/Berlin")


async def started(ledger: SqliteLedger, n: int, agent: str, at: float, **extra: object) -> int:
    fields: dict[str, object] = {
        "session_id": f"ls_{n}",
        "call_id": f"CA{n}",
        "agent_id": agent,
        "user_id": "sam",
        "display_name": "Sam Supervisor",
        "purpose": "quality",
        "legs": ["agent", "caller"],
        "node_id": "node-a",
        "started_at": at,
    }
    fields.update(extra)
    return await ledger.append("listen.started", actor="sam", at=at, **fields)


async def ended(ledger: SqliteLedger, n: int, agent: str, at: float, duration: float) -> int:
    return await ledger.append(
        "listen.ended",
        actor="system",
        at=at + duration,
        session_id=f"ls_{n}",
        call_id=f"CA{n}",
        agent_id=agent,
        reason="stopped",
        ended_at=at + duration,
        duration_s=duration,
        dropped_packets=0,
    )


@pytest.fixture
async def ledger(tmp_path: Path) -> AsyncIterator[SqliteLedger]:
    ledger = SqliteLedger(tmp_path / "ledger.sqlite3", checkpoint_interval_s=0)
    await ledger.open()
    # agent-7: three sessions (the last still running); agent-8: one.
    await started(ledger, 1, "agent-7", T0, policy_version="bv-2026-1")  # seq 0
    await ended(ledger, 1, "agent-7", T0, 125.0)  # seq 1
    await started(ledger, 2, "agent-8", T0 + 60, purpose="training")  # seq 2
    await started(ledger, 3, "agent-7", T0 + 86_400, purpose="coaching", legs=["agent"])  # 3
    await ended(ledger, 2, "agent-8", T0 + 60, 30.0)  # seq 4
    await ended(ledger, 3, "agent-7", T0 + 86_400, 3_725.0)  # seq 5
    await started(ledger, 4, "agent-7", T0 + 2 * 86_400, purpose="complaint", role="admin")  # 6
    yield ledger
    await ledger.aclose()


def role_of(user_id: str) -> str | None:
    return {"sam": "supervisor"}.get(user_id)


async def test_sessions_join_start_and_end(ledger: SqliteLedger) -> None:
    records = join_sessions(await ledger.entries())
    assert [r.session_id for r in records] == ["ls_1", "ls_2", "ls_3", "ls_4"]
    first, _, third, last = records
    assert (first.started_seq, first.ended_seq, first.duration_s) == (0, 1, 125.0)
    assert first.end_reason == "stopped" and first.policy_version == "bv-2026-1"
    assert first.listener_id == "sam" and first.listener_name == "Sam Supervisor"
    assert third.legs == ("agent",) and third.ended_seq == 5
    assert last.running and last.duration_s is None and last.listener_role == "admin"


async def test_what_was_heard_and_attempts_are_joined(tmp_path: Path) -> None:
    async with SqliteLedger(tmp_path / "heard.sqlite3", checkpoint_interval_s=0) as ledger:
        await started(ledger, 1, "agent-7", T0)
        await ledger.append(
            "listen.ended", actor="system", at=T0 + 40, session_id="ls_1", agent_id="agent-7",
            reason="stopped", ended_at=T0 + 40, duration_s=40.0,
            first_packet_at=T0 + 1.5, last_packet_at=T0 + 39.5, heard_s=38.0,
        )
        await started(ledger, 2, "agent-7", T0 + 60)
        await ledger.append(
            "listen.ended", actor="system", at=T0 + 70, session_id="ls_2", agent_id="agent-7",
            reason="setup-failed", ended_at=T0 + 70, duration_s=10.0,
            first_packet_at=None, last_packet_at=None, heard_s=0.0,
        )
        heard, attempt = join_sessions(await ledger.entries())
    assert (heard.first_packet_at, heard.last_packet_at, heard.heard_s) == (T0 + 1.5, T0 + 39.5, 38.0)
    assert not heard.attempt and heard.to_json()["heard_s"] == 38.0
    assert attempt.attempt and attempt.heard_s == 0.0 and attempt.first_packet_at is None


def test_listener_is_a_role_unless_names_are_asked_for() -> None:
    record = ListenRecord(
        "ls", "CA", "agent-7", 0, T0, "quality", ("agent",), "sam", "Sam S", None, None, None, None
    )
    assert listener_of(record, names=False, role_of=role_of) == ShownListener("supervisor", True)
    assert listener_of(record, names=True, role_of=role_of) == ShownListener("Sam S", False)
    erased = ListenRecord(
        "ls", "CA", "agent-7", 0, T0, "quality", ("agent",), None, None, None, None, None, None
    )
    # After retention the name is gone: even with names asked for, only a role remains.
    assert listener_of(erased, names=True, role_of=role_of) == ShownListener("listener", True)


async def test_csv_lists_the_agents_sessions_against_the_checkpoint(ledger: SqliteLedger) -> None:
    disclosure = await collect_disclosure(
        ledger,
        "agent-7",
        since=None,
        until=None,
        listener_names=False,
        role_of=role_of,
        generated_at=T0 + 3 * 86_400,
    )
    text = disclosure_csv(disclosure, BERLIN)
    rows = list(csv.DictReader(io.StringIO(text)))
    assert tuple(rows[0]) == CSV_COLUMNS
    assert [r["session_id"] for r in rows] == ["ls_1", "ls_3", "ls_4"]  # not agent-8's
    first, second, running = rows
    assert (first["date"], first["time"], first["timezone"]) == (
        "2026-03-02",
        "10:00:00",
        "Europe/Berlin",
    )
    assert (first["duration"], first["legs_heard"], first["purpose"]) == (
        "2:05",
        "agent+caller",
        "quality",
    )
    assert first["listener"] == "supervisor" and "Sam" not in text
    assert first["policy_version"] == "bv-2026-1" and second["policy_version"] == "'-"  # neutralised
    assert (second["duration"], second["legs_heard"]) == ("1:02:05", "agent")
    assert running["duration"] == "running" and running["listener"] == "admin"
    # base64 may begin with "+", which a spreadsheet would run: neutralised like any text.
    assert {r["checkpoint_root"] for r in rows} == {safe_cell(disclosure.checkpoint.root_b64)}
    assert {r["checkpoint_size"] for r in rows} == {"7"}
    assert [r["entry"] for r in rows] == ["0", "3", "6"]


async def test_csv_with_names_and_a_period(ledger: SqliteLedger) -> None:
    since, until = parse_period("2026-03-03", "2026-03-03", UTC)
    disclosure = await collect_disclosure(
        ledger,
        "agent-7",
        since=since,
        until=until,
        listener_names=True,
        role_of=role_of,
        generated_at=T0,
    )
    rows = list(csv.DictReader(io.StringIO(disclosure_csv(disclosure, UTC))))
    assert [(r["session_id"], r["listener"]) for r in rows] == [("ls_3", "Sam Supervisor")]


async def test_exports_are_recorded(ledger: SqliteLedger) -> None:
    service = AuditService(ledger, People.nobody(), clock=lambda: T0)
    asked = ExportRequest(agent_id="agent-7", format="pdf", zone=UTC, until=T0 + 1)
    document = await service.export(asked, Requester("dana", "auditor"))
    (entry,) = await ledger.entries(kind="export.made")
    assert entry.seq == document.recorded_seq == 7
    assert document.body.startswith(b"%PDF") and document.filename == "live-listens-agent-7.pdf"
    assert entry.public_fields["agent_id"] == "agent-7"
    assert entry.public_fields["format"] == "pdf" and entry.public_fields["entries"] == 1
    assert entry.public_fields["tree_size"] == 7 and entry.public_fields["role"] == "auditor"
    assert "since" not in entry.public_fields and entry.public_fields["until"] == T0 + 1
    assert entry.actor == "dana" and entry.public_actor == "user"  # the person is a detail
    assert (await ledger.verify()).ok


def test_periods_and_durations() -> None:
    since, until = parse_period("2026-03-01", "2026-03-31", BERLIN)
    assert since == 1_772_319_600.0  # 2026-03-01 00:00 CET
    assert until == 1_774_994_400.0  # 2026-04-01 00:00 CEST: the end day counts in full
    assert parse_period("2026-03-01T12:00:00+00:00", None, BERLIN) == (1_772_366_400.0, None)
    for bad in (("2026-13-01", None), ("yesterday", None), ("2026-03-02", "2026-03-01")):
        with pytest.raises(PeriodError) as caught:
            parse_period(*bad, UTC)
        assert caught.value.code == "bad_date"
    with pytest.raises(PeriodError) as caught:
        zone_named("Mars/Olympus")
    assert caught.value.code == "bad_timezone"
    assert [clock(s) for s in (0, 59.6, 125, 3725)] == ["0:00", "1:00", "2:05", "1:02:05"]
