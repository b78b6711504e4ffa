"""An agent's disclosure: every listen session on their calls, as CSV and PDF for people.

COMPLIANCE.md, "Disclosure": per agent, every listen session on their calls with date, time,
duration, legs heard, purpose, the listener (name or role, as the policy says) and the policy
version (GDPR Art. 15; EU Court C-579/21). The machine form with proofs is the export bundle
(``export``); the forms here are for people and name the signed checkpoint they were read
against (origin, tree size, root hash, the note and the verifier key), so anyone can hold them
against the bundle of the same period.

Reading the ledger (``collect_disclosure``, ``record_export``) is the edge; joining entries into
sessions (``join_sessions``) and rendering (``disclosure_csv``, ``disclosure_pdf``) are pure.
The PDF building blocks at the end are shared with the works-council report (``report``).
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any
from xml.sax.saxutils import escape
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from reportlab.lib import colors  # type: ignore[import-untyped]
from reportlab.lib.pagesizes import A4  # type: ignore[import-untyped]
from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet  # type: ignore[import-untyped]
from reportlab.lib.units import mm  # type: ignore[import-untyped]
from reportlab.platypus import (  # type: ignore[import-untyped]
    Flowable,
    KeepTogether,
    Paragraph,
    SimpleDocTemplate,
    Spacer,
    Table,
    TableStyle,
)

from ..errors import BadRequest
from ..types import new_id
from .checkpoint import verify_note
from .csvsafe import Cell, csv_text
from .entry import LedgerEntry
from .log import MerkleLedger
from .proofs import b64
from .timeline import checkpoint_time

FORMATS = ("jsonl", "csv", "pdf")
LANGUAGES = ("en", "de")

RoleOf = Callable[[str], str | None]
"""The current role of a user id, if known (to show a listener by role only)."""


# --------------------------------------------------------------------------- sessions


@dataclass(frozen=True, slots=True)
class ListenRecord:
    """One listen session: its ``listen.started`` entry joined with its ``listen.ended``.

    ``listener_id`` and ``listener_name`` are personal details: ``None`` once erased."""

    session_id: str
    call_id: str | None
    agent_id: str | None
    started_seq: int
    started_at: float
    purpose: str | None
    legs: tuple[str, ...]
    listener_id: str | None
    listener_name: str | None
    listener_role: str | None
    policy_version: str | None
    team: str | None
    node_id: str | None
    ended_seq: int | None = None
    ended_at: float | None = None
    duration_s: float | None = None
    end_reason: str | None = None
    dropped_packets: int | None = None
    # What was heard: first and last packet handed to the listener (None: none was, or an
    # end written before these fields existed) and the time between them.
    first_packet_at: float | None = None
    last_packet_at: float | None = None
    heard_s: float | None = None
    ended_after: float | None = None
    ended_before: float | None = None

    @property
    def running(self) -> bool:
        return self.ended_seq is None

    @property
    def attempt(self) -> bool:
        """The listener's browser never connected (``setup-failed``): nothing was heard."""
        return self.end_reason == "setup-failed"

    @property
    def end_bounded(self) -> bool:
        """Whether the true end is unknowable (the node died, ``node-lost``) and only its
        bounds are on record: it ended between ``ended_after`` and ``ended_before``."""
        return self.ended_after is not None and self.ended_before is not None

    @property
    def longest_s(self) -> float | None:
        """The longest the session can have lasted (its duration when the end is known)."""
        if self.ended_before is not None:
            return max(0.0, self.ended_before - self.started_at)
        return self.duration_s

    def to_json(self) -> dict[str, Any]:
        return {
            "session_id": self.session_id,
            "call_id": self.call_id,
            "agent_id": self.agent_id,
            "started_seq": self.started_seq,
            "started_at": self.started_at,
            "purpose": self.purpose,
            "legs": list(self.legs),
            "listener_id": self.listener_id,
            "listener_name": self.listener_name,
            "listener_role": self.listener_role,
            "policy_version": self.policy_version,
            "team": self.team,
            "node_id": self.node_id,
            "ended_seq": self.ended_seq,
            "ended_at": self.ended_at,
            "duration_s": self.duration_s,
            "end_reason": self.end_reason,
            "dropped_packets": self.dropped_packets,
            "first_packet_at": self.first_packet_at,
            "last_packet_at": self.last_packet_at,
            "heard_s": self.heard_s,
            "ended_after": self.ended_after,
            "ended_before": self.ended_before,
        }


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _number(value: object) -> float | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return None


def join_sessions(entries: Iterable[LedgerEntry]) -> list[ListenRecord]:
    """Listen sessions from ledger entries, in the order they started.

    Only ``listen.started`` entries make a session; the first ``listen.ended`` with the same
    ``session_id`` ends it. Other kinds are ignored, so any query result can be passed."""
    started: list[LedgerEntry] = []
    ended: dict[str, LedgerEntry] = {}
    for entry in entries:
        session_id = _text(entry.fields.get("session_id"))
        if session_id is None:
            continue
        if entry.kind == "listen.started":
            started.append(entry)
        elif entry.kind == "listen.ended":
            ended.setdefault(session_id, entry)
    records = []
    for entry in sorted(started, key=lambda e: e.seq):
        f = entry.fields
        session_id = str(f["session_id"])
        end = ended.get(session_id)
        e = end.fields if end is not None else {}
        legs = f.get("legs")
        at = _number(f.get("started_at"))
        dropped = _number(e.get("dropped_packets"))
        records.append(
            ListenRecord(
                session_id=session_id,
                call_id=_text(f.get("call_id")),
                agent_id=_text(f.get("agent_id")),
                started_seq=entry.seq,
                started_at=at if at is not None else entry.at,
                purpose=_text(f.get("purpose")),
                legs=tuple(str(x) for x in legs) if isinstance(legs, list) else (),
                listener_id=_text(f.get("user_id")) or _person(entry.actor),
                listener_name=_text(f.get("display_name")),
                listener_role=_text(f.get("role")),
                policy_version=_text(f.get("policy_version")),
                team=_text(f.get("team")),
                node_id=_text(f.get("node_id")),
                ended_seq=end.seq if end is not None else None,
                ended_at=(_number(e.get("ended_at")) or end.at) if end is not None else None,
                duration_s=_number(e.get("duration_s")),
                end_reason=_text(e.get("reason")),
                dropped_packets=int(dropped) if dropped is not None else None,
                first_packet_at=_number(e.get("first_packet_at")),
                last_packet_at=_number(e.get("last_packet_at")),
                heard_s=_number(e.get("heard_s")),
                ended_after=_number(e.get("ended_after")),
                ended_before=_number(e.get("ended_before")),
            )
        )
    return records


def _person(actor: str) -> str | None:
    """The entry's actor if it names a person (not ``user`` after erasure, not ``system``)."""
    return None if actor in ("user", "system", "") else actor


# --------------------------------------------------------------------------- the checkpoint


@dataclass(frozen=True, slots=True)
class CheckpointInfo:
    """The signed checkpoint a disclosure or report was read against."""

    origin: str
    size: int
    root: bytes
    note: str
    verifier_key: str
    signed_at: float | None

    @property
    def root_b64(self) -> str:
        """The root as the checkpoint's third line writes it."""
        return b64(self.root)

    @classmethod
    def of(cls, note: str, verifier_key: str) -> CheckpointInfo:
        """Parse and verify ``note`` (``CheckpointError`` if it does not verify)."""
        cp = verify_note(note, verifier_key)
        return cls(cp.origin, cp.size, cp.root, note, verifier_key, checkpoint_time(cp))


async def current_checkpoint(ledger: MerkleLedger) -> CheckpointInfo:
    """The latest checkpoint covering the whole log (signed now if there is none)."""
    return CheckpointInfo.of(await ledger.checkpoint(), ledger.verifier_key())


# --------------------------------------------------------------------------- the disclosure


@dataclass(frozen=True, slots=True)
class DisclosureRow:
    """One session as a person reads it: the listener already reduced to name or role."""

    record: ListenRecord
    listener: str
    listener_is_role: bool


@dataclass(frozen=True, slots=True)
class Disclosure:
    agent_id: str
    since: float | None
    until: float | None
    rows: tuple[DisclosureRow, ...]
    checkpoint: CheckpointInfo
    generated_at: float
    listener_names: bool


def listener_label(record: ListenRecord, *, names: bool, role_of: RoleOf) -> tuple[str, bool]:
    """What the agent is shown as the listener, and whether it is a role.

    With ``names``, the listener's display name (else user id) while the details exist;
    otherwise (or once erased) the role: recorded with the entry, else the user's role
    now, else ``listener``."""
    if names:
        name = record.listener_name or record.listener_id
        if name:
            return name, False
    role = record.listener_role
    if role is None and record.listener_id is not None:
        role = role_of(record.listener_id)
    return role or "listener", True


def build_disclosure(
    agent_id: str,
    records: Iterable[ListenRecord],
    checkpoint: CheckpointInfo,
    *,
    since: float | None,
    until: float | None,
    listener_names: bool,
    role_of: RoleOf,
    generated_at: float,
) -> Disclosure:
    """The disclosure of ``agent_id`` from already joined sessions (pure)."""
    rows = []
    for record in records:
        if record.agent_id != agent_id:
            continue
        label, is_role = listener_label(record, names=listener_names, role_of=role_of)
        rows.append(DisclosureRow(record, label, is_role))
    return Disclosure(agent_id, since, until, tuple(rows), checkpoint, generated_at, listener_names)


async def collect_disclosure(
    ledger: MerkleLedger,
    agent_id: str,
    *,
    since: float | None,
    until: float | None,
    listener_names: bool,
    role_of: RoleOf,
    generated_at: float,
) -> Disclosure:
    """Read the sessions of ``agent_id`` started in ``[since, until)`` up to the current
    checkpoint, and build the disclosure."""
    checkpoint = await current_checkpoint(ledger)
    started = await ledger.entries(
        kind="listen.started", agent_id=agent_id, since=since, until=until, stop=checkpoint.size
    )
    ended = await ledger.entries(
        kind="listen.ended", agent_id=agent_id, since=since, stop=checkpoint.size
    )
    return build_disclosure(
        agent_id,
        join_sessions([*started, *ended]),
        checkpoint,
        since=since,
        until=until,
        listener_names=listener_names,
        role_of=role_of,
        generated_at=generated_at,
    )


async def record_export(
    ledger: MerkleLedger,
    *,
    actor: str,
    role: str,
    format: str,
    scope: str,
    entries: int,
    tree_size: int,
    at: float,
    agent_id: str | None = None,
    since: float | None = None,
    until: float | None = None,
) -> int:
    """Append the ``export.made`` entry every export and report leaves; returns its seq.

    ``LedgerUnavailable`` if it cannot be written: then the export must not be handed out."""
    fields: dict[str, Any] = {
        "export_id": new_id("ex"),
        "format": format,
        "scope": scope,
        "agent_id": agent_id,
        "entries": entries,
        "tree_size": tree_size,
        "since": since,
        "until": until,
        "role": role,
    }
    return await ledger.append(
        "export.made",
        actor=actor,
        at=at,
        **{k: v for k, v in fields.items() if v is not None},
    )


# --------------------------------------------------------------------------- dates


def zone_named(name: str | None) -> ZoneInfo:
    """An IANA time zone (default UTC); ``BadRequest`` (``bad_timezone``) if unknown."""
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        raise BadRequest(f"unknown time zone {name!r:.60}", code="bad_timezone") from None


def parse_moment(text: str, zone: ZoneInfo, *, end: bool = False) -> float:
    """``YYYY-MM-DD`` (the start of that day in ``zone``; with ``end``, the start of the next
    day, so an end date is inclusive) or an ISO 8601 date and time (``zone`` if it names
    none). ``BadRequest`` (``bad_date``) otherwise."""
    value = text.strip()
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
            day = datetime.strptime(value, "%Y-%m-%d").date()
            if end:
                day += timedelta(days=1)
            return datetime.combine(day, time(), tzinfo=zone).timestamp()
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise BadRequest(
            f"{text!r:.40} is not a date (YYYY-MM-DD) or an ISO 8601 time", code="bad_date"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone)
    return moment.timestamp()


def parse_period(
    start: str | None, end: str | None, zone: ZoneInfo
) -> tuple[float | None, float | None]:
    """``[since, until)`` from optional from/to texts (``parse_moment``)."""
    since = parse_moment(start, zone) if start else None
    until = parse_moment(end, zone, end=True) if end else None
    if since is not None and until is not None and since >= until:
        raise BadRequest("the period ends before it starts", code="bad_date")
    return since, until


def local(at: float, zone: ZoneInfo) -> datetime:
    return datetime.fromtimestamp(at, tz=UTC).astimezone(zone)


def format_duration(seconds: float) -> str:
    """``m:ss``, or ``h:mm:ss`` from one hour on (as on the agent page)."""
    s = max(0, round(seconds))
    hours, rest = divmod(s, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def _day(at: float | None, zone: ZoneInfo) -> str:
    return local(at, zone).strftime("%Y-%m-%d") if at is not None else ""


# --------------------------------------------------------------------------- CSV

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
    """``m:ss``; ``m:ss-m:ss`` (shortest, longest) when only the end's bounds are known."""
    if record.duration_s is None:
        return "running"
    if record.end_bounded and record.longest_s is not None:
        return f"{format_duration(record.duration_s)}-{format_duration(record.longest_s)}"
    return format_duration(record.duration_s)


def ended_text(record: ListenRecord, zone: ZoneInfo) -> str:
    """When the session ended; ``between <after> and <before>`` when the node died and the
    true end is unknowable (architecture decision 10); empty while running."""

    def stamp(at: float) -> str:
        return local(at, zone).strftime("%Y-%m-%d %H:%M:%S")

    if record.end_bounded:
        assert record.ended_after is not None and record.ended_before is not None
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


# --------------------------------------------------------------------------- PDF

STRINGS: Mapping[str, Mapping[str, str]] = {
    "en": {
        "title": "Listens on the calls of agent {agent}",
        "intro": (
            "This statement lists every listen session on the calls of agent {agent} that the "
            "monitoring ledger holds for the period (right of access, GDPR Art. 15). Each "
            "session is an entry of a signed, append-only log. The machine-readable export "
            "(JSON Lines) of the same period carries proofs that anyone can check offline with "
            "<font face='Courier'>live audit verify-bundle</font> and the verifier key below."
        ),
        "period": "Period",
        "all": "all entries",
        "generated": "Generated",
        "zone": "Times in",
        "shown": "Listener shown as",
        "shown.names": "name",
        "shown.roles": "role",
        "summary": "{count} listen sessions, {duration} in all.",
        "none": "Nobody listened to these calls in this period.",
        "col.date": "Date",
        "col.time": "Time",
        "col.duration": "Duration",
        "col.legs": "Legs heard",
        "col.purpose": "Purpose",
        "col.listener": "Listener",
        "col.policy": "Policy version",
        "col.entry": "Entry",
        "running": "running",
        "attempt": "attempt, nothing heard",
        "leg.agent": "agent",
        "leg.caller": "caller",
        "leg.none": "none",
        "role.supervisor": "supervisor",
        "role.admin": "administrator",
        "role.auditor": "auditor",
        "role.agent": "agent",
        "role.listener": "listener",
        "cp.heading": "Signed checkpoint",
        "cp.text": (
            "Read from the log <b>{origin}</b> at tree size <b>{size}</b>{signed}. "
            "Root hash (base64, the third line of the checkpoint):"
        ),
        "cp.signed": ", checkpoint signed {at}",
        "cp.note": "The checkpoint (c2sp.org/signed-note):",
        "cp.key": "Verifier key (compare it with the key the operator publishes):",
        "page": "Page {page}",
    },
    "de": {
        "title": "Mithören bei den Gesprächen von {agent}",
        "intro": (
            "Diese Aufstellung nennt jeden Mithör-Vorgang bei den Gesprächen von {agent}, den "
            "das Mithör-Protokoll für den Zeitraum enthält (Auskunftsrecht, Art. 15 DSGVO). "
            "Jeder Vorgang ist ein Eintrag in einem signierten, nur fortschreibbaren Protokoll. "
            "Der maschinenlesbare Export (JSON Lines) desselben Zeitraums enthält Nachweise, die "
            "jede Person offline mit <font face='Courier'>live audit verify-bundle</font> und "
            "dem unten stehenden Prüfschlüssel prüfen kann."
        ),
        "period": "Zeitraum",
        "all": "alle Einträge",
        "generated": "Erstellt",
        "zone": "Zeiten in",
        "shown": "Mithörende Person angezeigt als",
        "shown.names": "Name",
        "shown.roles": "Rolle",
        "summary": "{count} Mithör-Vorgänge, insgesamt {duration}.",
        "none": "In diesem Zeitraum hat niemand bei diesen Gesprächen mitgehört.",
        "col.date": "Datum",
        "col.time": "Uhrzeit",
        "col.duration": "Dauer",
        "col.legs": "Gehörte Seiten",
        "col.purpose": "Zweck",
        "col.listener": "Mithörende Person",
        "col.policy": "Richtlinie",
        "col.entry": "Eintrag",
        "running": "läuft",
        "attempt": "Versuch, nichts gehört",
        "leg.agent": "Agent/in",
        "leg.caller": "Anrufer/in",
        "leg.none": "keine",
        "role.supervisor": "Teamleitung",
        "role.admin": "Administrator/in",
        "role.auditor": "Prüfer/in",
        "role.agent": "Agent/in",
        "role.listener": "mithörende Person",
        "purpose.quality": "Qualität",
        "purpose.training": "Schulung",
        "purpose.coaching": "Coaching",
        "purpose.complaint": "Beschwerde",
        "cp.heading": "Signierter Prüfpunkt",
        "cp.text": (
            "Gelesen aus dem Protokoll <b>{origin}</b> bei Baumgröße <b>{size}</b>{signed}. "
            "Wurzel-Hash (Base64, die dritte Zeile des Prüfpunkts):"
        ),
        "cp.signed": ", Prüfpunkt signiert {at}",
        "cp.note": "Der Prüfpunkt (c2sp.org/signed-note):",
        "cp.key": "Prüfschlüssel (mit dem vom Betreiber veröffentlichten Schlüssel vergleichen):",
        "page": "Seite {page}",
    },
}


def check_language(lang: str | None) -> str:
    """``en`` (default) or ``de``; ``BadRequest`` (``bad_lang``) otherwise."""
    value = (lang or "en").strip().lower()
    if value not in LANGUAGES:
        raise BadRequest(f"language must be one of {', '.join(LANGUAGES)}", code="bad_lang")
    return value


class Words:
    """The strings of one language; English where a translation is missing."""

    def __init__(self, table: Mapping[str, Mapping[str, str]], lang: str) -> None:
        self._own = table.get(lang, {})
        self._en = table["en"]
        self.lang = lang

    def __call__(self, key: str, **params: object) -> str:
        text = self._own.get(key, self._en.get(key, key))
        return text.format(**params) if params else text

    def label(self, prefix: str, value: str | None, default: str = "-") -> str:
        """A translated id (``purpose.quality``), else the id itself."""
        if not value:
            return default
        return self._own.get(f"{prefix}.{value}", self._en.get(f"{prefix}.{value}", value))


def disclosure_pdf(disclosure: Disclosure, zone: ZoneInfo, lang: str = "en") -> bytes:
    """The disclosure as an A4 PDF: title, period, generation time, one table row per
    session, the checkpoint and the verifier key."""
    w = Words(STRINGS, lang)
    styles = pdf_styles()
    agent = escape(disclosure.agent_id)
    period = (
        w("all")
        if disclosure.since is None and disclosure.until is None
        else f"{_day(disclosure.since, zone) or '…'} – {_until_day(disclosure.until, zone) or '…'}"
    )
    facts = [
        (w("period"), period),
        (w("generated"), stamp(disclosure.generated_at, zone)),
        (w("zone"), zone.key),
        (w("shown"), w("shown.names" if disclosure.listener_names else "shown.roles")),
    ]
    story: list[Flowable] = [
        Paragraph(w("title", agent=agent), styles["Title"]),
        facts_table(facts, styles),
        Spacer(1, 4 * mm),
        Paragraph(w("intro", agent=agent), styles["Body"]),
        Spacer(1, 3 * mm),
    ]
    rows = disclosure.rows
    if rows:
        total = sum(r.record.duration_s or 0.0 for r in rows if not r.record.attempt)
        story.append(
            Paragraph(
                w("summary", count=len(rows), duration=format_duration(total)), styles["Body"]
            )
        )
        story.append(Spacer(1, 2 * mm))
        story.append(_sessions_table(rows, zone, w, styles))
    else:
        story.append(Paragraph(w("none"), styles["Body"]))
    story += checkpoint_flowables(disclosure.checkpoint, w, styles, zone)
    return render_pdf(
        story,
        title=w("title", agent=disclosure.agent_id),
        footer=f"live · {disclosure.agent_id} · {stamp(disclosure.generated_at, zone)}",
        words=w,
    )


def _until_day(until: float | None, zone: ZoneInfo) -> str:
    """The last day of a period whose end is exclusive."""
    return _day(until - 1, zone) if until is not None else ""


def _sessions_table(
    rows: Sequence[DisclosureRow], zone: ZoneInfo, w: Words, styles: Mapping[str, ParagraphStyle]
) -> Table:
    cell = styles["Cell"]
    header = [
        Paragraph(f"<b>{escape(w(k))}</b>", cell)
        for k in (
            "col.date",
            "col.time",
            "col.duration",
            "col.legs",
            "col.purpose",
            "col.listener",
            "col.policy",
            "col.entry",
        )
    ]
    data: list[list[Any]] = [header]
    for row in rows:
        r = row.record
        at = local(r.started_at, zone)
        legs = ", ".join(w.label("leg", leg) for leg in r.legs) if r.legs else w("leg.none")
        listener = w.label("role", row.listener) if row.listener_is_role else row.listener
        data.append(
            [
                at.strftime("%Y-%m-%d"),
                at.strftime("%H:%M:%S"),
                w("attempt")
                if r.attempt
                else w("running")
                if r.duration_s is None
                else duration_text(r),
                Paragraph(escape(legs), cell),
                Paragraph(escape(w.label("purpose", r.purpose)), cell),
                Paragraph(escape(listener), cell),
                Paragraph(escape(r.policy_version or "-"), cell),
                str(r.started_seq),
            ]
        )
    widths = [20 * mm, 15 * mm, 15 * mm, 25 * mm, 22 * mm, 30 * mm, 25 * mm, 17 * mm]
    return data_table(data, widths, numeric_columns=(2, 7))


# --------------------------------------------------------------------------- PDF pieces
# Shared with ``report``: one look for every document `live` hands to people.

ACCENT = colors.HexColor("#0b6e69")
MUTED = colors.HexColor("#5a6775")
STRIPE = colors.HexColor("#f0f3f6")


def pdf_styles() -> dict[str, ParagraphStyle]:
    base = getSampleStyleSheet()
    return {
        "Title": ParagraphStyle(
            "LiveTitle",
            parent=base["Title"],
            fontSize=17,
            leading=21,
            alignment=0,
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
        "Cell": ParagraphStyle("LiveCell", parent=base["BodyText"], fontSize=8.5, leading=10.5),
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


def stamp(at: float, zone: ZoneInfo) -> str:
    """``YYYY-MM-DD HH:MM:SS <zone>`` for people."""
    return local(at, zone).strftime("%Y-%m-%d %H:%M:%S ") + (local(at, zone).tzname() or zone.key)


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


def data_table(
    data: list[list[Any]], widths: Sequence[float], *, numeric_columns: Sequence[int] = ()
) -> Table:
    """A table with a repeated header row, zebra stripes and right-aligned numbers."""
    table = Table(data, colWidths=list(widths), repeatRows=1, hAlign="LEFT")
    style = [
        ("FONT", (0, 0), (-1, -1), "Helvetica", 8.5),
        ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#e3eefb")),
        ("LINEBELOW", (0, 0), (-1, 0), 0.8, ACCENT),
        ("LINEBELOW", (0, -1), (-1, -1), 0.5, MUTED),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("TOPPADDING", (0, 0), (-1, -1), 2.5),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 2.5),
    ]
    for index in range(2, len(data), 2):
        style.append(("BACKGROUND", (0, index), (-1, index), STRIPE))
    for column in numeric_columns:
        style.append(("ALIGN", (column, 0), (column, -1), "RIGHT"))
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
