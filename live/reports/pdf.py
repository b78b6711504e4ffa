"""The look of every PDF ``live`` hands to people: styles, tables, the checkpoint section and
the page frame (reportlab). Tables size their columns from what they hold, so a header never
breaks inside a word ("Duratio/n") and numbers sit right-aligned under right-aligned
headers."""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from typing import Any
from xml.sax.saxutils import escape
from zoneinfo import ZoneInfo

from reportlab.lib import colors  # type: ignore[import-untyped]
from reportlab.lib.enums import TA_LEFT, TA_RIGHT  # type: ignore[import-untyped]
from reportlab.lib.pagesizes import A4  # type: ignore[import-untyped]
from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet  # type: ignore[import-untyped]
from reportlab.lib.units import mm  # type: ignore[import-untyped]
from reportlab.pdfbase.pdfmetrics import stringWidth  # type: ignore[import-untyped]
from reportlab.platypus import (  # type: ignore[import-untyped]
    Flowable,
    KeepTogether,
    Paragraph,
    SimpleDocTemplate,
    Spacer,
    Table,
    TableStyle,
)

from .checkpoint import CheckpointInfo
from .periods import stamp
from .strings import Words

ACCENT = colors.HexColor("#0b6e69")
MUTED = colors.HexColor("#5a6775")
STRIPE = colors.HexColor("#f0f3f6")
REFUSED = colors.HexColor("#b3261e")

PAGE_WIDTH = A4[0] - 40 * mm
"""The width between the margins: 170 mm."""
FONT_SIZE = 8.5
PAD = 3.0
"""Left and right padding of a table cell, in points."""


def pdf_styles() -> dict[str, ParagraphStyle]:
    base = getSampleStyleSheet()
    cell = ParagraphStyle(
        "LiveCell", parent=base["BodyText"], fontSize=FONT_SIZE, leading=10.5, splitLongWords=0
    )
    return {
        "Title": ParagraphStyle(
            "LiveTitle",
            parent=base["Title"],
            fontSize=17,
            leading=21,
            alignment=TA_LEFT,
            textColor=ACCENT,
            spaceAfter=4 * mm,
        ),
        "Heading": ParagraphStyle(
            "LiveHeading",
            parent=base["Heading2"],
            fontSize=12.5,
            leading=16,
            spaceBefore=5 * mm,
            spaceAfter=2 * mm,
        ),
        "Body": ParagraphStyle("LiveBody", parent=base["BodyText"], fontSize=9.5, leading=13),
        "Cell": cell,
        "CellRight": ParagraphStyle("LiveCellRight", parent=cell, alignment=TA_RIGHT),
        "Mono": ParagraphStyle(
            "LiveMono",
            parent=base["Code"],
            fontName="Courier",
            fontSize=7.5,
            leading=9.5,
            leftIndent=0,
            splitLongWords=1,
            wordWrap="CJK",
        ),
    }


def facts_table(facts: Sequence[tuple[str, str]], styles: Mapping[str, ParagraphStyle]) -> Table:
    """A two-column block of labelled facts under a title."""
    cell = styles["Cell"]
    data = [
        [Paragraph(f"<b>{escape(label)}</b>", cell), Paragraph(escape(value), cell)]
        for label, value in facts
    ]
    table = Table(data, colWidths=[55 * mm, 115 * mm], hAlign="LEFT")
    table.setStyle(
        TableStyle(
            [
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ("LEFTPADDING", (0, 0), (-1, -1), 0),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 1),
                ("TOPPADDING", (0, 0), (-1, -1), 1),
            ]
        )
    )
    return table


def _width(text: str, bold: bool) -> float:
    return float(stringWidth(text, "Helvetica-Bold" if bold else "Helvetica", FONT_SIZE))


def column_widths(
    header: Sequence[str], rows: Sequence[Sequence[str]], total: float = PAGE_WIDTH
) -> list[float]:
    """Column widths (points) for a table of text: each column as wide as its widest line
    when that fits in ``total``; otherwise the wide columns share what is left, but none
    becomes narrower than its longest single word, so text wraps only between words."""
    columns = len(header)
    natural = []
    floor = []
    for index in range(columns):
        cells = [str(row[index]) for row in rows if index < len(row)]
        natural.append(
            max([_width(header[index], True), *(_width(c, False) for c in cells)]) + 2 * PAD
        )
        words = [*((w, True) for w in header[index].split()), *(
            (w, False) for c in cells for w in c.split()
        )]
        floor.append(max((_width(w, b) for w, b in words), default=0.0) + 2 * PAD)
    if sum(natural) <= total:
        spare = (total - sum(natural)) / columns
        return [width + spare for width in natural]
    widths = list(floor)
    room = total - sum(floor)
    wanted = [n - f for n, f in zip(natural, floor, strict=True)]
    if room > 0 and sum(wanted) > 0:
        widths = [f + room * w / sum(wanted) for f, w in zip(floor, wanted, strict=True)]
    return widths


def data_table(
    header: Sequence[str],
    rows: Sequence[Sequence[str]],
    styles: Mapping[str, ParagraphStyle],
    *,
    numeric_columns: Sequence[int] = (),
    bold_last_row: bool = False,
    total: float = PAGE_WIDTH,
) -> Table:
    """A table with a repeated header row, zebra stripes, and numbers right-aligned under
    right-aligned headers. Cells wrap between words only."""
    widths = column_widths(header, rows, total)

    def cell(text: str, column: int, bold: bool) -> Paragraph:
        style = styles["CellRight" if column in numeric_columns else "Cell"]
        body = escape(text)
        return Paragraph(f"<b>{body}</b>" if bold else body, style)

    last = len(rows)
    data: list[list[Any]] = [[cell(h, i, True) for i, h in enumerate(header)]]
    for number, row in enumerate(rows, start=1):
        bold = bold_last_row and number == last
        data.append([cell(str(text), i, bold) for i, text in enumerate(row)])
    table = Table(data, colWidths=widths, repeatRows=1, hAlign="LEFT")
    style = [
        ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#e3eefb")),
        ("LINEBELOW", (0, 0), (-1, 0), 0.8, ACCENT),
        ("LINEBELOW", (0, -1), (-1, -1), 0.5, MUTED),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("LEFTPADDING", (0, 0), (-1, -1), PAD),
        ("RIGHTPADDING", (0, 0), (-1, -1), PAD),
        ("TOPPADDING", (0, 0), (-1, -1), 2.5),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 2.5),
    ]
    for index in range(2, len(data), 2):
        style.append(("BACKGROUND", (0, index), (-1, index), STRIPE))
    table.setStyle(TableStyle(style))
    return table


def checkpoint_flowables(
    cp: CheckpointInfo, w: Words, styles: Mapping[str, ParagraphStyle], zone: ZoneInfo
) -> list[Flowable]:
    """The section that ties a document to the log: checkpoint, root and verifier key
    (kept on one page)."""
    signed = w("cp.signed", at=stamp(cp.signed_at, zone)) if cp.signed_at is not None else ""
    mono = styles["Mono"]
    note = "<br/>".join(escape(line) for line in cp.note.rstrip("\n").split("\n"))
    section = [
        Paragraph(escape(w("cp.heading")), styles["Heading"]),
        Paragraph(
            w("cp.text", origin=escape(cp.origin), size=cp.size, signed=escape(signed)),
            styles["Body"],
        ),
        Paragraph(escape(cp.root_b64), mono),
        Spacer(1, 2 * mm),
        Paragraph(escape(w("cp.note")), styles["Body"]),
        Paragraph(note, mono),
        Spacer(1, 2 * mm),
        Paragraph(escape(w("cp.key")), styles["Body"]),
        Paragraph(escape(cp.verifier_key), mono),
    ]
    return [KeepTogether(section)]


def render_pdf(story: list[Flowable], *, title: str, footer: str, words: Words) -> bytes:
    """Lay out ``story`` on A4 pages with a footer line and page numbers; returns the PDF.

    ``invariant``: the same input gives the same bytes (no random document id)."""
    buffer = io.BytesIO()
    doc = SimpleDocTemplate(
        buffer,
        pagesize=A4,
        leftMargin=20 * mm,
        rightMargin=20 * mm,
        topMargin=18 * mm,
        bottomMargin=18 * mm,
        title=title,
        author="live",
        creator="live",
        subject=title,
        invariant=1,
        lang=words.lang,
    )

    def decorate(canvas: Any, document: Any) -> None:
        canvas.saveState()
        canvas.setFont("Helvetica", 7.5)
        canvas.setFillColor(MUTED)
        canvas.drawString(20 * mm, 10 * mm, footer)
        canvas.drawRightString(A4[0] - 20 * mm, 10 * mm, words("page", page=document.page))
        canvas.restoreState()

    doc.build(story, onFirstPage=decorate, onLaterPages=decorate)
    return buffer.getvalue()
