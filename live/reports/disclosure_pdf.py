"""An agent's disclosure as an A4 PDF: title, period, one table row per listen session, the
signed checkpoint and the verifier key. Purposes, legs and roles are shown as labels in the
reader's language; the listener as the policy discloses it (``shown_listener``)."""

from __future__ import annotations

from xml.sax.saxutils import escape
from zoneinfo import ZoneInfo

from reportlab.lib.units import mm  # type: ignore[import-untyped]
from reportlab.platypus import Flowable, Paragraph, Spacer  # type: ignore[import-untyped]

from ..l10n import clock, clock_span
from .disclosure import Disclosure, DisclosureRow
from .pdf import checkpoint_flowables, data_table, facts_table, pdf_styles, render_pdf
from .periods import day, last_day, local, stamp
from .strings import Words

COLUMNS = (
    "col.date",
    "col.time",
    "col.duration",
    "col.legs",
    "col.purpose",
    "col.listener",
    "col.policy",
    "col.entry",
)
NUMERIC = (2, 7)


def duration_cell(row: DisclosureRow, w: Words) -> str:
    """The duration as the table shows it: ``m:ss``, a span when only the end's bounds are
    known, or why there is none (running, an attempt)."""
    r = row.record
    if r.attempt:
        return w("attempt")
    if r.duration_s is None:
        return w("running")
    if r.end_bounded and r.longest_s is not None:
        return clock_span(r.duration_s, r.longest_s)
    return clock(r.duration_s)


def session_cells(row: DisclosureRow, zone: ZoneInfo, w: Words) -> list[str]:
    r = row.record
    at = local(r.started_at, zone)
    legs = ", ".join(w.label("leg", leg) for leg in r.legs) if r.legs else w.label("leg", "none")
    listener = w.label("role", row.listener) if row.listener_is_role else row.listener
    return [
        at.strftime("%Y-%m-%d"),
        at.strftime("%H:%M:%S"),
        duration_cell(row, w),
        legs,
        w.label("purpose", r.purpose),
        listener,
        r.policy_version or "-",
        str(r.started_seq),
    ]


def disclosure_pdf(disclosure: Disclosure, zone: ZoneInfo, lang: str = "en") -> bytes:
    """The disclosure as an A4 PDF in ``lang`` (``en``, ``de``)."""
    w = Words(lang)
    styles = pdf_styles()
    agent = disclosure.agent_shown
    if disclosure.since is None and disclosure.until is None:
        period = w("all")
    else:
        since = day(disclosure.since, zone) or "…"
        period = f"{since} – {last_day(disclosure.until, zone) or '…'}"
    facts = [
        (w("period"), period),
        (w("generated"), stamp(disclosure.generated_at, zone)),
        (w("zone"), zone.key),
        (w("shown"), w("shown.names" if disclosure.listener_names else "shown.roles")),
    ]
    story: list[Flowable] = [
        Paragraph(escape(w("title", agent=agent)), styles["Title"]),
        facts_table(facts, styles),
        Spacer(1, 4 * mm),
        Paragraph(w("intro", agent=escape(agent)), styles["Body"]),
        Spacer(1, 3 * mm),
    ]
    rows = disclosure.rows
    if rows:
        total = sum(r.record.duration_s or 0.0 for r in rows if not r.record.attempt)
        summary = w.count("summary", len(rows), duration=clock(total))
        story += [Paragraph(escape(summary), styles["Body"]), Spacer(1, 2 * mm)]
        story.append(
            data_table(
                [w(key) for key in COLUMNS],
                [session_cells(row, zone, w) for row in rows],
                styles,
                numeric_columns=NUMERIC,
            )
        )
    else:
        story.append(Paragraph(escape(w("none")), styles["Body"]))
    story += checkpoint_flowables(disclosure.checkpoint, w, styles, zone)
    return render_pdf(
        story,
        title=w("title", agent=agent),
        footer=f"live · {disclosure.agent_id} · {stamp(disclosure.generated_at, zone)}",
        words=w,
    )
