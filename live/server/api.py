"""The supervisor-facing HTTP API and the roster WebSocket."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import dataclass
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
from .security import check_origin, require
from .state import STATE

log = logging.getLogger(__name__)

MAX_JSON_BODY = 64 * 1024
EVENTS_QUEUE = 256
WS_TOO_SLOW = 4408
RECHECK_S = 5.0  # an idle socket re-checks its session this often
SUPERVISOR_ROLES = (Role.SUPERVISOR, Role.ADMIN)
MAX_PURPOSE = 64  # the longest purpose a policy may list (live.policy.parse)


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


def event_to_json(event: BusEvent) -> dict[str, Any]:
    if isinstance(event, (CallStarted, CallUpdated)):
        return {"type": event.kind, "call": call_to_json(event.call)}
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
    policy = state.node.policy.loaded
    body["purposes"] = list(policy.purposes if policy is not None else state.settings.purposes)
    body["policy_version"] = policy.version if policy is not None else None
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
    node = request.app[STATE].node
    calls = [call_to_json(c) for c in node.calls.calls() if node.policy.may_view(identity, c)]
    return web.json_response({"calls": calls})


async def events(request: web.Request) -> web.WebSocketResponse:
    """Roster WebSocket: a snapshot at once, then every change, in order.

    Only calls the policy lets this person see (``ViewRosterCall``) and events about them."""
    identity = require(request, (Role.SUPERVISOR, Role.ADMIN))
    check_origin(request)
    node = request.app[STATE].node
    ws = web.WebSocketResponse(heartbeat=20, max_msg_size=4096)
    await ws.prepare(request)
    queue: asyncio.Queue[BusEvent] = asyncio.Queue(EVENTS_QUEUE)
    overflow = asyncio.Event()

    def on_event(event: BusEvent) -> None:
        try:
            queue.put_nowait(event)
        except asyncio.QueueFull:
            overflow.set()

    unsubscribe = node.calls.subscribe(on_event)
    reader = asyncio.create_task(_drain_client(ws, request), name="events-reader")
    too_slow = asyncio.create_task(overflow.wait(), name="events-overflow")
    try:
        visible = {c.call_id for c in node.calls.calls() if node.policy.may_view(identity, c)}
        snapshot = [call_to_json(c) for c in node.calls.calls() if c.call_id in visible]
        await ws.send_json({"type": "snapshot", "calls": snapshot})
        while not ws.closed and not reader.done():
            getter = asyncio.ensure_future(queue.get())
            done, _ = await asyncio.wait(
                {getter, reader, too_slow}, timeout=RECHECK_S, return_when=asyncio.FIRST_COMPLETED
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
                break
            event = getter.result()
            if isinstance(event, (CallStarted, CallUpdated)):
                if not node.policy.may_view(identity, event.call):
                    if event.call.call_id in visible:  # hidden from now on
                        visible.discard(event.call.call_id)
                        await ws.send_json(event_to_json(CallEnded(event.call.call_id, time.time())))
                    continue
                visible.add(event.call.call_id)
            elif event.call_id not in visible:
                continue
            elif isinstance(event, CallEnded):
                visible.discard(event.call_id)
            await ws.send_json(event_to_json(event))
    except (ConnectionResetError, asyncio.CancelledError):
        pass
    finally:
        unsubscribe()
        reader.cancel()
        too_slow.cancel()
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


@dataclass(frozen=True, slots=True)
class ListenRequest:
    """The body of ``POST /api/calls/{call_id}/listen``, checked: the browser's offer and
    the purpose (``None`` when none is given; whether it is allowed is the policy's call)."""

    sdp: str
    purpose: str | None


def listen_request(body: dict[str, Any]) -> ListenRequest:
    """Check a listen request's types and sizes; ``BadRequest`` names what is wrong."""
    if body.get("type", "offer") != "offer":
        raise BadRequest("type must be 'offer'", code="bad_sdp")
    sdp = body.get("sdp")
    if not isinstance(sdp, str):
        raise BadRequest("sdp must be a string", code="bad_sdp")
    purpose = body.get("purpose")
    if purpose is not None and not isinstance(purpose, str):
        raise BadRequest("purpose must be a string, one of the policy's purposes", code="purpose_required")
    if purpose is not None and len(purpose) > MAX_PURPOSE:
        # No policy allows a purpose this long (live.policy.parse): refused before the policy.
        raise BadRequest(f"purpose must be at most {MAX_PURPOSE} characters", code="purpose_not_allowed")
    return ListenRequest(sdp, purpose)


async def listen(request: web.Request) -> web.Response:
    identity = require(request, (Role.SUPERVISOR,))
    offer = listen_request(await read_json(request))
    answer, session, legs = await request.app[STATE].node.listens.begin(
        identity, request.match_info["call_id"], offer.sdp, offer.purpose
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
    session = await request.app[STATE].node.listens.end(identity, request.match_info["session_id"])
    return web.json_response(
        {"session_id": session.session_id, "ended": True, "duration_s": round(time.time() - session.started_at, 3)}
    )


async def my_listens(request: web.Request) -> web.Response:
    identity = require(request, (Role.SUPERVISOR, Role.ADMIN))
    sessions = request.app[STATE].node.listens.sessions_of(identity)
    return web.json_response(
        {
            "listens": [
                {
                    "session_id": s.session_id,
                    "call_id": s.call_id,
                    "purpose": s.purpose,
                    "started_at": s.started_at,
                    "dropped_packets": s.dropped,
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
    call = await request.app[STATE].node.calls.change(
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
    call = await request.app[STATE].node.calls.change(
        identity, request.match_info["call_id"], SetPci(body["paused"])
    )
    return web.json_response({"call": call_to_json(call)})


async def reload_policy(request: web.Request) -> web.Response:
    """Read the policy file again (admin); 400 with the problems keeps the previous policy."""
    identity = require(request, (Role.ADMIN,))
    policy = await request.app[STATE].node.policy.reload(actor=identity.user_id)
    return web.json_response({"version": policy.version, "sha256": policy.sha256})


def setup(app: web.Application) -> None:
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
