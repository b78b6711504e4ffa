"""Ingest WebSockets: where telephony platforms stream call audio into ``live``."""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import time
from dataclasses import dataclass

from aiohttp import WSCloseCode, WSMsgType, web

from ..config import Settings
from ..errors import LiveError, Unauthorized
from ..ingest.joined import JoinedCalls
from ..ingest.twilio import TwilioStream
from .route import INGEST_SOCKET, Route
from .security import is_loopback
from .state import STATE

log = logging.getLogger(__name__)


@dataclass(slots=True)
class TwilioIngest:
    """This node's Twilio streams: the calls they feed (split streams of one ``callSid``
    join here) and their order counters for ``/metrics``."""

    calls: JoinedCalls
    reordered_chunks: int = 0
    late_chunks: int = 0

    def metric_lines(self) -> list[str]:
        return [
            "# TYPE live_twilio_streams_joined_total counter",
            f"live_twilio_streams_joined_total {self.calls.joined}",
            "# TYPE live_twilio_chunks_out_of_order_total counter",
            f"live_twilio_chunks_out_of_order_total{{result=\"reordered\"}} {self.reordered_chunks}",
            f"live_twilio_chunks_out_of_order_total{{result=\"dropped\"}} {self.late_chunks}",
        ]


TWILIO: web.AppKey[TwilioIngest] = web.AppKey("live_twilio", TwilioIngest)


def twilio_signature_valid(request: web.Request, auth_token: str) -> bool:
    """``X-Twilio-Signature``: base64(HMAC-SHA1(auth token, full URL)) for a GET upgrade.

    The URL is the one Twilio connected to; behind a proxy that is ``public_url`` with the
    request's path and query, so both spellings (ws/wss vs http/https) are accepted.
    """
    signature = request.headers.get("X-Twilio-Signature", "")
    if not signature or not auth_token:
        return False
    public = request.app[STATE].settings.public_url.rstrip("/") or f"{request.scheme}://{request.host}"
    bases = {public}
    for a, b in (("https://", "wss://"), ("http://", "ws://")):
        if public.startswith(a):
            bases.add(b + public[len(a) :])
    for base in bases:
        expected = base64.b64encode(
            hmac.new(auth_token.encode(), (base + request.path_qs).encode(), hashlib.sha1).digest()
        ).decode()
        if hmac.compare_digest(expected, signature):
            return True
    return False


def ingest_secrets(settings: Settings) -> dict[str, str]:
    """Every accepted ingest secret by the name of its source (``ingest_secrets`` is
    ``sbc-a=secret,sbc-b=secret``; the single ``ingest_secret`` is the source ``default``).
    One secret per sending system, so one can be withdrawn without touching the others."""
    return {name: secret.get_secret_value() for name, secret in settings.ingest.secrets_by_source.items()}


def authenticate_ingest(request: web.Request) -> str:
    """How this sender proved itself (``secret:<source>``, ``twilio-signature``, ``loopback``);
    raises ``Unauthorized`` (and counts it) otherwise."""
    state = request.app[STATE]
    settings = state.settings
    offered = request.headers.get("X-Live-Ingest-Secret", "")
    auth = request.headers.get("Authorization", "")
    if auth.lower().startswith("bearer "):
        offered = offered or auth[7:].strip()
    if offered:
        matched = ""
        for name, secret in ingest_secrets(settings).items():  # compare with all: no early exit
            if hmac.compare_digest(offered.encode(), secret.encode()):
                matched = name
        if matched:
            return f"secret:{matched}"
    if twilio_signature_valid(request, settings.ingest.twilio_auth_token.get_secret_value()):
        return "twilio-signature"
    if settings.ingest.loopback_trust and is_loopback(request):
        return "loopback"
    state.ingest.refused += 1
    raise Unauthorized("ingest needs a shared secret or a valid Twilio signature", code="ingest_unauthenticated")


def close_reason(message: str) -> bytes:
    """A close reason fits in 123 bytes of UTF-8 (RFC 6455 §5.5.1); never cut a character,
    or the peer fails the connection with 1007 instead of reading our close code."""
    return message.encode()[:120].decode("utf-8", "ignore").encode()


async def twilio(request: web.Request) -> web.WebSocketResponse:
    state = request.app[STATE]
    how = authenticate_ingest(request)
    log.info("twilio ingest connected (%s)", how)
    ws = web.WebSocketResponse(max_msg_size=state.settings.ingest.max_message, heartbeat=30)
    await ws.prepare(request)
    state.ingest.accepted += 1
    twilio_ingest = request.app[TWILIO]
    stream = TwilioStream(state.node.calls, source="twilio", calls=twilio_ingest.calls)
    try:
        async for message in ws:
            if message.type == WSMsgType.TEXT:
                rejected, reordered, late = stream.rejected_frames, stream.reordered_chunks, stream.late_chunks
                try:
                    await stream.handle_text(message.data, time.monotonic_ns())
                    # Counted as it happens, so /metrics shows damage on a call still running.
                    state.ingest.rejected_frames += stream.rejected_frames - rejected
                    twilio_ingest.reordered_chunks += stream.reordered_chunks - reordered
                    twilio_ingest.late_chunks += stream.late_chunks - late
                except LiveError as exc:
                    state.ingest.protocol_errors += 1
                    log.warning("twilio ingest closed: %s", exc.message)
                    await ws.close(code=exc.close_code, message=close_reason(exc.message))
                    break
            elif message.type == WSMsgType.BINARY:
                state.ingest.protocol_errors += 1
                await ws.close(code=4400, message=b"Media Streams messages are JSON text")
                break
            elif message.type == WSMsgType.ERROR:
                # aiohttp reports an oversized frame here and closes with 1009.
                state.ingest.protocol_errors += 1
                break
    finally:
        await stream.close()
        if not ws.closed:
            await ws.close(code=WSCloseCode.OK)
    return ws


def setup(app: web.Application) -> None:
    state = app[STATE]
    app[TWILIO] = TwilioIngest(JoinedCalls(state.node.calls))
    state.metric_sources.append(app[TWILIO].metric_lines)


ROUTES = (
    Route(
        method="GET",
        path="/ingest/twilio",
        handler=twilio,
        rule=INGEST_SOCKET,
        operation_id="ingestTwilio",
        summary="Twilio Media Streams in.",
        tag="ingest",
        description="Client to server: Twilio Media Streams JSON text frames (`connected`, `start`, `media`, "
        "`mark`, `stop`). Binary frames close with 4400, a protocol error with 4000 + its status. "
        "Split streams (`<Stream track=\"inbound_track\">` and `track=\"outbound_track\">` for one "
        "`callSid`) are one call with two legs on the node that has the call; a stream whose track "
        "is already sent closes with 4409 `duplicate_call`, one that reaches another node of a "
        "cluster with 4409 `call_on_other_node`. The call ends with its last stream. "
        "Authenticated by the ingest secret (`X-Live-Ingest-Secret` or a bearer token), a valid "
        "`X-Twilio-Signature`, or loopback when trusted; otherwise 401 `ingest_unauthenticated`.",
    ),
)

__all__ = ["ROUTES", "Unauthorized", "setup"]
