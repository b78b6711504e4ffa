"""The supervisor-facing HTTP API and the roster WebSocket."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any

from aiohttp import WSCloseCode, web

from ..errors import LiveError
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
from .bodies import answer
from .roster_json import AgentDirectory
from .route import SUPERVISORS, Reply, Route, Rule, entry_of, path_param, roles, takes
from .schemas import (
    Call,
    CallAnswer,
    Calls,
    ConsentChange,
    IceServer,
    ListenAnswer,
    ListenLeg,
    ListenOffer,
    ListenStopped,
    Me,
    PciChange,
    PolicyInForce,
    RunningListen,
    RunningListens,
)
from .security import check_origin, require
from .state import STATE, ServerState

log = logging.getLogger(__name__)

EVENTS_QUEUE = 256
WS_TOO_SLOW = 4408
RECHECK_S = 5.0  # an idle socket re-checks its session this often
SUPERVISOR_ROLES = (Role.SUPERVISOR, Role.ADMIN)
# RFC 6455 §7.4.1 leaves 1012 to IANA: "Service Restart". The console reads it as "the server
# is restarting" and offers to resume an interrupted listen.
WS_SERVICE_RESTART = 1012


class RosterSockets:
    """The open ``/api/events`` sockets, each by the event that tells it to send what it
    holds and close with 1012 (shutdown)."""

    def __init__(self) -> None:
        self.closing: set[asyncio.Event] = set()


EVENT_SOCKETS = web.AppKey("event_sockets", RosterSockets)


def directory(state: ServerState) -> AgentDirectory:
    return AgentDirectory.read(state.users, state.node.policy.loaded)


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
    policy = state.node.policy.loaded
    return answer(
        Me(
            user_id=identity.user_id,
            display_name=identity.display_name,
            role=identity.role,
            teams=list(identity.teams),
            purposes=list(policy.purposes if policy is not None else state.settings.purposes),
            policy_version=policy.version if policy is not None else None,
            listens_at_once=state.settings.limits.listens_per_supervisor,
            ice_servers=[
                IceServer(**{k: v for k, v in (("urls", s.urls), ("username", s.username), ("credential", s.credential)) if v})
                for s in state.settings.ice_servers
            ],
            csrf_token=state.sessions.csrf_token(identity.session_id) if identity.via == "session" else None,
        )
    )


async def list_calls(request: web.Request) -> web.Response:
    identity = require(request, (Role.SUPERVISOR, Role.ADMIN))
    state = request.app[STATE]
    node = state.node
    agents = directory(state)
    calls = [Call.model_validate(agents.call_json(c)) for c in node.calls.calls() if node.policy.may_view(identity, c)]
    return answer(Calls(calls=calls))


async def events(request: web.Request) -> web.WebSocketResponse:
    """Roster WebSocket: a snapshot at once, then every change, in order.

    Only calls the policy lets this person see (``ViewRosterCall``) and events about them.
    At shutdown the socket sends what it holds, then closes with 1012 (service restart)."""
    identity = require(request, (Role.SUPERVISOR, Role.ADMIN))
    state = request.app[STATE]
    node = state.node
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
    closing = asyncio.Event()
    request.app[EVENT_SOCKETS].closing.add(closing)
    shutdown = asyncio.create_task(closing.wait(), name="events-shutdown")
    try:
        visible = {c.call_id for c in node.calls.calls() if node.policy.may_view(identity, c)}
        agents = directory(state)
        snapshot = [agents.call_json(c) for c in node.calls.calls() if c.call_id in visible]
        await ws.send_json({"type": "snapshot", "calls": snapshot})

        async def forward(event: BusEvent) -> None:
            if isinstance(event, (CallStarted, CallUpdated)):
                if not node.policy.may_view(identity, event.call):
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
    """Read what a browser sends: only the message types this socket's route lists
    (``Route.messages``), each checked against the session and role again before it is
    answered; anything else closes the socket with 4400."""
    entry = entry_of(request)
    allowed = entry.messages if isinstance(entry, Route) else {}
    async for message in ws:
        kind = _message_type(message)
        if kind is None or kind not in allowed:
            await ws.close(code=4400, message=b"unknown message type")
            return
        if not await guard(request, ws, allowed[kind]):
            return
        if kind == "ping":
            await ws.send_json({"type": "pong"})


async def listen(request: web.Request, body: ListenOffer) -> web.Response:
    identity = require(request, (Role.SUPERVISOR,))
    sdp, session, legs = await request.app[STATE].node.listens.begin(
        identity, request.match_info["call_id"], body.sdp, body.purpose, resumes=body.resumes
    )
    return answer(
        ListenAnswer(
            sdp=sdp,
            type="answer",
            session_id=session.session_id,
            legs=[
                ListenLeg(
                    leg=leg,
                    mid=session.peer.mids.get(leg),
                    audible=state.audible,
                    available=state.available,  # false: the telephony does not send it
                    reason=state.reason,
                )
                for leg, state in legs.items()
            ],
        ),
        status=201,
    )


async def stop_listen(request: web.Request) -> web.Response:
    identity = require(request, (Role.SUPERVISOR, Role.ADMIN))
    session = await request.app[STATE].node.listens.end(identity, request.match_info["session_id"])
    return answer(
        ListenStopped(session_id=session.session_id, ended=True, duration_s=round(time.time() - session.started_at, 3))
    )


async def my_listens(request: web.Request) -> web.Response:
    identity = require(request, (Role.SUPERVISOR, Role.ADMIN))
    sessions = request.app[STATE].node.listens.sessions_of(identity)
    return answer(
        RunningListens(
            listens=[
                RunningListen(
                    session_id=s.session_id,
                    call_id=s.call_id,
                    purpose=s.purpose,
                    started_at=s.started_at,
                    dropped_packets=sum(q.dropped for q in s.queues.values()),
                )
                for s in sessions
            ]
        )
    )


async def set_consent(request: web.Request, body: ConsentChange) -> web.Response:
    """Record the caller's consent: CTI integrations (admin) and the call's agent freely,
    a supervisor only ``denied`` (the policy's rule, ``live.policy.decide``)."""
    identity = require(request, (Role.ADMIN, Role.AGENT, Role.SUPERVISOR))
    call = await request.app[STATE].node.calls.change(
        identity, request.match_info["call_id"], SetConsent(Consent(body.consent))
    )
    return answer(CallAnswer(call=Call.model_validate(call_to_json(call))))


async def set_pci(request: web.Request, body: PciChange) -> web.Response:
    """Enter or leave a payment pause: CTI (admin) and the call's agent freely, a supervisor
    may only start one (the policy's rule)."""
    identity = require(request, (Role.ADMIN, Role.AGENT, Role.SUPERVISOR))
    call = await request.app[STATE].node.calls.change(
        identity, request.match_info["call_id"], SetPci(body.paused)
    )
    return answer(CallAnswer(call=Call.model_validate(call_to_json(call))))


async def reload_policy(request: web.Request) -> web.Response:
    """Read the policy file again (admin); 400 with the problems keeps the previous policy."""
    identity = require(request, (Role.ADMIN,))
    policy = await request.app[STATE].node.policy.reload(actor=identity.user_id)
    return answer(PolicyInForce(version=policy.version, sha256=policy.sha256))


async def close_event_sockets(app: web.Application) -> None:
    """At shutdown: each roster socket sends what it holds (the listens just ended as
    ``shutdown``), then closes with 1012 so consoles know the server is restarting."""
    for closing in list(app[EVENT_SOCKETS].closing):
        closing.set()


def setup(app: web.Application) -> None:
    """The roster sockets' registry, closed at shutdown (the routes come from ``ROUTES``)."""
    app[EVENT_SOCKETS] = RosterSockets()
    app.on_shutdown.append(close_event_sockets)


CALL_ID = path_param("call_id", "A live call's id, as in `GET /api/calls`.")
CALL_STATE = roles(Role.ADMIN, Role.AGENT, Role.SUPERVISOR)

ROUTES = (
    Route(
        method="GET",
        path="/api/me",
        handler=me,
        rule=Rule("signed_in"),
        operation_id="me",
        summary="Who is signed in, and what the console needs.",
        tag="supervisors",
        replies=(Reply(200, "OK", Me),),
    ),
    Route(
        method="GET",
        path="/api/calls",
        handler=list_calls,
        rule=roles(*SUPERVISORS),
        operation_id="listCalls",
        summary="The live calls the policy lets the caller see.",
        tag="supervisors",
        replies=(Reply(200, "OK", Calls),),
    ),
    Route(
        method="GET",
        path="/api/events",
        handler=events,
        rule=roles(*SUPERVISORS, websocket=True),
        operation_id="rosterEvents",
        summary="Roster changes, live.",
        tag="supervisors",
        description="Server to client: `{\"type\":\"snapshot\",\"calls\":[Call]}` at once, then "
        "`call.started` / `call.updated` (`{type, call}`), `call.ended` (`{type, call_id}`), "
        "`listen.started` (`{type, call_id, legs, listener}`), `listen.ended` "
        "(`{type, call_id, session_id, reason}`), and `{\"type\":\"pong\"}` for a ping.\n\n"
        "Client to server: only `\"ping\"` or `{\"type\":\"ping\"}`; anything else closes "
        "with 4400. Closes with 4401 / 4403 when the session ends or the role no longer "
        "allows it, 4408 when the client reads too slowly. A foreign `Origin` is refused (403).",
        checks=(check_origin,),
        messages={"ping": SUPERVISORS},
    ),
    Route(
        method="POST",
        path="/api/calls/{call_id}/listen",
        handler=takes(ListenOffer, listen),
        rule=roles(Role.SUPERVISOR, listen=True),  # admins administer, they do not listen
        operation_id="listen",
        summary="Start listening: WebRTC offer in, answer out.",
        tag="supervisors",
        description="Refusals are put on record. 400 `bad_sdp` / `purpose_required` / "
        "`purpose_not_allowed`, 403 with the policy's reason, 404 `unknown_call`, 410 "
        "`call_ended`, 503 `ledger_unavailable` (fail closed).",
        params=(CALL_ID,),
        replies=(Reply(201, "Listening: the start is on record in the ledger.", ListenAnswer),),
        errors=(404, 410, 503),
        limit="listen",
    ),
    Route(
        method="DELETE",
        path="/api/listens/{session_id}",
        handler=stop_listen,
        rule=roles(*SUPERVISORS),
        operation_id="stopListen",
        summary="Stop a listen session.",
        tag="supervisors",
        description="The listener, or an admin. 404 `unknown_session` (not on this node).",
        params=(path_param("session_id", "The listen session's id."),),
        replies=(Reply(200, "OK", ListenStopped),),
        errors=(404,),
    ),
    Route(
        method="GET",
        path="/api/listens",
        handler=my_listens,
        rule=roles(*SUPERVISORS),
        operation_id="myListens",
        summary="The caller's own running listen sessions.",
        tag="supervisors",
        replies=(Reply(200, "OK", RunningListens),),
    ),
    # Call state: CTI integrations (admin tokens), the call's agent, supervisors (the policy
    # narrows what each may change).
    Route(
        method="POST",
        path="/api/calls/{call_id}/consent",
        handler=takes(ConsentChange, set_consent),
        rule=CALL_STATE,
        operation_id="setConsent",
        summary="Record the caller's consent.",
        tag="calls",
        description="CTI (admin) and the call's agent freely; a supervisor only `denied`.",
        params=(CALL_ID,),
        replies=(Reply(200, "The call as it is now.", CallAnswer),),
        errors=(404,),
    ),
    Route(
        method="POST",
        path="/api/calls/{call_id}/pci",
        handler=takes(PciChange, set_pci),
        rule=CALL_STATE,
        operation_id="setPci",
        summary="Enter or leave a payment (PCI) pause.",
        tag="calls",
        description="CTI (admin) and the call's agent freely; a supervisor may only start one.",
        params=(CALL_ID,),
        replies=(Reply(200, "The call as it is now.", CallAnswer),),
        errors=(404,),
    ),
    Route(
        method="POST",
        path="/api/admin/policy/reload",
        handler=reload_policy,
        rule=roles(Role.ADMIN),
        operation_id="reloadPolicy",
        summary="Read the monitoring policy file again.",
        tag="admin",
        description="400 `bad_policy` with `problems`: the previous policy stays in force.",
        replies=(Reply(200, "The policy now in force.", PolicyInForce),),
        errors=(400,),
    ),
)
