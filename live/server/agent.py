"""The agent's side: the live monitoring indicator, notices, and their listen history.

Agent identity: ``Identity.user_id`` is the ``agent_id`` telephony reports for their calls.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiohttp import WSCloseCode, web

from ..policy import Policy
from ..types import EndReason, Role
from .api import RECHECK_S, _drain_client, guard
from .security import check_origin, require
from .state import STATE

log = logging.getLogger(__name__)


async def agent_events(request: web.Request) -> web.WebSocketResponse:
    """``{"type":"monitoring","active":…,"listeners":[…]}`` at once and on every change, and
    ``{"type":"notice","notice":{…}}`` for each new notice (which counts as delivered)."""
    identity = require(request, (Role.AGENT,))
    check_origin(request)
    board = request.app[STATE].node.notices
    ws = web.WebSocketResponse(heartbeat=20, max_msg_size=4096)
    await ws.prepare(request)
    queue, unsubscribe = board.subscribe(identity.user_id)
    reader = asyncio.create_task(_drain_client(ws, request), name="agent-events-reader")
    try:
        await ws.send_json(board.monitoring_event(identity.user_id))
        while not ws.closed and not reader.done():
            getter = asyncio.ensure_future(queue.get())
            done, _ = await asyncio.wait({getter, reader}, timeout=RECHECK_S, return_when=asyncio.FIRST_COMPLETED)
            if not await guard(request, ws, (Role.AGENT,)):
                getter.cancel()
                break
            if not done:
                getter.cancel()
                continue
            if getter not in done:
                getter.cancel()
                break
            await ws.send_json(getter.result())
    except (ConnectionResetError, asyncio.CancelledError):
        pass
    finally:
        unsubscribe()
        reader.cancel()
        if not ws.closed:
            await ws.close(code=WSCloseCode.GOING_AWAY, message=b"server shutting down")
    return ws


async def list_notices(request: web.Request) -> web.Response:
    """The agent's own notices (listing them delivers them: ``notice.delivered``)."""
    identity = require(request, (Role.AGENT,))
    notices = await request.app[STATE].node.notices.notices_for(identity.user_id)
    return web.json_response({"notices": [n.to_json() for n in notices]})


async def notice_seen(request: web.Request) -> web.Response:
    identity = require(request, (Role.AGENT,))
    notice = await request.app[STATE].node.notices.seen(identity.user_id, request.match_info["notice_id"])
    return web.json_response({"notice": notice.to_json()})


def _history_row(started: dict[str, Any], ended: dict[str, Any] | None, policy: Policy) -> dict[str, Any]:
    name = started.get("display_name") or started.get("user_id")
    return {
        "session_id": started.get("session_id"),
        "call_id": started.get("call_id"),
        "started_at": started.get("started_at"),
        "ended_at": ended.get("ended_at") if ended else None,
        # A listen cut by a crash ended at an unknowable moment between these two.
        "ended_after": ended.get("ended_after") if ended else None,
        "ended_before": ended.get("ended_before") if ended else None,
        "duration_s": ended.get("duration_s") if ended else None,
        "purpose": started.get("purpose"),
        "legs": started.get("legs"),
        # What the policy lets agents see of the listener: the name, or only the role.
        "listener": name if policy.listener_names and name else "supervisor",
        "policy_version": started.get("policy_version"),
        "end_reason": ended.get("reason") if ended else None,
        "heard_s": ended.get("heard_s") if ended else None,
        # An attempt: the listener's browser never connected, so nothing was heard.
        "attempt": bool(ended and ended.get("reason") == EndReason.SETUP_FAILED.value),
    }


async def history(request: web.Request) -> web.Response:
    """The agent's listen sessions from the ledger, newest first."""
    identity = require(request, (Role.AGENT,))
    node = request.app[STATE].node
    entries = await node.ledger.entries(agent_id=identity.user_id)
    ended = {e.fields.get("session_id"): e.fields for e in entries if e.kind == "listen.ended"}
    rows = [
        _history_row(e.fields, ended.get(e.fields.get("session_id")), node.policy.current())
        for e in entries
        if e.kind == "listen.started"
    ]
    rows.reverse()
    return web.json_response({"agent_id": identity.user_id, "listens": rows})


def setup(app: web.Application) -> None:
    app.router.add_get("/api/agent/events", agent_events)
    app.router.add_get("/api/agent/history", history)
    app.router.add_get("/api/notices", list_notices)
    app.router.add_post("/api/notices/{notice_id}/seen", notice_seen)
