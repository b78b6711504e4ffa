"""The works-council report: listens per team and month, as CSV and PDF.

COMPLIANCE.md ("Disclosure"; BetrVG §87(1) no. 6): a site's agreement usually asks for
regular reports to the works council. For one month, per team: how many listen sessions
started, their minutes, how many agents were listened to, for which purposes, and how many
listen requests were refused (``listen.refused``) and why. Numbers only, no names: the
council sees how monitoring is used, not who listened to whom.

An agent's team, in order: the given team map (a policy's ``[teams.<name>] agents = [...]``
tables, or ``[agents] <agent id> = "<team>"``), else the ``team`` recorded with the agent's
``listen.started`` entries, else ``all``.

``aggregate`` and the renderers are pure; ``collect_report`` reads the ledger.
"""

from __future__ import annotations

import calendar
import re
import tomllib
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape
from zoneinfo import ZoneInfo

from reportlab.graphics.charts.barcharts import VerticalBarChart  # type: ignore[import-untyped]
from reportlab.graphics.charts.legends import Legend  # type: ignore[import-untyped]
from reportlab.graphics.shapes import Drawing, String  # type: ignore[import-untyped]
from reportlab.lib import colors  # type: ignore[import-untyped]
from reportlab.lib.units import mm  # type: ignore[import-untyped]
from reportlab.platypus import Flowable, Paragraph, Spacer  # type: ignore[import-untyped]

from ..errors import BadRequest, ConfigError
from .csvsafe import Cell, csv_text
from .disclosure import (
    ACCENT,
    CheckpointInfo,
    ListenRecord,
    Words,
    checkpoint_flowables,
    current_checkpoint,
    data_table,
    facts_table,
    join_sessions,
    pdf_styles,
    render_pdf,
    stamp,
)
from .disclosure import STRINGS as DISCLOSURE_STRINGS
from .entry import LedgerEntry
from .log import MerkleLedger

ALL_TEAMS = "all"
"""The team of agents no map or entry names (and of refusals with no agent)."""

TOTAL = "total"

TEAM_SOURCES = ("recorded", "policy")
"""Where teams came from, besides a team map file (shown in the report)."""


@dataclass(frozen=True, slots=True)
class Month:
    """A calendar month in a time zone: ``[since, until)`` in unix seconds."""

    year: int
    month: int
    zone: ZoneInfo

    @property
    def label(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"

    @property
    def since(self) -> float:
        return datetime(self.year, self.month, 1, tzinfo=self.zone).timestamp()

    @property
    def until(self) -> float:
        year, month = (self.year + 1, 1) if self.month == 12 else (self.year, self.month + 1)
        return datetime(year, month, 1, tzinfo=self.zone).timestamp()

    @property
    def days(self) -> int:
        return calendar.monthrange(self.year, self.month)[1]


def parse_month(text: str | None, zone: ZoneInfo) -> Month:
    """``YYYY-MM``; ``BadRequest`` (``bad_month``) otherwise."""
    match = re.fullmatch(r"(\d{4})-(\d{2})", (text or "").strip())
    if match is None or not 1 <= int(match.group(2)) <= 12 or int(match.group(1)) < 1970:
        raise BadRequest(f"month must be YYYY-MM, got {text!r:.20}", code="bad_month")
    return Month(int(match.group(1)), int(match.group(2)), zone)


# --------------------------------------------------------------------------- teams


def load_team_map(path: Path) -> dict[str, str]:
    """Agent id → team from a TOML file (module docstring); ``ConfigError`` if unreadable,
    or if an agent is in two teams (each agent counts in one team)."""
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read the team map {path}: {exc}") from exc
    return team_map_from(doc, str(path))


def team_map_from(doc: Mapping[str, Any], source: str = "team map") -> dict[str, str]:
    teams: dict[str, str] = {}

    def put(agent: object, team: object) -> None:
        if not isinstance(agent, str) or not isinstance(team, str) or not agent or not team:
            raise ConfigError(f"{source}: agent ids and team names must be non-empty text")
        if teams.get(agent, team) != team:
            raise ConfigError(
                f"{source}: agent {agent!r} is in teams {teams[agent]!r} and {team!r}"
            )
        teams[agent] = team

    section = doc.get("teams", {})
    if not isinstance(section, dict):
        raise ConfigError(f"{source}: [teams] must be a table of teams")
    for name, body in section.items():
        agents = body.get("agents") if isinstance(body, dict) else None
        if not isinstance(agents, list):
            raise ConfigError(f"{source}: [teams.{name}] needs agents = [...]")
        for agent in agents:
            put(agent, name)
    flat = doc.get("agents", {})
    if not isinstance(flat, dict):
        raise ConfigError(f'{source}: [agents] must map agent ids to teams: agent-1 = "billing"')
    for agent, team in flat.items():
        put(agent, team)
    return teams


# --------------------------------------------------------------------------- aggregation


@dataclass(slots=True)
class TeamMonth:
    """What the council reads for one team (or ``total``) in one month."""

    team: str
    listens: int = 0
    seconds: float = 0.0
    running: int = 0
    attempts: int = 0  # sessions that never connected (setup-failed): nothing heard
    end_unknown: int = 0
    """Listens cut by a server crash (``node-lost``): the end is known only within bounds."""
    seconds_max: float = 0.0
    """The longest the listens can have lasted (``seconds`` is the shortest)."""
    agents: set[str] = field(default_factory=set)
    purposes: Counter[str] = field(default_factory=Counter)
    refused: int = 0
    refused_reasons: Counter[str] = field(default_factory=Counter)

    @property
    def minutes(self) -> float:
        return round(self.seconds / 60, 1)

    @property
    def minutes_max(self) -> float:
        return round(self.seconds_max / 60, 1)

    def add(self, other: TeamMonth) -> None:
        self.listens += other.listens
        self.seconds += other.seconds
        self.running += other.running
        self.attempts += other.attempts
        self.end_unknown += other.end_unknown
        self.seconds_max += other.seconds_max
        self.agents |= other.agents
        self.purposes.update(other.purposes)
        self.refused += other.refused
        self.refused_reasons.update(other.refused_reasons)

    def to_json(self) -> dict[str, Any]:
        return {
            "team": self.team,
            "listens": self.listens,
            "minutes": self.minutes,
            "running": self.running,
            "attempts": self.attempts,
            "end_unknown": self.end_unknown,
            "minutes_max": self.minutes_max,
            "agents": len(self.agents),
            "purposes": dict(sorted(self.purposes.items())),
            "refused": self.refused,
            "refused_reasons": dict(sorted(self.refused_reasons.items())),
        }


def team_resolver(team_map: Mapping[str, str], records: Iterable[ListenRecord]) -> dict[str, str]:
    """Agent id → team: the map first, then the team recorded with their latest listen."""
    resolved: dict[str, str] = {}
    for record in sorted(records, key=lambda r: r.started_seq):
        if record.agent_id and record.team:
            resolved[record.agent_id] = record.team
    resolved.update(team_map)
    return resolved


def aggregate(
    records: Iterable[ListenRecord],
    refused: Iterable[LedgerEntry],
    teams: Mapping[str, str],
    *,
    since: float,
    until: float,
) -> tuple[list[TeamMonth], TeamMonth]:
    """Per-team figures (sorted by team name) and the total, for sessions started and
    refusals made in ``[since, until)``. A session still running counts as a listen with no
    minutes yet (``running``); one that never connected (``setup-failed``) is an attempt,
    not a listen: nothing was heard, so it adds no listen and no minutes (``attempts``). A
    listen cut by a crash counts its shortest duration in ``minutes`` and its longest in
    ``minutes_max`` (``end_unknown`` counts them)."""
    by_team: dict[str, TeamMonth] = {}

    def team(agent_id: str | None) -> TeamMonth:
        name = teams.get(agent_id, ALL_TEAMS) if agent_id else ALL_TEAMS
        return by_team.setdefault(name, TeamMonth(name))

    for record in records:
        if not since <= record.started_at < until:
            continue
        row = team(record.agent_id)
        if record.attempt:
            row.attempts += 1
            continue
        row.listens += 1
        if record.agent_id:
            row.agents.add(record.agent_id)
        row.purposes[record.purpose or "-"] += 1
        if record.duration_s is None:
            row.running += 1
        else:
            row.seconds += max(0.0, record.duration_s)
            row.seconds_max += max(0.0, record.longest_s or record.duration_s)
            if record.end_bounded:
                row.end_unknown += 1
    for entry in refused:
        if entry.kind != "listen.refused" or not since <= entry.at < until:
            continue
        agent = entry.fields.get("agent_id")
        row = team(agent if isinstance(agent, str) else None)
        row.refused += 1
        reason = entry.fields.get("code") or entry.fields.get("reason") or "-"
        row.refused_reasons[str(reason)] += 1
    rows = [by_team[name] for name in sorted(by_team)]
    total = TeamMonth(TOTAL)
    for row in rows:
        total.add(row)
    return rows, total


@dataclass(frozen=True, slots=True)
class MonthReport:
    month: Month
    teams: tuple[TeamMonth, ...]
    total: TeamMonth
    checkpoint: CheckpointInfo
    generated_at: float
    team_source: str
    """``recorded``, ``policy``, or the team map's file name (``TEAM_SOURCES``)."""

    @property
    def purposes(self) -> list[str]:
        """Every purpose that occurs, sorted."""
        return sorted(self.total.purposes)

    @property
    def refusal_reasons(self) -> list[str]:
        return sorted(self.total.refused_reasons)

    @property
    def entries(self) -> int:
        """How many sessions and refusals the report counts."""
        return self.total.listens + self.total.refused

    def to_json(self) -> dict[str, Any]:
        return {
            "month": self.month.label,
            "timezone": self.month.zone.key,
            "teams": [t.to_json() for t in self.teams],
            "total": self.total.to_json(),
            "tree_size": self.checkpoint.size,
            "root": self.checkpoint.root_b64,
            "generated_at": self.generated_at,
        }


async def collect_report(
    ledger: MerkleLedger,
    month: Month,
    *,
    team_map: Mapping[str, str],
    team_source: str,
    generated_at: float,
) -> MonthReport:
    """Read the month's sessions and refusals up to the current checkpoint."""
    checkpoint = await current_checkpoint(ledger)
    since, until, stop = month.since, month.until, checkpoint.size
    started = await ledger.entries(kind="listen.started", since=since, until=until, stop=stop)
    ended = await ledger.entries(kind="listen.ended", since=since, stop=stop)
    refused = await ledger.entries(kind="listen.refused", since=since, until=until, stop=stop)
    records = join_sessions([*started, *ended])
    teams = team_resolver(team_map, records)
    rows, total = aggregate(records, refused, teams, since=month.since, until=month.until)
    return MonthReport(month, tuple(rows), total, checkpoint, generated_at, team_source)


# --------------------------------------------------------------------------- CSV


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


# --------------------------------------------------------------------------- PDF

STRINGS: Mapping[str, Mapping[str, str]] = {
    "en": {
        "title": "Monitoring report for the works council: {month}",
        "intro": (
            "Listen sessions started in {month}, per team: how many, their minutes, how many "
            "agents were listened to, for which purposes, and how many listen requests were "
            "refused and why. The figures are read from the signed listen ledger at the "
            "checkpoint below; they name no one."
        ),
        "period": "Month",
        "generated": "Generated",
        "zone": "Times in",
        "teams.from": "Teams from",
        "teams.recorded": 'the team recorded with each listen, else "all"',
        "teams.policy": "the monitoring policy in force, else the team recorded with each listen",
        "overview": "Overview",
        "chart": "Listens and refused requests per team",
        "chart.listens": "Listens",
        "chart.refused": "Refused requests",
        "chart.empty": "No listens and no refused requests in this month.",
        "col.team": "Team",
        "col.listens": "Listens",
        "col.minutes": "Minutes",
        "col.agents": "Agents",
        "col.running": "Running",
        "col.attempts": "Attempts",
        "col.end_unknown": "End unknown",
        "col.refused": "Refused",
        "purposes": "Purposes",
        "reasons": "Why requests were refused",
        "none": "None.",
        "team.all": "all",
        "team.total": "Total",
        "reason.role_forbidden": "role may not listen",
        "reason.call_unknown": "unknown call",
        "reason.purpose_required": "no purpose given",
        "reason.purpose_not_allowed": "purpose not allowed",
        "reason.call_private": "private call",
        "reason.excluded": "excluded call",
        "reason.outside_team": "outside the listener's teams",
        "reason.outside_hours": "outside allowed hours",
        "reason.quota_supervisor_day": "listener's daily quota",
        "reason.quota_agent_month": "agent's monthly quota",
        "reason.ledger_unavailable": "could not be logged",
        "page": "Page {page}",
    },
    "de": {
        "title": "Bericht zum Mithören für den Betriebsrat: {month}",
        "intro": (
            "Mithör-Vorgänge, die im Monat {month} begonnen haben, je Team: wie viele, ihre Minuten, "
            "bei wie vielen Agent/innen mitgehört wurde, zu welchen Zwecken, und wie viele "
            "Anfragen abgelehnt wurden und warum. Die Zahlen stammen aus dem signierten "
            "Mithör-Protokoll beim unten genannten Prüfpunkt; sie nennen keine Namen."
        ),
        "period": "Monat",
        "generated": "Erstellt",
        "zone": "Zeiten in",
        "teams.from": "Teams laut",
        "teams.recorded": 'Team im Eintrag des Vorgangs, sonst "alle"',
        "teams.policy": "geltender Richtlinie, sonst Team im Eintrag des Vorgangs",
        "overview": "Übersicht",
        "chart": "Mithör-Vorgänge und abgelehnte Anfragen je Team",
        "chart.listens": "Mithör-Vorgänge",
        "chart.refused": "Abgelehnte Anfragen",
        "chart.empty": "In diesem Monat gab es keine Mithör-Vorgänge und keine Ablehnungen.",
        "col.team": "Team",
        "col.listens": "Vorgänge",
        "col.minutes": "Minuten",
        "col.agents": "Agent/innen",
        "col.running": "Laufend",
        "col.attempts": "Versuche",
        "col.end_unknown": "Ende offen",
        "col.refused": "Abgelehnt",
        "purposes": "Zwecke",
        "reasons": "Gründe der Ablehnungen",
        "none": "Keine.",
        "team.all": "alle",
        "team.total": "Summe",
        "purpose.quality": "Qualität",
        "purpose.training": "Schulung",
        "purpose.coaching": "Coaching",
        "purpose.complaint": "Beschwerde",
        "reason.role_forbidden": "Rolle darf nicht mithören",
        "reason.call_unknown": "unbekanntes Gespräch",
        "reason.purpose_required": "kein Zweck angegeben",
        "reason.purpose_not_allowed": "Zweck nicht erlaubt",
        "reason.call_private": "privates Gespräch",
        "reason.excluded": "ausgeschlossenes Gespräch",
        "reason.outside_team": "außerhalb der eigenen Teams",
        "reason.outside_hours": "außerhalb der erlaubten Zeiten",
        "reason.quota_supervisor_day": "Tageskontingent der Teamleitung",
        "reason.quota_agent_month": "Monatskontingent je Agent/in",
        "reason.ledger_unavailable": "konnte nicht protokolliert werden",
        "page": "Seite {page}",
    },
}


def _words(lang: str) -> Words:
    """The report's strings over the disclosure's (which has the checkpoint section's)."""
    merged = {
        code: {**DISCLOSURE_STRINGS.get(code, {}), **STRINGS.get(code, {})} for code in ("en", "de")
    }
    return Words(merged, lang)


def report_pdf(report: MonthReport, lang: str = "en") -> bytes:
    """The report as an A4 PDF: title, month, generation time, a bar chart of listens and
    refusals per team, the figures per team, purposes, refusal reasons, the checkpoint and
    the verifier key."""
    w = _words(lang)
    styles = pdf_styles()
    zone = report.month.zone
    month = report.month.label
    story: list[Flowable] = [
        Paragraph(escape(w("title", month=month)), styles["Title"]),
        facts_table(
            [
                (w("period"), month),
                (w("generated"), stamp(report.generated_at, zone)),
                (w("zone"), zone.key),
                (w("teams.from"), w.label("teams", report.team_source)),
            ],
            styles,
        ),
        Spacer(1, 4 * mm),
        Paragraph(escape(w("intro", month=month)), styles["Body"]),
        Paragraph(escape(w("chart")), styles["Heading"]),
        bar_chart(report, w),
        Paragraph(escape(w("overview")), styles["Heading"]),
        _overview_table(report, w),
        Paragraph(escape(w("purposes")), styles["Heading"]),
        _breakdown(report, w, styles, report.purposes, "purposes", "purpose"),
        Paragraph(escape(w("reasons")), styles["Heading"]),
        _breakdown(report, w, styles, report.refusal_reasons, "refused_reasons", "reason"),
    ]
    story += checkpoint_flowables(report.checkpoint, w, styles, zone)
    return render_pdf(
        story,
        title=w("title", month=month),
        footer=f"live · {month} · {stamp(report.generated_at, zone)}",
        words=w,
    )


def _team_name(row: TeamMonth, w: Words) -> str:
    if row.team in (ALL_TEAMS, TOTAL):
        return w(f"team.{row.team}")
    return row.team


def _minutes(row: TeamMonth) -> str:
    """Minutes, as a range "shortest–longest" when a crash left some ends known only within
    bounds (``end_unknown``)."""
    if row.end_unknown and row.minutes_max > row.minutes:
        return f"{row.minutes:.1f}–{row.minutes_max:.1f}"
    return f"{row.minutes:.1f}"


def _overview_table(report: MonthReport, w: Words) -> Flowable:
    columns = ("team", "listens", "minutes", "agents", "running", "attempts", "end_unknown", "refused")
    header = [w(f"col.{k}") for k in columns]
    data: list[list[Any]] = [header]
    for row in [*report.teams, report.total]:
        data.append(
            [
                _team_name(row, w),
                row.listens,
                _minutes(row),
                len(row.agents),
                row.running,
                row.attempts,
                row.end_unknown,
                row.refused,
            ]
        )
    widths = [34, 18, 26, 20, 18, 18, 24, 18]  # mm; a range of minutes and "End unknown" need room
    table = data_table(data, [w_ * mm for w_ in widths], numeric_columns=range(1, 8))
    table.setStyle([("FONT", (0, -1), (-1, -1), "Helvetica-Bold", 8.5)])
    return table


def _breakdown(
    report: MonthReport,
    w: Words,
    styles: Mapping[str, Any],
    keys: Sequence[str],
    attribute: str,
    prefix: str,
) -> Flowable:
    """A team × key table of counts (purposes, or refusal reasons)."""
    if not keys:
        return Paragraph(escape(w("none")), styles["Body"])
    shown = keys[:6]  # the page is 170 mm wide; more than six columns would not be readable
    rest = keys[6:]
    header = [w("col.team"), *(w.label(prefix, k) for k in shown)] + (["…"] if rest else [])
    data: list[list[Any]] = [
        [Paragraph(f"<b>{escape(str(h))}</b>", styles["Cell"]) for h in header]
    ]
    for row in [*report.teams, report.total]:
        counts: Counter[str] = getattr(row, attribute)
        data.append(
            [_team_name(row, w), *(counts.get(k, 0) for k in shown)]
            + ([sum(counts.get(k, 0) for k in rest)] if rest else [])
        )
    width = 120 * mm / max(1, len(header) - 1)
    table = data_table(
        data, [50 * mm, *([width] * (len(header) - 1))], numeric_columns=range(1, len(header))
    )
    table.setStyle([("FONT", (0, -1), (-1, -1), "Helvetica-Bold", 8.5)])
    return table


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
    chart.bars[1].fillColor = colors.HexColor("#b3261e")
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
        (colors.HexColor("#b3261e"), w("chart.refused")),
    ]
    drawing.add(legend)
    return drawing
