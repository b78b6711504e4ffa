"""The works-council report as a PDF a person can read, checked with poppler (``pdftotext``,
``pdftoppm``): programs outside the process, so not a unit test."""

from __future__ import annotations

import csv
import dataclasses
import io
import subprocess
from pathlib import Path

from PIL import Image

from live.audit import SqliteLedger
from live.audit.csvsafe import safe_cell
from live.reports.csvfiles import report_csv
from live.reports.monthly import aggregate, collect_report
from live.reports.periods import parse_month
from live.reports.report_pdf import report_pdf
from tests.unit.test_report import BERLIN, DAY, MARCH, ledger, session  # noqa: F401 (fixtures)


def pdf_text(pdf: Path) -> str:
    return subprocess.run(
        ["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True, check=True
    ).stdout


def page_pixels(pdf: Path, tmp_path: Path) -> list[tuple[int, int, int]]:
    """Page 1 rendered at 80 dpi, as RGB pixels."""
    subprocess.run(
        ["pdftoppm", "-png", "-r", "80", "-f", "1", "-l", "1", str(pdf), str(tmp_path / "page")],
        check=True,
    )
    (png,) = tmp_path.glob("page*.png")
    with Image.open(png) as image:
        return list(image.convert("RGB").getdata())


async def test_report_from_a_ledger_as_csv(ledger: SqliteLedger) -> None:
    report = await collect_report(
        ledger,
        MARCH,
        team_map={"agent-0": "support"},
        team_source="teams.toml",
        generated_at=MARCH.until,
    )
    rows = list(csv.DictReader(io.StringIO(report_csv(report))))
    assert [r["team"] for r in rows] == ["billing", "support", "total"]
    billing, support, total = rows
    assert (billing["listens"], billing["minutes"], billing["agents"], billing["refused"]) == (
        "6",
        "12.0",
        "2",
        "4",
    )
    assert (support["listens"], support["purpose:quality"], support["purpose:training"]) == (
        "3",
        "3",
        "0",
    )
    assert billing["refused:outside_team"] == "4"
    assert total["listens"] == "9" and total["minutes"] == "18.0" and total["refused"] == "4"
    assert {r["checkpoint_root"] for r in rows} == {safe_cell(report.checkpoint.root_b64)}
    assert report.entries == 13


async def test_report_pdf_has_a_chart_and_the_figures(ledger: SqliteLedger, tmp_path: Path) -> None:
    report = await collect_report(
        ledger, MARCH, team_map={}, team_source="recorded", generated_at=MARCH.until
    )
    pdf = tmp_path / "report.pdf"
    pdf.write_bytes(report_pdf(report))
    pixels = page_pixels(pdf, tmp_path)
    # The chart's bars are filled in the accent colour (#0b6e69) and in red (#b3261e).
    accent = sum(1 for r, g, b in pixels if r < 40 and 90 < g < 130 and 90 < b < 125)
    red = sum(1 for r, g, b in pixels if r > 150 and g < 60 and b < 60)
    assert accent > 500 and red > 100, (accent, red)
    text = pdf_text(pdf)
    assert "Monitoring report for the works council: 2026-03" in text
    assert "Listens and refused requests per team" in text
    overview = [
        line.split()
        for line in text.splitlines()
        if line.split()[:1] in (["billing"], ["all"], ["Total"])
    ]
    assert ["billing", "6", "12.0", "2", "0", "0", "0", "4"] in overview
    assert ["all", "3", "6.0", "1", "0", "0", "0", "0"] in overview
    assert ["Total", "9", "18.0", "3", "0", "0", "0", "4"] in overview
    assert "outside the listener's teams" in text
    assert report.checkpoint.root_b64 in text
    assert ledger.verifier_key() in text.replace("\n", "")


async def test_report_pdf_in_german_and_for_an_empty_month(
    ledger: SqliteLedger, tmp_path: Path
) -> None:
    empty = await collect_report(
        ledger,
        parse_month("2026-05", BERLIN),
        team_map={},
        team_source="policy",
        generated_at=MARCH.until,
    )
    assert empty.teams == () and empty.entries == 0
    pdf = tmp_path / "empty.pdf"
    pdf.write_bytes(report_pdf(empty, "de"))
    text = pdf_text(pdf)
    assert "Bericht zum Mithören für den Betriebsrat: 2026-05" in text
    assert "keine Mithör-Vorgänge" in text
    assert "Summe" in text and "geltender Richtlinie" in text


async def test_the_report_pdf_shows_a_crashed_listen_with_its_bounds(ledger: SqliteLedger, tmp_path: Path) -> None:
    start = MARCH.since + DAY
    lost = dataclasses.replace(
        session(1, "a1", start, 60.0, team="billing"),
        ended_at=start + 60,
        end_reason="node-lost",
        ended_after=start + 60,
        ended_before=start + 300,
    )
    rows, total = aggregate([lost], [], {"a1": "billing"}, since=MARCH.since, until=MARCH.until)
    collected = await collect_report(ledger, MARCH, team_map={}, team_source="recorded", generated_at=MARCH.until)
    pdf = tmp_path / "report.pdf"
    pdf.write_bytes(report_pdf(dataclasses.replace(collected, teams=tuple(rows), total=total)))
    text = pdf_text(pdf)
    assert "End unknown" in text
    overview = [line.split() for line in text.splitlines() if line.split()[:1] in (["billing"], ["Total"])]
    assert ["billing", "1", "1.0–5.0", "1", "0", "0", "1", "0"] in overview, overview
