"""The works-council report as an A4 PDF: a bar chart of listens and refusals per team, the
figures per team, purposes and refusal reasons per team (labels in the reader's language,
each count right-aligned under its own right-aligned heading), the policy versions in force
and their changes, the exports made, and the signed checkpoint."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any
from xml.sax.saxutils import escape

from reportlab.graphics.charts.barcharts import VerticalBarChart  # type: ignore[import-untyped]
from reportlab.graphics.charts.legends import Legend  # type: ignore[import-untyped]
from reportlab.graphics.shapes import Drawing, String  # type: ignore[import-untyped]
from reportlab.lib.units import mm  # type: ignore[import-untyped]
from reportlab.platypus import Flowable, Paragraph, Spacer  # type: ignore[import-untyped]

from .monthly import ALL_TEAMS, TOTAL, MonthReport, TeamMonth
from .pdf import (
    ACCENT,
    REFUSED,
    checkpoint_flowables,
    data_table,
    facts_table,
    pdf_styles,
    render_pdf,
)
from .periods import stamp
from .strings import Words

MAX_KEY_COLUMNS = 6
"""Purposes or reasons shown as their own columns; the rest are summed in one column."""


def report_pdf(report: MonthReport, lang: str = "en") -> bytes:
    """The report as an A4 PDF in ``lang`` (``en``, ``de``)."""
    w = Words(lang)
    styles = pdf_styles()
    zone = report.month.zone
    month = report.month.label
    story: list[Flowable] = [
        Paragraph(escape(w("report.title", month=month)), styles["Title"]),
        facts_table(
            [
                (w("month"), month),
                (w("generated"), stamp(report.generated_at, zone)),
                (w("zone"), zone.key),
                (w("teams.from"), w.label("teams", report.team_source)),
            ],
            styles,
        ),
        Spacer(1, 4 * mm),
        Paragraph(escape(w("report.intro", month=month)), styles["Body"]),
        Paragraph(escape(w("chart")), styles["Heading"]),
        bar_chart(report, w),
        Paragraph(escape(w("overview")), styles["Heading"]),
        _overview_table(report, w, styles),
        Paragraph(escape(w("purposes")), styles["Heading"]),
        _breakdown(report, w, styles, report.purposes, "purposes", "purpose"),
        Paragraph(escape(w("reasons")), styles["Heading"]),
        _breakdown(report, w, styles, report.refusal_reasons, "refused_reasons", "refusal"),
        *_policy_section(report, w, styles),
        *_exports_section(report, w, styles),
    ]
    story += checkpoint_flowables(report.checkpoint, w, styles, zone)
    return render_pdf(
        story,
        title=w("report.title", month=month),
        footer=f"live · {month} · {stamp(report.generated_at, zone)}",
        words=w,
    )


def _team_name(row: TeamMonth, w: Words) -> str:
    if row.team in (ALL_TEAMS, TOTAL):
        return w.label("team", row.team)
    return row.team


def _minutes(row: TeamMonth) -> str:
    """Minutes, as a range "shortest–longest" when a crash left some ends known only within
    bounds (``end_unknown``)."""
    if row.end_unknown and row.minutes_max > row.minutes:
        return f"{row.minutes:.1f}–{row.minutes_max:.1f}"
    return f"{row.minutes:.1f}"


def _overview_table(report: MonthReport, w: Words, styles: Mapping[str, Any]) -> Flowable:
    columns = ("team", "listens", "minutes", "agents", "running", "attempts", "end_unknown", "refused")
    rows = [
        [
            _team_name(row, w),
            str(row.listens),
            _minutes(row),
            str(len(row.agents)),
            str(row.running),
            str(row.attempts),
            str(row.end_unknown),
            str(row.refused),
        ]
        for row in [*report.teams, report.total]
    ]
    return data_table(
        [w(f"col.{k}") for k in columns],
        rows,
        styles,
        numeric_columns=range(1, len(columns)),
        bold_last_row=True,
    )


def _breakdown(
    report: MonthReport,
    w: Words,
    styles: Mapping[str, Any],
    keys: Sequence[str],
    attribute: str,
    kind: str,
) -> Flowable:
    """A team × key table of counts (purposes, or refusal reasons)."""
    if not keys:
        return Paragraph(escape(w("none.short")), styles["Body"])
    shown, rest = keys[:MAX_KEY_COLUMNS], keys[MAX_KEY_COLUMNS:]
    header = [w("col.team"), *(w.label(kind, k) for k in shown)]
    if rest:
        header.append(w("col.other"))
    rows = []
    for row in [*report.teams, report.total]:
        counts: Counter[str] = getattr(row, attribute)
        cells = [_team_name(row, w), *(str(counts.get(k, 0)) for k in shown)]
        if rest:
            cells.append(str(sum(counts.get(k, 0) for k in rest)))
        rows.append(cells)
    return data_table(
        header, rows, styles, numeric_columns=range(1, len(header)), bold_last_row=True
    )


def _policy_section(report: MonthReport, w: Words, styles: Mapping[str, Any]) -> list[Flowable]:
    zone = report.month.zone
    versions = ", ".join(report.policy_versions) or w("policy.unknown")
    story: list[Flowable] = [
        Paragraph(escape(w("policy")), styles["Heading"]),
        facts_table([(w("policy.versions"), versions)], styles),
        Spacer(1, 2 * mm),
    ]
    changes = report.policy_changes
    if not changes:
        return [*story, Paragraph(escape(w("policy.changes.none")), styles["Body"])]
    story += [
        Paragraph(escape(w.count("policy.changes", len(changes))), styles["Body"]),
        Spacer(1, 1 * mm),
        data_table(
            [w("col.when"), w("col.from"), w("col.to")],
            [[stamp(c.at, zone), c.previous_version or "-", c.version] for c in changes],
            styles,
        ),
    ]
    return story


def _exports_section(report: MonthReport, w: Words, styles: Mapping[str, Any]) -> list[Flowable]:
    zone = report.month.zone
    exports = report.exports
    heading = Paragraph(escape(w("exports")), styles["Heading"])
    if not exports:
        return [heading, Paragraph(escape(w("exports.none")), styles["Body"])]
    rows = [
        [
            stamp(e.at, zone),
            w.label("scope", e.scope),
            e.format.upper(),
            w.label("role", e.role),
            "" if e.entries is None else str(e.entries),
        ]
        for e in exports
    ]
    return [
        heading,
        Paragraph(escape(w.count("exports", len(exports))), styles["Body"]),
        Spacer(1, 1 * mm),
        data_table(
            [w("col.when"), w("col.scope"), w("col.format"), w("col.role"), w("col.entries")],
            rows,
            styles,
            numeric_columns=(4,),
        ),
    ]


def bar_chart(report: MonthReport, w: Words) -> Drawing:
    """Grouped bars per team: listens and refused requests (reportlab.graphics)."""
    drawing = Drawing(170 * mm, 72 * mm)
    if not report.teams:
        drawing.add(String(0, 36 * mm, w("chart.empty"), fontName="Helvetica", fontSize=10))
        return drawing
    chart = VerticalBarChart()
    chart.x, chart.y = 14 * mm, 16 * mm
    chart.width, chart.height = 150 * mm, 46 * mm
    chart.data = [
        [row.listens for row in report.teams],
        [row.refused for row in report.teams],
    ]
    chart.categoryAxis.categoryNames = [_team_name(row, w)[:18] for row in report.teams]
    chart.categoryAxis.labels.fontName = "Helvetica"
    chart.categoryAxis.labels.fontSize = 8
    chart.categoryAxis.labels.boxAnchor = "n"
    top = max(max(series) for series in chart.data)
    step = max(1, -(-top // 5))  # whole numbers: these are counts
    chart.valueAxis.valueMin = 0
    chart.valueAxis.valueMax = max(step * 5, 1)
    chart.valueAxis.valueStep = step
    chart.valueAxis.labels.fontName = "Helvetica"
    chart.valueAxis.labels.fontSize = 8
    chart.valueAxis.labelTextFormat = "%d"
    chart.bars[0].fillColor = ACCENT
    chart.bars[1].fillColor = REFUSED
    chart.barSpacing = 1.5
    chart.groupSpacing = 8
    chart.barLabelFormat = "%d"
    chart.barLabels.fontName = "Helvetica"
    chart.barLabels.fontSize = 7
    chart.barLabels.nudge = 6
    drawing.add(chart)
    legend = Legend()
    legend.x, legend.y = 14 * mm, 4 * mm
    legend.alignment = "right"
    legend.columnMaximum = 1
    legend.fontName = "Helvetica"
    legend.fontSize = 8
    legend.dx = legend.dy = 7
    legend.deltax = 45 * mm
    legend.colorNamePairs = [
        (ACCENT, w("chart.listens")),
        (REFUSED, w("chart.refused")),
    ]
    drawing.add(legend)
    return drawing
