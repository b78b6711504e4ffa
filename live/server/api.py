"""The supervisor-facing HTTP API and the roster WebSocket."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any

from aiohttp import WSCloseCode, web

from ..errors import BadRequest, LiveError, PayloadTooLarge
from ..model import (
    BusEvent,
    CallEnded,
    CallStarted,
    CallUpdated,
    ListenEnded,
    ListenStarted,
    call_to_json,
)
from ..policy import SetConsent, SetPci
from ..types import Consent, Role
from .access import WS_MESSAGES
from .roster_json import AgentDirectory
from .security import check_origin, require
from .state import STATE, ServerState

log = logging.getLogger(__name__)

MAX_JSON_BODY = 64 * 1024
EVENTS_QUEUE = 256
WS_TOO_SLOW = 4408
RECHECK_S = 5.0  # an idle socket re-checks its session this often
SUPERVISOR_ROLES = (Role.SUPERVISOR, Role.ADMIN)
# RFC 6455 §7.4.1 leaves 1012 to IANA: "Service Restart". The console reads it as "the server
# is restarting" and offers to resume an interrupted listen.
WS_SERVICE_RESTART = 1012
MAX_SESSION_ID = 64


class RosterSockets:
    """The open ``/api/events`` sockets, each by the event that tells it to send what it
    holds and close with 1012 (shutdown)."""

    def __init__(self) -> None:
        self.closing: set[asyncio.Event] = set()


EVENT_SOCKETS = web.AppKey("event_sockets", RosterSockets)


async def read_json(request: web.Request) -> dict[str, Any]:
    if request.content_length is not None and request.content_length > MAX_JSON_BODY:
        raise PayloadTooLarge(f"request body over {MAX_JSON_BODY} bytes")
    # read(n) returns what has arrived so far, not n bytes: read until the end of the body.
    raw = bytearray()
    while len(raw) <= MAX_JSON_BODY:
        chunk = await request.content.read(MAX_JSON_BODY + 1 - len(raw))
        if not chunk:
            break
        raw += chunk
    if len(raw) > MAX_JSON_BODY:
        raise PayloadTooLarge(f"request body over {MAX_JSON_BODY} bytes")
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError):  # RecursionError: deep nesting
        raise BadRequest("the body must be JSON", code="bad_json") from None
    if not isinstance(body, dict):
        raise BadRequest("the body must be a JSON object", code="bad_json")
    return body


def directory(state: ServerState) -> AgentDirectory:
    return AgentDirectory.read(state.users, state.monitor.policy)


def event_to_json(event: BusEvent, agents: AgentDirectory | None = None) -> dict[str, Any]:
    """An event as ``/api/events`` sends it; with ``agents``, calls carry ``agent_name``
    and ``team``."""
    if isinstance(event, (CallStarted, CallUpdated)):
        call = agents.call_json(event.call) if agents is not None else call_to_json(event.call)
        return {"type": event.kind, "call": call}
    if isinstance(event, CallEnded):
        return {"type": event.kind, "call_id": event.call_id}
    if isinstance(event, ListenStarted):
        listener = event.listener
        return {
            "type": event.kind,
            "call_id": event.call_id,
            "legs": list(event.legs),
            "listener": {
                "session_id": listener.session_id,
                "user_id": listener.user_id,
                "display_name": listener.display_name,
                "purpose": listener.purpose,
                "started_at": listener.started_at,
            },
        }
    assert isinstance(event, ListenEnded)
    return {
        "type": event.kind,
        "call_id": event.call_id,
        "session_id": event.session_id,
        "reason": event.reason,
    }


async def me(request: web.Request) -> web.Response:
    identity = require(request)
    state = request.app[STATE]
    body: dict[str, Any] = identity.to_json()
    policy = state.monitor.policy
    body["purposes"] = list(policy.purposes if policy is not None else state.settings.purposes)
    body["policy_version"] = policy.version if policy is not None else None
    body["listens_at_once"] = state.settings.limits.listens_per_supervisor
    body["ice_servers"] = [
        {k: v for k, v in (("urls", s.urls), ("username", s.username), ("credential", s.credential)) if v}
        for s in state.settings.ice_servers
    ]
    body["csrf_token"] = (
        state.sessions.csrf_token(identity.session_id) if identity.via == "session" else None
    )
    return web.json_response(body)


async def list_calls(request: web.Request) -> web.Response:
    identity = require(request, (Role.SUPERVISOR, Role.ADMIN))
    state = request.app[STATE]
    monitor = state.monitor
    agents = directory(state)
    calls = [agents.call_json(c) for c in monitor.calls() if monitor.may_view(identity, c)]
    return web.json_response({"calls": calls})


async def events(request: web.Request) -> web.WebSocketResponse:
    """Roster WebSocket: a snapshot at once, then every change, in order.

    Only calls the policy lets this person see (``ViewRosterCall``) and events about them.
    At shutdown the socket sends what it holds, then closes with 1012 (service restart)."""
    identity = require(request, (Role.SUPERVISOR, Role.ADMIN))
    check_origin(request)
    state = request.app[STATE]
    monitor = state.monitor
    ws = web.WebSocketResponse(heartbeat=20, max_msg_size=4096)
    await ws.prepare(request)
    queue: asyncio.Queue[BusEvent] = asyncio.Queue(EVENTS_QUEUE)
    overflow = asyncio.Event()

    def on_event(event: BusEvent) -> None:
        try:
            queue.put_nowait(event)
        except asyncio.QueueFull:
            overflow.set()

    unsubscribe = monitor.bus.subscribe(on_event)
    reader = asyncio.create_task(_drain_client(ws, request), name="events-reader")
    too_slow = asyncio.create_task(overflow.wait(), name="events-overflow")
    closing = asyncio.Event()
    request.app[EVENT_SOCKETS].closing.add(closing)
    shutdown = asyncio.create_task(closing.wait(), name="events-shutdown")
    try:
        visible = {c.call_id for c in monitor.calls() if monitor.may_view(identity, c)}
        agents = directory(state)
        snapshot = [agents.call_json(c) for c in monitor.calls() if c.call_id in visible]
        await ws.send_json({"type": "snapshot", "calls": snapshot})

        async def forward(event: BusEvent) -> None:
            if isinstance(event, (CallStarted, CallUpdated)):
                if not monitor.may_view(identity, event.call):
                    if event.call.call_id in visible:  # hidden from now on
                        visible.discard(event.call.call_id)
                        await ws.send_json(event_to_json(CallEnded(event.call.call_id, time.time())))
                    return
                visible.add(event.call.call_id)
                await ws.send_json(event_to_json(event, directory(state)))
                return
            if event.call_id not in visible:
                return
            if isinstance(event, CallEnded):
                visible.discard(event.call_id)
            await ws.send_json(event_to_json(event))

        while not ws.closed and not reader.done():
            if closing.is_set():
                while not queue.empty():
                    await forward(queue.get_nowait())
                await ws.close(code=WS_SERVICE_RESTART, message=b"server restarting")
                break
            getter = asyncio.ensure_future(queue.get())
            done, _ = await asyncio.wait(
                {getter, reader, too_slow, shutdown}, timeout=RECHECK_S, return_when=asyncio.FIRST_COMPLETED
            )
            if not await guard(request, ws, SUPERVISOR_ROLES):  # signed out, removed, demoted
                getter.cancel()
                break
            if not done:
                getter.cancel()
                continue
            if overflow.is_set():
                getter.cancel()
                await ws.close(code=WS_TOO_SLOW, message=b"too slow: reconnect for a fresh snapshot")
                break
            if getter not in done:
                getter.cancel()
                if closing.is_set():
                    continue  # send what is queued, then close with 1012
                break
            await forward(getter.result())
    except (ConnectionResetError, asyncio.CancelledError):
        pass
    finally:
        request.app[EVENT_SOCKETS].closing.discard(closing)
        unsubscribe()
        reader.cancel()
        too_slow.cancel()
        shutdown.cancel()
        if not ws.closed:
            await ws.close(code=WSCloseCode.GOING_AWAY, message=b"server shutting down")
    return ws


def _message_type(message: Any) -> str | None:
    """``"ping"`` or ``{"type": "ping", ...}``: the type of a text frame, else ``None``."""
    if message.type != web.WSMsgType.TEXT:
        return None
    try:
        data = json.loads(message.data)
    except (ValueError, RecursionError):
        return None
    if isinstance(data, str):
        return data
    if isinstance(data, dict) and isinstance(data.get("type"), str):
        return str(data["type"])
    return None


async def guard(request: web.Request, ws: web.WebSocketResponse, roles: tuple[Role, ...]) -> bool:
    """Is the socket's session still good and its role still allowed (``require`` again: the
    upgrade was a GET, so no CSRF token is involved)? If not, close it with 4401 or 4403."""
    try:
        require(request, roles)
    except LiveError as exc:
        await ws.close(code=exc.close_code, message=exc.message.encode()[:120])
        return False
    return True


async def _drain_client(ws: web.WebSocketResponse, request: web.Request) -> None:
    """Read what a browser sends: only the message types ``WS_MESSAGES`` lists for this
    socket, each checked against the session and role again before it is answered; anything
    else closes the socket with 4400."""
    allowed = WS_MESSAGES[request.match_info.route.resource.canonical]  # type: ignore[union-attr]
    async for message in ws:
        kind = _message_type(message)
        if kind is None or kind not in allowed:
            await ws.close(code=4400, message=b"unknown message type")
            return
        if not await guard(request, ws, allowed[kind]):
            return
        if kind == "ping":
            await ws.send_json({"type": "pong"})


async def listen(request: web.Request) -> web.Response:
    identity = require(request, (Role.SUPERVISOR,))
    body = await read_json(request)
    if body.get("type", "offer") != "offer":
        raise BadRequest("type must be 'offer'", code="bad_sdp")
    resumes = body.get("resumes")
    if resumes is not None and (
        not isinstance(resumes, str) or not resumes or len(resumes) > MAX_SESSION_ID
    ):
        raise BadRequest("resumes must be the session id of an interrupted listen", code="bad_resumes")
    monitor = request.app[STATE].monitor
    answer, session, legs = await monitor.start_listen(
        identity, request.match_info["call_id"], body.get("sdp"), body.get("purpose"), resumes=resumes
    )
    return web.json_response(
        {
            "sdp": answer,
            "type": "answer",
            "session_id": session.session_id,
            "legs": [
                {
                    "leg": leg,
                    "mid": session.peer.mids.get(leg),
                    "audible": state.audible,
                    "available": state.available,  # false: the telephony does not send it
                    "reason": state.reason,
                }
                for leg, state in legs.items()
            ],
        },
        status=201,
    )


async def stop_listen(request: web.Request) -> web.Response:
    identity = require(request, (Role.SUPERVISOR, Role.ADMIN))
    session = await request.app[STATE].monitor.stop_listen(identity, request.match_info["session_id"])
    return web.json_response(
        {"session_id": session.session_id, "ended": True, "duration_s": round(time.time() - session.started_at, 3)}
    )


async def my_listens(request: web.Request) -> web.Response:
    identity = require(request, (Role.SUPERVISOR, Role.ADMIN))
    sessions = request.app[STATE].monitor.sessions_of(identity)
    return web.json_response(
        {
            "listens": [
                {
                    "session_id": s.session_id,
                    "call_id": s.call_id,
                    "purpose": s.purpose,
                    "started_at": s.started_at,
                    "dropped_packets": sum(q.dropped for q in s.queues.values()),
                }
                for s in sessions
            ]
        }
    )


async def set_consent(request: web.Request) -> web.Response:
    """Record the caller's consent: CTI integrations (admin) and the call's agent freely,
    a supervisor only ``denied`` (the policy's rule, ``live.policy.decide``)."""
    identity = require(request, (Role.ADMIN, Role.AGENT, Role.SUPERVISOR))
    body = await read_json(request)
    value = body.get("consent")
    if not isinstance(value, str) or value not in {c.value for c in Consent}:  # {} is unhashable
        raise BadRequest("consent must be granted, denied or unknown", code="bad_consent")
    call = await request.app[STATE].monitor.change_call(
        identity, request.match_info["call_id"], SetConsent(Consent(value))
    )
    return web.json_response({"call": call_to_json(call)})


async def set_pci(request: web.Request) -> web.Response:
    """Enter or leave a payment pause: CTI (admin) and the call's agent freely, a supervisor
    may only start one (the policy's rule)."""
    identity = require(request, (Role.ADMIN, Role.AGENT, Role.SUPERVISOR))
    body = await read_json(request)
    if not isinstance(body.get("paused"), bool):
        raise BadRequest("paused must be true or false", code="bad_pci")
    call = await request.app[STATE].monitor.change_call(
        identity, request.match_info["call_id"], SetPci(body["paused"])
    )
    return web.json_response({"call": call_to_json(call)})


async def reload_policy(request: web.Request) -> web.Response:
    """Read the policy file again (admin); 400 with the problems keeps the previous policy."""
    identity = require(request, (Role.ADMIN,))
    policy = await request.app[STATE].monitor.reload_policy(actor=identity.user_id)
    return web.json_response({"version": policy.version, "sha256": policy.sha256})


async def close_event_sockets(app: web.Application) -> None:
    """At shutdown: each roster socket sends what it holds (the listens just ended as
    ``shutdown``), then closes with 1012 so consoles know the server is restarting."""
    for closing in list(app[EVENT_SOCKETS].closing):
        closing.set()


def setup(app: web.Application) -> None:
    app[EVENT_SOCKETS] = RosterSockets()
    app.on_shutdown.append(close_event_sockets)
    app.router.add_post("/api/admin/policy/reload", reload_policy)
    app.router.add_get("/api/me", me)
    app.router.add_get("/api/calls", list_calls)
    app.router.add_get("/api/events", events)
    app.router.add_post("/api/calls/{call_id}/listen", listen)
    app.router.add_delete("/api/listens/{session_id}", stop_listen)
    app.router.add_get("/api/listens", my_listens)
    app.router.add_post("/api/calls/{call_id}/consent", set_consent)
    app.router.add_post("/api/calls/{call_id}/pci", set_pci)


__all__ = ["setup", "LiveError"]
