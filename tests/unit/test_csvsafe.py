"""CSV safe to open (OWASP "CSV Injection"): a disclosure export and a works-council report
whose listener and team names look like formulas, read back with Python's ``csv`` module."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from live.audit import SqliteLedger
from live.audit.csvsafe import FORMULA_STARTS, csv_text, safe_cell
from live.reports.csvfiles import disclosure_csv, report_csv
from live.reports.disclosure import collect_disclosure
from live.reports.monthly import collect_report
from live.reports.periods import parse_month, zone_named

UTC = zone_named("UTC")
T0 = 1_772_442_000.0  # 2026-03-02 09:00:00 UTC
NAMES = [
    '=HYPERLINK("http://x","y")',
    "+1",
    "-2",
    "@SUM(A1)",
    "\t=1+1",
    "\r=1+1",
]


def test_safe_cell_follows_owasp() -> None:
    for name in NAMES:
        assert safe_cell(name) == "'" + name
    for harmless in ("Sam", "", "agent+caller", "'quoted", "1-2", " =x"):
        assert safe_cell(harmless) == harmless
    assert safe_cell(-2) == -2 and safe_cell(1.5) == 1.5  # numbers the project computes
    rows = list(csv.reader(io.StringIO(csv_text([["a", "=b"], [3, "@c"]]))))
    assert rows == [["a", "'=b"], ["3", "'@c"]]


@pytest.fixture
async def ledger(tmp_path: Path) -> AsyncIterator[SqliteLedger]:
    ledger = SqliteLedger(tmp_path / "ledger.sqlite3", checkpoint_interval_s=0)
    await ledger.open()
    # Each name is a listener of agent-7's calls, and the team of its own agent.
    for n, name in enumerate([*NAMES, *NAMES]):
        at = T0 + n * 3600
        agent = "agent-7" if n < len(NAMES) else f"agent-t{n}"
        await ledger.append(
            "listen.started",
            actor=f"sup-{n}",
            at=at,
            session_id=f"ls_{n}",
            call_id=f"CA{n}",
            agent_id=agent,
            user_id=f"sup-{n}",
            display_name=name,
            purpose="quality",
            legs=["agent", "caller"],
            node_id="node-a",
            started_at=at,
            team=name,
        )
        await ledger.append(
            "listen.ended",
            actor="system",
            at=at + 60,
            session_id=f"ls_{n}",
            call_id=f"CA{n}",
            agent_id=agent,
            reason="stopped",
            ended_at=at + 60,
            duration_s=60.0,
            dropped_packets=0,
        )
    yield ledger
    await ledger.aclose()


def neutralised(cell: str) -> bool:
    return not cell.startswith(FORMULA_STARTS)


async def test_export_with_formula_like_listener_names(ledger: SqliteLedger) -> None:
    disclosure = await collect_disclosure(
        ledger,
        "agent-7",
        since=None,
        until=None,
        listener_names=True,
        role_of=lambda _: "supervisor",
        generated_at=T0 + 86_400,
    )
    rows = list(csv.DictReader(io.StringIO(disclosure_csv(disclosure, UTC), newline="")))
    assert [r["listener"] for r in rows] == ["'" + name for name in NAMES]
    assert all(neutralised(cell) for row in rows for cell in row.values())


async def test_report_with_formula_like_team_names(ledger: SqliteLedger) -> None:
    month = parse_month("2026-03", UTC)
    report = await collect_report(
        ledger, month, team_map={}, team_source="recorded", generated_at=T0 + 86_400
    )
    rows = list(csv.DictReader(io.StringIO(report_csv(report), newline="")))
    assert sorted(r["team"] for r in rows) == sorted(["'" + name for name in NAMES] + ["total"])
    assert all(neutralised(cell) for row in rows for cell in [*row.keys(), *row.values()])
