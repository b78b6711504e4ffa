"""The CSV forms of a disclosure and of a works-council report (RFC 4180, UTF-8).

Every file goes through the one CSV writer, ``live.audit.csvsafe.csv_text``, which
neutralises cells a spreadsheet would run as a formula. Durations follow the one rule of
``live.l10n.durations``. Ids (purposes, legs, end reasons) stay ids here: a CSV is read by
programs as much as by people; the PDFs show labels.
"""

from __future__ import annotations

from collections.abc import Sequence
from zoneinfo import ZoneInfo

from ..audit.csvsafe import Cell, csv_text
from ..l10n import clock, clock_span
from .disclosure import Disclosure
from .monthly import MonthReport
from .periods import local
from .sessions import ListenRecord

CSV_COLUMNS = (
    "date",
    "time",
    "timezone",
    "duration",
    "duration_s",
    "heard_s",
    "ended",
    "legs_heard",
    "purpose",
    "listener",
    "policy_version",
    "end_reason",
    "session_id",
    "call_id",
    "entry",
    "checkpoint_size",
    "checkpoint_root",
)


def duration_text(record: ListenRecord) -> str:
    """``m:ss``; ``m:ss-m:ss`` (shortest, longest) when only the end's bounds are known;
    ``running`` while it runs."""
    if record.duration_s is None:
        return "running"
    if record.end_bounded and record.longest_s is not None:
        return clock_span(record.duration_s, record.longest_s, sep="-")
    return clock(record.duration_s)


def ended_text(record: ListenRecord, zone: ZoneInfo) -> str:
    """When the session ended; ``between <after> and <before>`` when the node died and the
    true end is unknowable (architecture decision 10); empty while running."""

    def stamp(at: float) -> str:
        return local(at, zone).strftime("%Y-%m-%d %H:%M:%S")

    if record.ended_after is not None and record.ended_before is not None:
        return f"between {stamp(record.ended_after)} and {stamp(record.ended_before)}"
    return stamp(record.ended_at) if record.ended_at is not None else ""


def legs_text(legs: Sequence[str]) -> str:
    return "+".join(legs) if legs else "none"


def disclosure_csv(disclosure: Disclosure, zone: ZoneInfo) -> str:
    """One row per session (``CSV_COLUMNS``, RFC 4180, UTF-8). A running session has
    duration ``running``; a session whose node died has ``ended`` "between ... and ..."
    and its duration as shortest-longest (``duration_s`` the shortest); a missing policy
    version is ``-``; every row names the checkpoint (tree size and base64 root) it was
    read against. Text cells that a spreadsheet would run as a formula are neutralised
    (``csvsafe``): the placeholder ``-`` reads ``'-``."""
    cp = disclosure.checkpoint
    rows: list[list[Cell]] = []
    for row in disclosure.rows:
        r = row.record
        at = local(r.started_at, zone)
        rows.append(
            [
                at.strftime("%Y-%m-%d"),
                at.strftime("%H:%M:%S"),
                zone.key,
                duration_text(r),
                "" if r.duration_s is None else f"{r.duration_s:.3f}",
                "" if r.heard_s is None else f"{r.heard_s:.3f}",
                ended_text(r, zone),
                legs_text(r.legs),
                r.purpose or "-",
                row.listener,
                r.policy_version or "-",
                r.end_reason or "",
                r.session_id,
                r.call_id or "",
                r.started_seq,
                cp.size,
                cp.root_b64,
            ]
        )
    return csv_text([CSV_COLUMNS, *rows])


def report_csv(report: MonthReport) -> str:
    """One row per team and a ``total`` row: ``month, team, listens, minutes, agents,
    running, attempts, refused, end_unknown, minutes_max`` (``end_unknown``: listens cut by a
    crash, whose end is known only within bounds; ``minutes_max`` counts their longest
    duration), a ``purpose:<name>`` column per purpose that occurs, a
    ``refused:<code>`` column per refusal reason, and the checkpoint (size, base64 root)."""
    purposes, reasons = report.purposes, report.refusal_reasons
    header: list[Cell] = [
        "month",
        "team",
        "listens",
        "minutes",
        "agents",
        "running",
        "attempts",
        "refused",
        "end_unknown",
        "minutes_max",
        *(f"purpose:{p}" for p in purposes),
        *(f"refused:{r}" for r in reasons),
        "checkpoint_size",
        "checkpoint_root",
    ]
    rows: list[list[Cell]] = [
        [
            report.month.label,
            row.team,
            row.listens,
            f"{row.minutes:.1f}",
            len(row.agents),
            row.running,
            row.attempts,
            row.refused,
            row.end_unknown,
            f"{row.minutes_max:.1f}",
            *(row.purposes.get(p, 0) for p in purposes),
            *(row.refused_reasons.get(r, 0) for r in reasons),
            report.checkpoint.size,
            report.checkpoint.root_b64,
        ]
        for row in [*report.teams, report.total]
    ]
    return csv_text([header, *rows])
