"""The works-council report PDF read back as a person reads it (``pdftotext -layout``): each
purpose's count under its own heading, the policy versions and changes, the exports made,
plurals, in English and German."""

from __future__ import annotations

import dataclasses
import re
import subprocess
from pathlib import Path

from live.audit import SqliteLedger
from live.reports.monthly import aggregate, collect_report
from live.reports.periods import parse_month, zone_named
from live.reports.report_pdf import report_pdf
from live.reports.sessions import ListenRecord

BERLIN = zone_named("Europe/Berlin")
MARCH = parse_month("2026-03", BERLIN)
DAY = 86_400.0
# Counts that differ, so a number under the wrong heading cannot pass.
COUNTS = {"quality": 7, "training": 3, "coaching": 1}


def pdf_text(pdf: Path) -> str:
    return subprocess.run(
        ["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True, check=True
    ).stdout


def listens() -> list[ListenRecord]:
    records = []
    n = 0
    for purpose, count in COUNTS.items():
        for _ in range(count):
            n += 1
            records.append(
                ListenRecord(
                    f"ls_{n}", f"CA{n}", "agent-1", n, MARCH.since + DAY + n * 60, purpose,
                    ("agent",), "sam", None, None, "bv-2", "billing", "node-a",
                    ended_seq=100 + n, duration_s=60.0,
                )
            )
    return records


async def month_report(tmp_path: Path, lang: str) -> str:
    """The PDF text of a March report with ``COUNTS`` listens in team billing, two policy
    changes (one before March), and one export made in March."""
    async with SqliteLedger(tmp_path / f"{lang}.sqlite3", checkpoint_interval_s=0) as ledger:
        await ledger.append(
            "policy.changed", actor="system", at=MARCH.since - DAY, version="bv-1", sha256="a"
        )
        await ledger.append(
            "policy.changed", actor="system", at=MARCH.since + 2 * DAY, version="bv-2",
            previous_version="bv-1", sha256="b",
        )
        await ledger.append(
            "export.made", actor="dana", at=MARCH.since + 3 * DAY, export_id="ex_1",
            format="pdf", scope="agent", agent_id="agent-1", entries=4, tree_size=2,
            role="auditor",
        )
        collected = await collect_report(
            ledger, MARCH, team_map={}, team_source="recorded", generated_at=MARCH.until
        )
    rows, total = aggregate(
        listens(), [], {"agent-1": "billing"}, since=MARCH.since, until=MARCH.until
    )
    report = dataclasses.replace(collected, teams=tuple(rows), total=total)
    pdf = tmp_path / f"report-{lang}.pdf"
    pdf.write_bytes(report_pdf(report, lang))
    return pdf_text(pdf)


def counts_under_headings(text: str, headings: dict[str, str], team: str) -> dict[str, str]:
    """For each heading of the purposes table, the number in ``team``'s row that sits under
    it. Headings and numbers are both right-aligned, so each number's right edge lies
    nearest its own heading's right edge, within a few columns (``pdftotext`` places bold
    headings only approximately); a table whose headers are aligned otherwise puts numbers
    a whole column width away."""
    lines = text.splitlines()
    at = next(i for i, line in enumerate(lines) if all(h in line for h in headings.values()))
    header = lines[at]
    row = next(line for line in lines[at + 1 :] if line.split()[:1] == [team])
    edges = {purpose: header.index(h) + len(h) for purpose, h in headings.items()}
    found: dict[str, str] = {}
    for match in list(re.finditer(r"\S+", row))[1:]:
        purpose = min(edges, key=lambda p: abs(edges[p] - match.end()))
        assert abs(edges[purpose] - match.end()) <= 5, (header, row)
        assert purpose not in found, (header, row)
        found[purpose] = match.group()
    return found


async def test_each_purposes_count_sits_under_its_own_heading(tmp_path: Path) -> None:
    text = await month_report(tmp_path, "en")
    headings = {"quality": "Quality assurance", "training": "Training", "coaching": "Coaching"}
    expected = {purpose: str(count) for purpose, count in COUNTS.items()}
    assert counts_under_headings(text, headings, "billing") == expected
    assert counts_under_headings(text, headings, "Total") == expected


async def test_the_german_purposes_table_is_aligned_too(tmp_path: Path) -> None:
    text = await month_report(tmp_path, "de")
    headings = {"quality": "Qualitätssicherung", "training": "Schulung", "coaching": "Coaching"}
    expected = {purpose: str(count) for purpose, count in COUNTS.items()}
    assert counts_under_headings(text, headings, "billing") == expected
    assert counts_under_headings(text, headings, "Summe") == expected


async def test_the_report_names_policy_versions_changes_and_exports(tmp_path: Path) -> None:
    text = await month_report(tmp_path, "en")
    flat = " ".join(text.split())
    assert "Versions in force bv-1, bv-2" in flat
    assert "The policy changed once in this month:" in flat
    assert "2026-03-03 00:00:00 CET bv-1 bv-2" in flat
    assert "1 export or report was made in this month:" in flat
    assert "an agent's listens PDF auditor 4" in flat
    assert "dana" not in text and "agent-1" not in text  # the council sees no names


async def test_the_german_report_names_them_in_german(tmp_path: Path) -> None:
    text = await month_report(tmp_path, "de")
    flat = " ".join(text.split())
    assert "Geltende Fassungen bv-1, bv-2" in flat
    assert "Die Richtlinie wurde in diesem Monat einmal geändert:" in flat
    assert "In diesem Monat wurde 1 Export oder Bericht erstellt:" in flat
    assert "Mithör-Vorgänge einer Person PDF Prüfer/in 4" in flat
    assert "Zwecke" in flat and "Gründe der Ablehnungen" in flat


async def test_an_empty_month_says_so_in_words(tmp_path: Path) -> None:
    async with SqliteLedger(tmp_path / "empty.sqlite3", checkpoint_interval_s=0) as ledger:
        report = await collect_report(
            ledger, MARCH, team_map={}, team_source="recorded", generated_at=MARCH.until
        )
    pdf = tmp_path / "empty.pdf"
    pdf.write_bytes(report_pdf(report))
    flat = " ".join(pdf_text(pdf).split())
    assert "Versions in force not on record" in flat
    assert "The policy did not change in this month." in flat
    assert "No exports or reports were made in this month." in flat
