"""``GET /ingest/fork/{kind}``: the L16 WebSocket forks' glue (``live/ingest/fork.py``).

Authentication is that of ``/ingest/twilio`` (``authenticate_ingest``: the ingest secret in
``X-Live-Ingest-Secret`` or a bearer token, or loopback when trusted), plus the two ways these
senders can carry a secret at all: HTTP basic authentication with the secret as password
(jambonz ``listen`` ``wsAuth``), and a ``secret`` query parameter (FreeSWITCH and Vonage set no
headers; the access log never writes query strings). The WebSocket subprotocols jambonz and
mod_audio_fork ask for are accepted (a libwebsockets client drops a connection whose
subprotocol is not confirmed).
"""

from __future__ import annotations

import base64
import binascii
import hmac
import logging
import time
from dataclasses import dataclass, field

from aiohttp import WSCloseCode, WSMsgType, web

from ..errors import LiveError, NotFound
from ..ingest.fork import KINDS, SUBPROTOCOLS, ForkStream
from ..ingest.joined import JoinedCalls
from .ingest import authenticate_ingest, close_reason, ingest_secrets
from .route import INGEST_SOCKET, Route, path_param
from .state import STATE

log = logging.getLogger(__name__)

METADATA_TIMEOUT_S = 10.0  # a fork sends its metadata at once; a silent socket is let go


@dataclass(slots=True)
class ForkCounters:
    connections: int = 0
    protocol_errors: int = 0
    ignored_texts: int = 0
    split_frames: int = 0
    dropped_packets: int = 0


@dataclass(slots=True)
class ForkIngest:
    """This node's fork sockets: one ``JoinedCalls`` (two mono sockets of one call id join)
    and counters per kind for ``/metrics``."""

    calls: JoinedCalls
    counters: dict[str, ForkCounters] = field(default_factory=lambda: {k: ForkCounters() for k in KINDS})

    def metric_lines(self) -> list[str]:
        lines = []
        for name, help_ in (
            ("connections", "fork WebSockets accepted"),
            ("protocol_errors", "fork WebSockets closed for a protocol error"),
            ("ignored_texts", "text frames after the metadata, ignored"),
            ("split_frames", "binary frames that ended inside a sample or stereo frame"),
            ("dropped_packets", "packets dropped because a sender ran ahead of real time"),
        ):
            lines.append(f"# HELP live_fork_{name}_total {help_}")
            lines.append(f"# TYPE live_fork_{name}_total counter")
            lines.extend(
                f'live_fork_{name}_total{{kind="{kind}"}} {getattr(c, name)}' for kind, c in self.counters.items()
            )
        return lines


FORKS: web.AppKey[ForkIngest] = web.AppKey("live_forks", ForkIngest)


def _offered_secret(request: web.Request) -> str:
    auth = request.headers.get("Authorization", "")
    if auth.lower().startswith("basic "):
        try:
            _user, _, password = base64.b64decode(auth[6:].strip(), validate=True).decode().partition(":")
            return password
        except (binascii.Error, ValueError):
            return ""
    return request.query.get("secret", "")


def authenticate_fork(request: web.Request) -> str:
    offered = _offered_secret(request)
    if offered:
        matched = ""
        for name, secret in ingest_secrets(request.app[STATE].settings).items():  # all: no early exit
            if hmac.compare_digest(offered.encode(), secret.encode()):
                matched = name
        if matched:
            return f"secret:{matched}"
    return authenticate_ingest(request)  # headers, loopback; counts and raises when none holds


async def fork(request: web.Request) -> web.WebSocketResponse:
    state = request.app[STATE]
    kind = KINDS.get(request.match_info["kind"])
    if kind is None:
        raise NotFound(f"no fork kind {request.match_info['kind']!r}: {', '.join(KINDS)}", code="unknown_fork")
    how = authenticate_fork(request)
    log.info("%s fork connected (%s)", kind.name, how)
    ws = web.WebSocketResponse(protocols=SUBPROTOCOLS, max_msg_size=state.settings.ingest.max_message, heartbeat=30)
    await ws.prepare(request)
    state.ingest.accepted += 1
    forks = request.app[FORKS]
    counters = forks.counters[kind.name]
    counters.connections += 1
    query = {k: v for k, v in request.query.items() if k != "secret"}
    stream = ForkStream(kind, forks.calls, query)
    counted = (0, 0, 0)
    try:
        while not ws.closed:
            try:
                message = await ws.receive(timeout=METADATA_TIMEOUT_S if stream.state == "new" else None)
            except TimeoutError:
                counters.protocol_errors += 1
                state.ingest.protocol_errors += 1
                await ws.close(code=4408, message=b"no metadata frame")
                break
            try:
                if message.type == WSMsgType.TEXT:
                    await stream.handle_text(message.data)
                elif message.type == WSMsgType.BINARY:
                    await stream.handle_binary(message.data, time.monotonic_ns())
                elif message.type == WSMsgType.ERROR:  # an oversized frame: aiohttp closes with 1009
                    counters.protocol_errors += 1
                    state.ingest.protocol_errors += 1
                    break
                else:  # CLOSE, CLOSING, CLOSED
                    break
            except LiveError as exc:
                counters.protocol_errors += 1
                state.ingest.protocol_errors += 1
                log.warning("%s fork closed: %s", kind.name, exc.message)
                await ws.close(code=exc.close_code, message=close_reason(exc.message))
                break
            # Counted as it happens, so /metrics shows damage on a call still running.
            now = (stream.ignored_texts, stream.split_frames, stream.dropped_packets)
            counters.ignored_texts += now[0] - counted[0]
            counters.split_frames += now[1] - counted[1]
            counters.dropped_packets += now[2] - counted[2]
            counted = now
    finally:
        await stream.close()
        if not ws.closed:
            await ws.close(code=WSCloseCode.OK)
    return ws


def setup(app: web.Application) -> None:
    state = app[STATE]
    app[FORKS] = ForkIngest(JoinedCalls(state.node.calls))
    state.metric_sources.append(app[FORKS].metric_lines)


ROUTES = (
    Route(
        method="GET",
        path="/ingest/fork/{kind}",
        handler=fork,
        rule=INGEST_SOCKET,
        operation_id="ingestFork",
        summary="L16 WebSocket forks in (FreeSWITCH, jambonz, Vonage).",
        tag="ingest",
        description="`kind` is `freeswitch` (mod_audio_fork / mod_audio_stream), `jambonz` (`listen`, "
        "subprotocol `audio.jambonz.org`) or `vonage` (Voice WebSocket). The first text frame "
        "carries the call's metadata, then binary 16-bit little-endian PCM at 8 or 16 kHz: mono "
        "is one leg per socket (`leg`: `agent` or `caller`, default caller; two mono sockets with "
        "one call id are one call), stereo both legs (channel 0 caller, channel 1 agent); `mixed` "
        "closes with 4400. Call id keys: freeswitch `call_id`/`uuid` (metadata or query string), "
        "jambonz `callSid`, vonage `call_id`/`uuid`/`conversation_uuid` (from the endpoint's "
        "headers). Subprotocols `audio.jambonz.org` and `audio.drachtio.org` are accepted. "
        "Authenticated like `/ingest/twilio`, or by the ingest secret as the password of HTTP basic "
        "authentication (jambonz `wsAuth`) or as the `secret` query parameter; otherwise 401. "
        "No metadata within 10 s closes with 4408; an unknown `kind` is 404 `unknown_fork`.",
        params=(path_param("kind", "The fork's protocol.", {"enum": ["freeswitch", "jambonz", "vonage"]}),),
    ),
)
