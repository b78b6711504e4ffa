"""An agent's disclosure as a PDF a person can read, checked with poppler (``pdftotext``,
``pdftoppm``): programs outside the process, so not a unit test."""

from __future__ import annotations

import subprocess
from pathlib import Path

from PIL import Image

from live.audit import SqliteLedger
from live.reports.csvfiles import disclosure_csv
from live.reports.disclosure import collect_disclosure
from live.reports.disclosure_pdf import disclosure_pdf
from tests.unit.test_disclosure import BERLIN, T0, UTC, ledger, role_of  # noqa: F401 (fixtures)


def pdf_text(pdf: Path) -> str:
    return subprocess.run(
        ["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True, check=True
    ).stdout


def ink(pdf: Path, tmp_path: Path) -> float:
    """The share of non-white pixels on page 1, rendered at 80 dpi."""
    subprocess.run(
        ["pdftoppm", "-png", "-r", "80", "-f", "1", "-l", "1", str(pdf), str(tmp_path / "page")],
        check=True,
    )
    (png,) = tmp_path.glob("page*.png")
    with Image.open(png) as image:
        grey = image.convert("L")
        assert grey.size[0] < grey.size[1]  # portrait (A4)
        dark = sum(1 for value in grey.getdata() if value < 200)
        return dark / (grey.size[0] * grey.size[1])


async def test_pdf_is_readable_and_names_the_checkpoint(
    ledger: SqliteLedger, tmp_path: Path
) -> None:
    disclosure = await collect_disclosure(
        ledger,
        "agent-7",
        since=None,
        until=None,
        listener_names=False,
        role_of=role_of,
        generated_at=T0 + 3 * 86_400,
    )
    pdf = tmp_path / "disclosure.pdf"
    pdf.write_bytes(disclosure_pdf(disclosure, BERLIN))
    assert pdf.read_bytes().startswith(b"%PDF")
    assert ink(pdf, tmp_path) > 0.01
    text = pdf_text(pdf)
    assert "Listening in on the calls of agent-7" in text
    assert "3 listen sessions, 1:04:10 in all." in text
    lines = text.splitlines()
    first = next(line for line in lines if "2026-03-02" in line and "10:00:00" in line)
    assert all(
        word in first for word in ("2:05", "Quality assurance", "supervisor", "bv-2026-1")
    )
    second = next(line for line in lines if "2026-03-03" in line and "10:00:00" in line)
    assert all(word in second for word in ("1:02:05", "Coaching", "supervisor"))
    assert any("running" in line and "Complaint review" in line for line in lines)
    assert "ls_2" not in text and "Sam" not in text
    assert disclosure.checkpoint.root_b64 in text
    assert ledger.verifier_key() in text.replace("\n", "")
    assert "Generated" in text and "Europe/Berlin" in text


async def test_pdf_in_german(ledger: SqliteLedger, tmp_path: Path) -> None:
    disclosure = await collect_disclosure(
        ledger,
        "agent-8",
        since=None,
        until=None,
        listener_names=True,
        role_of=role_of,
        generated_at=T0,
    )
    pdf = tmp_path / "de.pdf"
    pdf.write_bytes(disclosure_pdf(disclosure, BERLIN, "de"))
    text = pdf_text(pdf)
    assert "Mithören bei den Gesprächen von agent-8" in text
    assert "1 Mithör-Vorgang, insgesamt 0:30." in text
    assert "Schulung" in text and "Sam Supervisor" in text
    assert "Prüfschlüssel" in text


async def test_an_empty_disclosure_still_names_the_checkpoint(
    ledger: SqliteLedger, tmp_path: Path
) -> None:
    disclosure = await collect_disclosure(
        ledger,
        "agent-9",
        since=None,
        until=None,
        listener_names=False,
        role_of=role_of,
        generated_at=T0,
    )
    assert disclosure.rows == ()
    assert disclosure_csv(disclosure, UTC).count("\n") == 1  # the header only
    pdf = tmp_path / "empty.pdf"
    pdf.write_bytes(disclosure_pdf(disclosure, UTC))
    text = pdf_text(pdf)
    assert "Nobody listened in on these calls" in text
    assert disclosure.checkpoint.root_b64 in text


