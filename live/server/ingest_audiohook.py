"""Genesys Cloud AudioHook in: ``GET /ingest/audiohook`` (WebSocket, protocol version 2).

Authentication happens at the handshake, before the upgrade (a refusal is a JSON 401 like
the other ingest routes, logged with the sender's address and never with a key or secret):

* ``X-API-KEY`` must be one of ``LIVE_AUDIOHOOK_API_KEYS`` (``name=key,…``; compared with
  every key, in constant time);
* when ``LIVE_AUDIOHOOK_CLIENT_SECRETS`` (``name=base64secret,…``) has a secret for that key's
  name, the request must carry a valid HTTP message signature (``live.ingest.httpsig``:
  RFC 9421, HMAC-SHA256, Genesys's covered components, ``created``/``expires`` within
  ``MAX_CLOCK_SKEW_S`` = 5 s, at most 60 s old, each ``nonce`` once);
* with ``LIVE_INGEST_LOOPBACK_TRUST`` (demo, tests), a sender on loopback that presents *no*
  key is let in, as ``authenticate_ingest`` lets in a loopback sender without a secret; a key
  or signature that is presented is always judged.

The WebSocket loop feeds ``AudioHookSession`` and writes what it answers through one writer
task per socket (the session may speak on its own: ``pause`` when the policy silences the
call). At shutdown every session is asked to ``reconnect`` (to another node), and the
calls end.
"""

from __future__ import annotations

import asyncio
import base64
import hmac
import logging
import time
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

from aiohttp import WSMsgType, web

from ..config import Settings
from ..errors import Unauthorized
from ..ingest import httpsig
from ..ingest.audiohook_calls import AudioHookCalls
from ..ingest.audiohook_session import AudioHookSession, CallKeys, Handshake
from ..model import CallUpdated
from .route import INGEST_SOCKET, Route
from .security import is_loopback
from .state import STATE

log = logging.getLogger(__name__)

CLOSE_FLUSH_S = 2.0  # how long the last messages (closed, disconnect) may take to be written


class AudioHookAuth:
    """The handshake check: API key, then the signature where a client secret is set."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.keys = {name: key.get_secret_value() for name, key in settings.audiohook.api_keys.items()}
        self.secrets = {  # base64 and key names checked by the settings
            name: base64.b64decode(secret.get_secret_value())
            for name, secret in settings.audiohook.client_secrets.items()
        }
        self.nonces = httpsig.NonceCache()
        self.refused: dict[str, int] = {}
        public = urlsplit(settings.public_url) if settings.public_url else None
        self._public_authority = public.netloc if public else ""

    def authenticate(self, request: web.Request) -> str:
        """How the sender proved itself (``key:<name>``, ``signature:<name>``, ``loopback``)."""
        offered = request.headers.get("X-API-KEY", "")
        if not offered:
            if self.settings.ingest.loopback_trust and is_loopback(request):
                return "loopback"
            self._refuse(request, "no_api_key", "AudioHook needs an X-API-KEY")
        matched = ""
        for name, key in self.keys.items():  # compare with all: no early exit
            if hmac.compare_digest(offered.encode(), key.encode()):
                matched = name
        if not matched:
            self._refuse(request, "bad_api_key", "unknown X-API-KEY")
        secret = self.secrets.get(matched)
        if secret is None:
            return f"key:{matched}"
        try:
            self._verify_signature(request, offered, secret)
        except httpsig.SignatureError as exc:
            self._refuse(request, "bad_signature", exc.message)
        return f"signature:{matched}"

    def _verify_signature(self, request: web.Request, api_key: str, secret: bytes) -> None:
        signature_input = ", ".join(request.headers.getall("Signature-Input", []))
        signature = ", ".join(request.headers.getall("Signature", []))
        if not signature_input or not signature:
            raise httpsig.SignatureError("the request is not signed (Signature-Input, Signature)")
        parsed, mac = httpsig.parse_signature_headers(signature_input, signature)
        fields = {name.lower(): ", ".join(request.headers.getall(name)) for name in set(request.headers.keys())}
        now = time.time()
        verified: httpsig.Verified | None = None
        last: httpsig.SignatureError | None = None
        # The authority the client connected to: the Host it sent, or (behind a proxy that
        # rewrites Host) the public URL's.
        for authority in dict.fromkeys(a for a in (request.host, self._public_authority) if a):
            parts = httpsig.RequestParts(request.method, authority, request.raw_path, fields)
            try:
                verified = httpsig.verify(parsed, mac, parts, secret=secret, api_key=api_key, now=now)
                break
            except httpsig.SignatureError as exc:
                last = exc
        if verified is None:
            assert last is not None
            raise last
        self.nonces.use(verified.keyid, verified.nonce, verified.valid_until, now)

    def _refuse(self, request: web.Request, reason: str, message: str) -> None:
        state = request.app[STATE]
        state.ingest.refused += 1
        self.refused[reason] = self.refused.get(reason, 0) + 1
        log.warning(
            "audiohook connection refused from %s: %s", state.limits.client_address(request), message
        )
        raise Unauthorized(message, code="ingest_unauthenticated")


class AudioHookIngest:
    """Per application: the handshake check, the calls, the sessions open now."""

    def __init__(self, auth: AudioHookAuth, calls: AudioHookCalls, keys: CallKeys) -> None:
        self.auth = auth
        self.calls = calls
        self.keys = keys
        self.sessions: set[AudioHookSession] = set()

    def metrics(self) -> list[str]:
        c = self.calls.counters
        lines = [
            "# TYPE live_audiohook_sessions gauge",
            f"live_audiohook_sessions {len(self.sessions)}",
            "# TYPE live_audiohook_calls gauge",
            f"live_audiohook_calls {len(self.calls.calls)}",
            "# TYPE live_audiohook_events_total counter",
        ]
        for name in (
            "sessions", "probes", "calls_started", "calls_continued", "protocol_errors", "rejected_frames",
            "ignored_messages", "ignored_audio", "client_errors", "pauses_sent", "resumes_sent",
            "reconnects_sent", "position_mismatches",
        ):
            lines.append(f'live_audiohook_events_total{{event="{name}"}} {getattr(c, name)}')
        lines.append("# TYPE live_audiohook_refused_total counter")
        for reason in ("no_api_key", "bad_api_key", "bad_signature"):
            lines.append(f'live_audiohook_refused_total{{reason="{reason}"}} {self.auth.refused.get(reason, 0)}')
        lines.append("# TYPE live_audiohook_paced_dropped_total counter")
        lines.append(f"live_audiohook_paced_dropped_total {self.calls.dropped}")
        return lines


AUDIOHOOK: web.AppKey[AudioHookIngest] = web.AppKey("live_audiohook", AudioHookIngest)


class _Writer:
    """Writes a session's messages in order, from one task per socket."""

    def __init__(self, ws: web.WebSocketResponse) -> None:
        self.ws = ws
        self.queue: asyncio.Queue[str | None] = asyncio.Queue()
        self.task = asyncio.get_running_loop().create_task(self._run(), name="audiohook-writer")

    def send(self, text: str) -> None:
        self.queue.put_nowait(text)

    async def _run(self) -> None:
        while (text := await self.queue.get()) is not None:
            try:
                await self.ws.send_str(text)
            except (ConnectionError, RuntimeError):
                return  # the socket is gone; the reader sees it too

    async def aclose(self) -> None:
        self.queue.put_nowait(None)
        try:
            await asyncio.wait_for(self.task, CLOSE_FLUSH_S)
        except (TimeoutError, asyncio.CancelledError):
            self.task.cancel()


async def audiohook(request: web.Request) -> web.WebSocketResponse:
    state = request.app[STATE]
    ingest = request.app[AUDIOHOOK]
    how = ingest.auth.authenticate(request)
    handshake = Handshake(
        organization_id=request.headers.get("Audiohook-Organization-Id", "").strip(),
        session_id=request.headers.get("Audiohook-Session-Id", "").strip(),
        correlation_id=request.headers.get("Audiohook-Correlation-Id", "").strip(),
    )
    log.info("audiohook session %s connected (%s)", handshake.session_id or "(no id)", how)
    ws = web.WebSocketResponse(max_msg_size=state.settings.ingest.max_message, heartbeat=30)
    await ws.prepare(request)
    state.ingest.accepted += 1
    writer = _Writer(ws)
    session = AudioHookSession(ingest.calls, writer.send, handshake, ingest.keys)
    ingest.sessions.add(session)
    try:
        while not session.finished:
            try:
                message = await ws.receive(timeout=session.wait_s())
            except TimeoutError:
                await session.deadline_passed()
                continue
            if message.type == WSMsgType.TEXT:
                await session.handle_text(message.data, time.monotonic_ns())
            elif message.type == WSMsgType.BINARY:
                await session.handle_binary(message.data, time.monotonic_ns())
            elif message.type == WSMsgType.ERROR:
                # aiohttp reports an oversized frame here and closes with 1009.
                ingest.calls.counters.protocol_errors += 1
                state.ingest.protocol_errors += 1
                break
            else:  # CLOSE, CLOSING, CLOSED: the client went away
                break
    finally:
        ingest.sessions.discard(session)
        await session.connection_lost()
        await writer.aclose()
        if not ws.closed:
            await ws.close(code=session.close_code)
    return ws


def setup(app: web.Application) -> None:
    state = app[STATE]
    settings = state.settings
    auth = AudioHookAuth(settings)
    calls = AudioHookCalls(state.node.calls, linger_s=float(settings.audiohook.reconnect_grace_s))
    keys = CallKeys(settings.audiohook.agent_key, settings.audiohook.queue_key, settings.audiohook.consent_key)
    ingest = AudioHookIngest(auth, calls, keys)
    app[AUDIOHOOK] = ingest
    state.metric_sources.append(ingest.metrics)

    async def on_shutdown(app: web.Application) -> None:
        for session in list(ingest.sessions):
            session.request_reconnect("server shutting down")

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        # Registered after the monitor's: runs while the monitor and its bus are up.
        def on_event(event: object) -> None:
            if isinstance(event, CallUpdated):
                calls.gate_changed(event.call.call_id)

        unsubscribe = state.node.calls.subscribe(on_event)
        yield
        unsubscribe()
        await calls.aclose()

    app.on_shutdown.append(on_shutdown)
    app.cleanup_ctx.append(lifecycle)


ROUTES = (
    Route(
        method="GET",
        path="/ingest/audiohook",
        handler=audiohook,
        rule=INGEST_SOCKET,
        operation_id="ingestAudiohook",
        summary="Genesys Cloud AudioHook (protocol version 2) in.",
        tag="ingest",
        description="Client to server: AudioHook JSON text messages (`open`, `ping`, `paused`, `resumed`, "
        "`update`, `discarded`, `error`, `close`) and binary frames of interleaved PCMU or L16 "
        "audio (`external` = caller, `internal` = agent). Server to client: `opened`, `pong`, "
        "`pause`, `resume`, `updated`, `disconnect`, `reconnect`, `closed`. Authenticated at the "
        "handshake by `X-API-KEY` (`LIVE_AUDIOHOOK_API_KEYS`) and, where a client secret is "
        "configured, the HTTP message signature (`Signature-Input`, `Signature`; RFC 9421, "
        "HMAC-SHA256, 5 s clock skew, each nonce once); otherwise 401 `ingest_unauthenticated`. "
        "With `LIVE_INGEST_LOOPBACK_TRUST` a loopback sender that presents no key is let in. "
        "An all-zero `conversationId` is a connection probe (answered, no call). Audio of any "
        "frame length is paced to listeners as 20 ms packets.",
    ),
)
