"""The audit service: exports and reports, made once for the HTTP API and the command line.

Every export (an agent's listens as a bundle, CSV or PDF) and every works-council report is
put on record (``export.made``) before it is handed out: if that entry cannot be written
(``LedgerUnavailable``), there is no document. Who may ask for what is decided by the
caller (``live.server.audit`` for each request, the command line for its operator); this
service does the work and keeps the record.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from ..audit.export import MEDIA_TYPE, export_bundle, verify_bundle
from ..audit.log import MerkleLedger
from ..errors import LiveError
from ..policy.listener import RoleOf
from ..types import new_id
from .csvfiles import disclosure_csv, report_csv
from .disclosure import collect_disclosure
from .disclosure_pdf import disclosure_pdf
from .monthly import MonthReport, collect_report
from .periods import Month
from .report_pdf import report_pdf

EXPORT_FORMATS = ("jsonl", "csv", "pdf")
REPORT_FORMATS = ("pdf", "csv")
MEDIA_TYPES = {"jsonl": MEDIA_TYPE, "csv": "text/csv", "pdf": "application/pdf"}


class FormatError(LiveError):
    """A document format the service does not make (a request error)."""

    code = "bad_format"


class Person(Protocol):
    """What the service reads of a user (``live.auth.User`` fits)."""

    @property
    def user_id(self) -> str: ...

    @property
    def display_name(self) -> str: ...

    @property
    def role(self) -> Any: ...


@dataclass(frozen=True, slots=True)
class People:
    """Look-ups in the user store: a listener's role (when the policy shows roles only and
    the entry recorded none) and an agent's display name (the documents' titles)."""

    role_of: RoleOf
    name_of: Callable[[str], str | None]

    @classmethod
    def of(cls, users: Callable[[], Iterable[Person]]) -> People:
        """From a function listing the users now (``UserStore.list``)."""

        def find(user_id: str) -> Person | None:
            return next((u for u in users() if u.user_id == user_id), None)

        def role_of(user_id: str) -> str | None:
            user = find(user_id)
            return str(getattr(user.role, "value", user.role)) if user is not None else None

        def name_of(user_id: str) -> str | None:
            user = find(user_id)
            return user.display_name if user is not None and user.display_name else None

        return cls(role_of, name_of)

    @classmethod
    def nobody(cls) -> People:
        return cls(lambda _: None, lambda _: None)


@dataclass(frozen=True, slots=True)
class Requester:
    """Who asked: recorded with ``export.made`` (the actor is a personal detail)."""

    actor: str
    role: str


@dataclass(frozen=True, slots=True)
class ExportRequest:
    agent_id: str
    format: str
    zone: ZoneInfo
    lang: str = "en"
    since: float | None = None
    until: float | None = None
    listener_names: bool = False
    """Show listeners by name (else by role) in CSV and PDF."""
    include_details: bool = False
    """A bundle (``jsonl``) with every personal field: for auditors who asked for names."""


@dataclass(frozen=True, slots=True)
class ReportRequest:
    month: Month
    format: str
    lang: str = "en"
    team_map: Mapping[str, str] = field(default_factory=dict)
    team_source: str = "recorded"


@dataclass(frozen=True, slots=True)
class Document:
    """A document ready to hand out, and what ``export.made`` recorded of it."""

    body: bytes
    format: str
    name: str
    """A file name without extension (``live-listens-agent-1``)."""
    entries: int
    tree_size: int
    recorded_seq: int

    @property
    def media_type(self) -> str:
        return MEDIA_TYPES[self.format]

    @property
    def filename(self) -> str:
        return f"{self.name}.{self.format}"


class AuditService:
    """Exports and reports from one ledger."""

    def __init__(
        self, ledger: MerkleLedger, people: People, clock: Callable[[], float] = time.time
    ) -> None:
        self.ledger = ledger
        self.people = people
        self.clock = clock

    async def export(self, request: ExportRequest, by: Requester) -> Document:
        """One agent's listen sessions as a verifiable bundle (``jsonl``) or for people
        (``csv``, ``pdf``), recorded before it is returned."""
        if request.format not in EXPORT_FORMATS:
            raise FormatError(f"format must be one of {', '.join(EXPORT_FORMATS)}")
        now = self.clock()
        body: str | bytes
        if request.format == "jsonl":
            body = await export_bundle(
                self.ledger,
                agent_id=request.agent_id,
                since=request.since,
                until=request.until,
                include_details=request.include_details,
            )
            checked = verify_bundle(body, self.ledger.verifier_key())
            count, size = len(checked.entries), checked.tree_size
        else:
            disclosure = await collect_disclosure(
                self.ledger,
                request.agent_id,
                since=request.since,
                until=request.until,
                listener_names=request.listener_names,
                role_of=self.people.role_of,
                generated_at=now,
                agent_name=self.people.name_of(request.agent_id),
            )
            if request.format == "csv":
                body = disclosure_csv(disclosure, request.zone)
            else:
                body = await asyncio.to_thread(
                    disclosure_pdf, disclosure, request.zone, request.lang
                )
            count, size = len(disclosure.rows), disclosure.checkpoint.size
        seq = await self._record(
            by,
            format=request.format,
            scope="agent",
            agent_id=request.agent_id,
            entries=count,
            tree_size=size,
            since=request.since,
            until=request.until,
            at=now,
        )
        return Document(_bytes(body), request.format, f"live-listens-{request.agent_id}", count, size, seq)

    async def report(self, request: ReportRequest, by: Requester) -> Document:
        """The works-council report of one month (``pdf`` or ``csv``), recorded before it
        is returned."""
        document, _ = await self.report_with_figures(request, by)
        return document

    async def report_with_figures(
        self, request: ReportRequest, by: Requester
    ) -> tuple[Document, MonthReport]:
        """``report``, and the figures it shows."""
        if request.format not in REPORT_FORMATS:
            raise FormatError(f"format must be one of {', '.join(REPORT_FORMATS)}")
        now = self.clock()
        month = request.month
        figures = await collect_report(
            self.ledger,
            month,
            team_map=request.team_map,
            team_source=request.team_source,
            generated_at=now,
        )
        body: str | bytes = (
            report_csv(figures)
            if request.format == "csv"
            else await asyncio.to_thread(report_pdf, figures, request.lang)
        )
        seq = await self._record(
            by,
            format=request.format,
            scope="team-report",
            entries=figures.entries,
            tree_size=figures.checkpoint.size,
            since=month.since,
            until=month.until,
            at=now,
        )
        document = Document(
            _bytes(body),
            request.format,
            f"live-report-{month.label}",
            figures.entries,
            figures.checkpoint.size,
            seq,
        )
        return document, figures

    async def _record(
        self,
        by: Requester,
        *,
        format: str,
        scope: str,
        entries: int,
        tree_size: int,
        at: float,
        agent_id: str | None = None,
        since: float | None = None,
        until: float | None = None,
    ) -> int:
        """Append the ``export.made`` entry; returns its seq (``LedgerUnavailable`` if it
        cannot be written: then the document must not be handed out)."""
        fields: dict[str, Any] = {
            "export_id": new_id("ex"),
            "format": format,
            "scope": scope,
            "agent_id": agent_id,
            "entries": entries,
            "tree_size": tree_size,
            "since": since,
            "until": until,
            "role": by.role,
        }
        return await self.ledger.append(
            "export.made",
            actor=by.actor,
            at=at,
            **{k: v for k, v in fields.items() if v is not None},
        )


def _bytes(body: str | bytes) -> bytes:
    return body.encode("utf-8") if isinstance(body, str) else body
