"""CSV that is safe to open in a spreadsheet (OWASP, "CSV Injection").

Excel, LibreOffice and Google Sheets run a cell that begins with ``=``, ``+``, ``-`` or
``@`` as a formula, and a leading tab or carriage return can hide such a start; a listener's
name like ``=HYPERLINK("http://x","y")`` in an export would then act when an agent or a
works council opens the file. OWASP's advice, followed here for every CSV the project
writes: prefix such a cell with a single quote, so the program shows it as text.

Only text is neutralised: numbers the project computes (sizes, counts, minutes) carry no
formula and stay numbers. A cell read back that begins with a quote followed by one of
those characters had the quote added here. PDFs are not affected.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
"""First characters that make a spreadsheet read a cell as a formula (OWASP)."""

Cell = str | int | float


def safe_cell(value: Cell) -> Cell:
    """``value``, with a single quote in front if it is text beginning with a formula start."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def csv_text(rows: Iterable[Iterable[Cell]]) -> str:
    """RFC 4180 CSV (``csv`` module defaults: comma, CRLF, minimal quoting) of ``rows``,
    every cell passed through ``safe_cell``. The one CSV writer of the project."""
    out = io.StringIO()
    writer = csv.writer(out)
    for row in rows:
        writer.writerow([safe_cell(cell) for cell in row])
    return out.getvalue()
