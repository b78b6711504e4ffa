"""At start: close what a crash left open (architecture decision 10).

The spool's entries are written first (true ends win over ``node-lost``); then every session
this node left open is closed between its last proof of life and now, and the agent gets the
notice of each; a session that ended before the crash but without its notice gets it now.
"""

from __future__ import annotations

import logging

from ..audit import Ledger
from ..audit.spool import LedgerSpool
from ..errors import LedgerUnavailable, LiveError
from ..notices import NoticeBoard
from ..policy import Policy, shown_listener
from ..types import NodeId

log = logging.getLogger(__name__)


async def recover(
    *,
    node_id: NodeId,
    now: float,
    ledger: Ledger,
    spool: LedgerSpool,
    notices: NoticeBoard,
    policy: Policy,
) -> None:
    """Write what the spool kept, close the sessions a crash left open, give their notices."""
    try:
        replayed = await spool.replay()
    except LedgerUnavailable as exc:
        replayed = []
        log.error("spooled ledger entries still wait: %s", exc.message)
    if replayed:
        log.warning("wrote %d ledger entries kept in the spool", len(replayed))
    alive = await spool.last_alive(node_id)
    recovered = await ledger.recover(node_id, now, alive=alive, skip=await spool.pending_sessions())
    if recovered:
        log.warning("closed %d listen sessions left open by a crash", len(recovered))
    for session_id in recovered:
        await notice_recovered(session_id, ledger, notices, policy)
    for session_id in alive:
        # Ended before the crash but possibly without its notice (the proof of life is
        # cleared only once both the end and the notice are kept): give it now, once.
        if session_id in recovered:
            continue
        try:
            owed = not await notices.store.has_session(session_id)
        except LiveError as exc:
            log.error("could not look up the notice of listen %s: %s", session_id, exc.message)
            continue
        if owed:
            await notice_recovered(session_id, ledger, notices, policy)
    for session_id in alive:
        await spool.gone(session_id)


async def notice_recovered(
    session_id: str, ledger: Ledger, notices: NoticeBoard, policy: Policy
) -> None:
    """The agent's notice of a session closed by ``recover``, from what the ledger knows."""
    entries = await ledger.entries(session_id=session_id)
    started = next((e for e in entries if e.kind == "listen.started"), None)
    ended = next((e for e in entries if e.kind == "listen.ended"), None)
    if started is None or ended is None:
        return
    f, e = started.fields, ended.fields
    label = shown_listener(
        names=policy.listener_names,
        display_name=str(f.get("display_name") or "") or None,
        user_id=str(f.get("user_id") or "") or None,
        role=str(f.get("role") or "") or None,
    ).text
    started_at = float(f.get("started_at") or started.at)
    mode = f.get("notice_mode")
    try:
        await notices.listen_ended(
            agent_id=str(f.get("agent_id") or ""),
            session_id=session_id,
            call_id=str(f.get("call_id") or ""),
            mode=mode if isinstance(mode, str) else None,
            item={
                "purpose": f.get("purpose"),
                "listener": label,
                "started_at": started_at,
                "ended_at": e.get("ended_at"),
                "ended_after": e.get("ended_after"),
                "ended_before": e.get("ended_before"),
                "call_started_at": started_at,  # the ledger does not keep the call's start
                "duration_s": e.get("duration_s"),
                "policy_version": f.get("policy_version"),
                "reason": e.get("reason"),
            },
        )
    except LiveError as exc:
        log.error("could not give notice of listen %s: %s", session_id, exc.message)
