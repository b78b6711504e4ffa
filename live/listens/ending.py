"""The single end path of a listen session, once it is marked ended (architecture decision 4:
every way a session ends appends ``listen.ended`` with what was heard)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from ..audit.spool import LedgerSpool
from ..bus import CallBus
from ..errors import LiveError
from ..model import ListenEnded
from ..notices import NoticeBoard
from ..notices.board import OwedNotice
from ..notices.store import Notice
from ..types import EndReason, NodeId
from .session import ListenSession, heard_fields

log = logging.getLogger(__name__)


async def record_end(
    session: ListenSession,
    reason: EndReason,
    *,
    node_id: NodeId,
    spool: LedgerSpool,
    notices: NoticeBoard,
    bus: CallBus,
    kept: Callable[[], object],
) -> None:
    """Detach the listener, append ``listen.ended`` (through the spool), give the agent's
    notice, clear the proof of life once both are kept, announce the end, close the peer.

    ``kept`` is called once the end is kept (ledger or spool), before the notice: the
    session is served until then, so whoever sees it gone finds the end on record."""
    for leg, queue in session.queues.items():
        session.media.leg(leg).detach(queue)
    ended_at = time.time()
    heard = heard_fields(session.queues)
    try:  # a session ended before its first proof of life: the row that owes the notice
        await spool.alive(node_id, ended_at, [session.session_id])
    except LiveError as exc:
        log.warning("could not keep the proof of life of %s: %s", session.session_id, exc.message)
    try:
        await spool.append(
            "listen.ended",
            actor=session.actor.user_id if reason is EndReason.STOPPED else "system",
            at=ended_at,
            session_id=session.session_id,
            call_id=session.call_id,
            agent_id=session.agent_id,
            reason=reason.value,
            ended_at=ended_at,
            duration_s=round(ended_at - session.started_at, 3),
            dropped_packets=session.dropped,
            **heard,
        )
    except LiveError as exc:
        # Neither the ledger nor the spool took it: the start is on record, and the next
        # start closes it as node-lost, between its last proof of life and the restart.
        log.error("could not record the end of listen %s: %s", session.session_id, exc.message)
        recorded = False
    else:
        recorded = True
    # Served here until its end is kept (ledger or spool): whoever sees the session gone
    # finds the end on record.
    kept()

    async def noticed(notice: Notice | None) -> None:
        if recorded:
            # Only now: a crash between the end and its notice leaves the proof of life, and
            # the next start gives the notice of the ended session (``recovery``).
            try:
                await spool.gone(session.session_id)
            except LiveError as exc:
                log.warning("could not clear the proof of life of %s: %s", session.session_id, exc.message)

    arguments = _notice_arguments(session, reason, ended_at, heard["heard_s"])
    notice_id: str | None = None
    try:
        notice = await notices.listen_ended(**arguments)
    except LiveError as exc:
        # The notice store (the shared database) is down: the board tries again while the
        # node runs; the agent gets the notice once it is back, never not at all.
        log.error("could not give notice of listen %s yet: %s", session.session_id, exc.message)
        notices.owe(OwedNotice(arguments, noticed))
    else:
        notice_id = None if notice is None else notice.notice_id
        await noticed(notice)
    try:
        await bus.publish(
            ListenEnded(
                session.call_id,
                session.session_id,
                reason.value,
                ended_at,
                agent_id=session.agent_id,
                node_id=node_id,
                notice_id=notice_id,
            )
        )
    except LiveError:
        log.error("could not announce the end of listen %s", session.session_id)
    await session.peer.close(reason)


def _notice_arguments(
    session: ListenSession, reason: EndReason, ended_at: float, heard_s: float | None
) -> dict[str, Any]:
    """What ``NoticeBoard.listen_ended`` needs to give the agent the notice of an ended
    session (the other nodes show the notice to the agent's pages they serve)."""
    return {
        "agent_id": session.agent_id,
        "session_id": session.session_id,
        "call_id": session.call_id,
        "mode": session.notice_mode,
        "item": {
            "purpose": session.purpose,
            "listener": session.label,
            "started_at": session.started_at,
            "ended_at": ended_at,
            "call_started_at": session.call_started_at,
            "duration_s": round(ended_at - session.started_at, 3),
            "policy_version": session.policy_version,
            "reason": reason.value,
            "heard_s": heard_s,
        },
    }
