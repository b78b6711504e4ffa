"""``GET /api/audit/entries``: every ledger entry, of every kind, newest first, one page at
a time (auditors and admins).

Query: ``kind`` (one of ``live.audit.events.EVENT_KINDS``), ``actor`` (the actor's user id,
a personal detail: entries whose details were erased no longer match it; ``system`` matches
what the server wrote on its own), ``agent``, ``from``/``to``/``tz`` (as for sessions),
``limit`` (1-500, default 100) and ``before`` (a sequence number: only entries below it).

The answer is ``{"entries": [...], "next_before": seq | null, "tree_size": n, "kinds": [...]}``;
pass ``next_before`` as ``before`` for the next (older) page; ``null`` means there is none.
Bad parameters are 400 ``bad_kind``, ``bad_limit``, ``bad_seq``, ``bad_date``,
``bad_timezone``.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from ..audit.entry import LedgerEntry
from ..audit.events import EVENT_KINDS
from ..errors import BadRequest
from ..reports.periods import PeriodError, local, parse_period, zone_named
from .audit import _bad_request, _int, _ledger
from .bodies import answer
from .route import AUDITORS, Param, Reply, Route, roles
from .schemas_audit import Entries, LedgerEntryView
from .security import require

PAGE_DEFAULT = 100
PAGE_MAX = 500
WINDOW = 2000
"""Sequence numbers read per query while a page is filled (the actor is matched here, not
in the store, because it is a personal detail stored beside the leaf)."""


def entry_view(entry: LedgerEntry, zone: Any) -> LedgerEntryView:
    """One entry for the page: its leaf's place and kind, who acted, and every field still
    held (personal details included until retention erases them)."""
    agent = entry.public_fields.get("agent_id")
    return LedgerEntryView(
        seq=entry.seq,
        kind=entry.kind,
        at=entry.at,
        at_local=local(entry.at, zone).isoformat(),
        actor=entry.actor,
        agent_id=agent if isinstance(agent, str) else None,
        details_erased=entry.details_erased,
        fields=dict(entry.fields),
    )


async def entries(request: web.Request) -> web.Response:
    require(request, AUDITORS)
    query = request.query
    kind = query.get("kind", "").strip() or None
    if kind is not None and kind not in EVENT_KINDS:
        raise BadRequest(
            f"kind must be one of {', '.join(sorted(EVENT_KINDS))}", code="bad_kind"
        )
    actor = query.get("actor", "").strip() or None
    agent = query.get("agent", "").strip() or None
    try:
        zone = zone_named(query.get("tz") or None)
        since, until = parse_period(query.get("from") or None, query.get("to") or None, zone)
    except PeriodError as exc:
        raise _bad_request(exc) from exc
    limit = _int(query, "limit", "bad_limit", required=False)
    if limit is None:
        limit = PAGE_DEFAULT
    if not 1 <= limit <= PAGE_MAX:
        raise BadRequest(f"limit must be between 1 and {PAGE_MAX}", code="bad_limit")
    before = _int(query, "before", "bad_seq", required=False)
    ledger = _ledger(request)
    size, _ = await ledger.head()
    stop = size if before is None else min(before, size)
    found: list[LedgerEntry] = []
    while stop > 0 and len(found) < limit:
        start = max(0, stop - WINDOW)
        batch = await ledger.entries(
            kind=kind, agent_id=agent, since=since, until=until, start=start, stop=stop
        )
        for entry in reversed(batch):
            if actor is None or entry.actor == actor:
                found.append(entry)
                if len(found) == limit:
                    break
        stop = start
    more = len(found) == limit and found[-1].seq > 0
    return answer(
        Entries(
            entries=[entry_view(e, zone) for e in found],
            next_before=found[-1].seq if more else None,
            tree_size=size,
            kinds=sorted(EVENT_KINDS),
            timezone=zone.key,
        )
    )


ROUTES = (
    Route(
        method="GET",
        path="/api/audit/entries",
        handler=entries,
        rule=roles(*AUDITORS),
        operation_id="auditEntries",
        summary="Every ledger entry, of every kind, newest first, a page at a time.",
        tag="audit",
        description="400 `bad_kind`, `bad_limit`, `bad_seq`, `bad_date`, `bad_timezone`.",
        params=(
            Param("kind", "Only entries of this kind."),
            Param("actor", "Only this actor's (user id, or `system`; erased details no longer match)."),
            Param("agent", "Only entries about this agent."),
            Param("from", "Start date `YYYY-MM-DD` or ISO 8601 date-time (in `tz` unless it names a zone)."),
            Param("to", "End date (inclusive) or date-time."),
            Param("tz", "IANA time zone (default UTC)."),
            Param("limit", f"Entries per page, 1-{PAGE_MAX} (default {PAGE_DEFAULT}).", {"type": "string", "pattern": "^[0-9]{1,18}$"}),
            Param("before", "Only entries below this sequence number.", {"type": "string", "pattern": "^[0-9]{1,18}$"}),
        ),
        replies=(Reply(200, "OK", Entries),),
        errors=(400, 503),
    ),
)
