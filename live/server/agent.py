"""The agent's side: the live monitoring indicator, notices, and their listen history.

Agent identity: ``Identity.user_id`` is the ``agent_id`` telephony reports for their calls.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiohttp import WSCloseCode, web

from ..l10n import LANGUAGES, language_from_header
from ..notices import localised
from ..policy import Policy, RoleOf, shown_listener
from ..reports.service import People
from ..types import EndReason, Role
from .api import RECHECK_S, _drain_client, guard
from .bodies import answer
from .route import Param, Reply, Route, path_param, roles
from .schemas import AgentHistory, HistoryRow, Notice, NoticeAnswer, Notices
from .security import check_origin, require
from .state import STATE

log = logging.getLogger(__name__)


def _reader_language(request: web.Request) -> str:
    """The agent's language, as their page picks it: ``?lang=`` when given, else the
    browser's ``Accept-Language`` (what ``navigator.language`` reflects)."""
    asked = request.query.get("lang", "").strip().lower()[:2]
    if asked in LANGUAGES:
        return asked
    return language_from_header(request.headers.get("Accept-Language"))


async def agent_events(request: web.Request) -> web.WebSocketResponse:
    """``{"type":"monitoring","active":…,"listeners":[…]}`` at once and on every change, and
    ``{"type":"notice","notice":{…}}`` for each new notice (which counts as delivered)."""
    identity = require(request, (Role.AGENT,))
    board = request.app[STATE].node.notices
    lang = _reader_language(request)
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
            await ws.send_json(localised(getter.result(), lang))
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
    lang = _reader_language(request)
    return answer(Notices(notices=[Notice.model_validate(n.to_json(lang)) for n in notices]))


async def notice_seen(request: web.Request) -> web.Response:
    identity = require(request, (Role.AGENT,))
    notice = await request.app[STATE].node.notices.seen(identity.user_id, request.match_info["notice_id"])
    return answer(NoticeAnswer(notice=Notice.model_validate(notice.to_json(_reader_language(request)))))


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _history_row(
    started: dict[str, Any], ended: dict[str, Any] | None, policy: Policy, role_of: RoleOf
) -> HistoryRow:
    # What the policy lets agents see of the listener: the name, or only the role.
    shown = shown_listener(
        names=policy.listener_names,
        display_name=_text(started.get("display_name")),
        user_id=_text(started.get("user_id")),
        role=_text(started.get("role")),
        role_of=role_of,
    )
    return HistoryRow(
        session_id=started.get("session_id"),
        call_id=started.get("call_id"),
        started_at=started.get("started_at"),
        ended_at=ended.get("ended_at") if ended else None,
        # A listen cut by a crash ended at an unknowable moment between these two.
        ended_after=ended.get("ended_after") if ended else None,
        ended_before=ended.get("ended_before") if ended else None,
        duration_s=ended.get("duration_s") if ended else None,
        purpose=started.get("purpose"),
        legs=started.get("legs"),
        listener=shown.text,
        listener_is_role=shown.is_role,
        policy_version=started.get("policy_version"),
        end_reason=ended.get("reason") if ended else None,
        heard_s=ended.get("heard_s") if ended else None,
        # An attempt: the listener's browser never connected, so nothing was heard.
        attempt=bool(ended and ended.get("reason") == EndReason.SETUP_FAILED.value),
    )


async def history(request: web.Request) -> web.Response:
    """The agent's listen sessions from the ledger, newest first."""
    identity = require(request, (Role.AGENT,))
    node = request.app[STATE].node
    entries = await node.ledger.entries(agent_id=identity.user_id)
    ended = {e.fields.get("session_id"): e.fields for e in entries if e.kind == "listen.ended"}
    policy = node.policy.current()
    role_of = People.of(request.app[STATE].users.list).role_of
    rows = [
        _history_row(e.fields, ended.get(e.fields.get("session_id")), policy, role_of)
        for e in entries
        if e.kind == "listen.started"
    ]
    rows.reverse()
    return answer(AgentHistory(agent_id=identity.user_id, listens=rows))


AGENTS = roles(Role.AGENT)
READER_LANG = Param(
    "lang", "Language of the notices' `text` (default: the browser's `Accept-Language`).", {"enum": ["en", "de"]}
)

ROUTES = (
    Route(
        method="GET",
        path="/api/agent/events",
        handler=agent_events,
        rule=roles(Role.AGENT, websocket=True),
        operation_id="agentEvents",
        summary="The agent's monitoring indicator and notices, live.",
        tag="agents",
        description="Server to client: `{\"type\":\"monitoring\",\"active\":bool,\"listeners\":[string],"
        "\"listening\":[{\"listener\":string,\"purpose\":string}]}` at "
        "once and on every change, `{\"type\":\"notice\",\"notice\":Notice}` for each new notice "
        "(which counts as delivered), `{\"type\":\"pong\"}` for a ping.\n\n"
        "Client to server: only `\"ping\"` or `{\"type\":\"ping\"}`; anything else closes with "
        "4400. Closes with 4401 / 4403 when the session ends or the role no longer allows it.",
        checks=(check_origin,),
        messages={"ping": (Role.AGENT,)},
    ),
    Route(
        method="GET",
        path="/api/agent/history",
        handler=history,
        rule=AGENTS,
        operation_id="agentHistory",
        summary="The agent's listen sessions, newest first.",
        tag="agents",
        replies=(Reply(200, "OK", AgentHistory),),
    ),
    Route(
        method="GET",
        path="/api/notices",
        handler=list_notices,
        rule=AGENTS,
        operation_id="listNotices",
        summary="The agent's notices (listing delivers them).",
        tag="agents",
        params=(READER_LANG,),
        replies=(Reply(200, "OK", Notices),),
    ),
    Route(
        method="POST",
        path="/api/notices/{notice_id}/seen",
        handler=notice_seen,
        rule=AGENTS,
        operation_id="noticeSeen",
        summary="Mark a notice seen.",
        tag="agents",
        description="404 `unknown_notice`, 403 `not_your_notice`.",
        params=(path_param("notice_id", "The notice's id."), READER_LANG),
        replies=(Reply(200, "OK", NoticeAnswer),),
        errors=(404,),
    ),
)
