"""What a listen reads from the ledger before it starts: the listens a quota counts (the
policy's quotas, ``policy.quota``) and the earlier listen a new one resumes."""

from __future__ import annotations

from datetime import datetime

from ..audit import Ledger
from ..auth import Identity
from ..errors import BadRequest
from ..model import CallInfo
from ..policy import Policy, StartedListen, month_bounds
from ..types import EndReason


async def started_listens(ledger: Ledger, policy: Policy, now: datetime) -> list[StartedListen]:
    """The listens started this month (as ``policy``'s time zone counts), from a day early."""
    start, _end = month_bounds(now, policy)
    # A local day may begin before the local month in UTC terms: read from a day early.
    # The store reads only this window (index on kind, at), not the whole history.
    since = start.timestamp() - 86400
    entries = await ledger.entries(kind="listen.started", since=since)
    # A session that never connected was an attempt, not a listen: it counts against no
    # quota. Its end follows its start, so the same window holds it.
    failed = {
        e.fields.get("session_id")
        for e in await ledger.entries(kind="listen.ended", since=since)
        if e.fields.get("reason") == EndReason.SETUP_FAILED.value
    }
    return [
        StartedListen(
            str(e.fields.get("agent_id", "")),
            str(e.fields.get("user_id") or e.actor),
            float(e.fields.get("started_at", e.at)),
        )
        for e in entries
        if e.fields.get("session_id") not in failed
    ]


async def check_resumes(ledger: Ledger, actor: Identity, call: CallInfo, resumes: str) -> None:
    """A listen may resume only an earlier listen of the same person to the same call."""
    entries = await ledger.entries(session_id=resumes)
    started = next((e for e in entries if e.kind == "listen.started"), None)
    if (
        started is None
        or str(started.fields.get("user_id") or started.actor) != actor.user_id
        or started.fields.get("call_id") != call.call_id
    ):
        raise BadRequest("resumes must name an earlier listen of yours to this call", code="bad_resumes")
