"""One AudioHook WebSocket: the protocol's state machine, between the parser and the call.

States: ``new`` (waiting for ``open``) → ``active`` ⇄ ``paused`` → ``closing`` (we sent
``disconnect`` and wait for the client's ``close``) → ``closed`` (we sent ``closed``).

* Sequence numbers: a client message's ``seq`` is the previous one plus 1, its ``serverseq``
  at most our last ``seq``, its ``id`` the session's (``Audiohook-Session-Id``). Our messages
  count ``seq`` from 1 and carry ``clientseq`` = the last client ``seq``.
* ``position`` is tracked (audio received plus audio discarded) and compared with the
  client's; a difference is counted, never fatal (clocks and rounding differ).
* A connection probe (``conversationId`` all zeros) is answered with ``opened`` and creates
  no call; the client then closes. If it does not, we ``disconnect`` (``completed``).
* A violation (malformed JSON, wrong ``seq``, audio before ``open``, a second ``open``, bad
  parameters) sends ``disconnect`` (``error``, with the reason in ``info``) and ends the call;
  the client answers ``close``, we answer ``closed``. A client that does not close within
  ``CLOSE_WAIT_S`` is cut off. Damaged audio frames (not whole samples of every channel,
  longer than ``MAX_FRAME_S``) are dropped and counted; the call goes on. Unknown message
  types are counted and ignored.
* Audio: interleaved frames are split per channel; PCMU is forwarded as it is, L16 encoded
  once per leg (``media.pcm``); the call's pacers cut it into 20 ms packets at real time.
  ``discarded`` and ``resumed`` advance the legs' timestamps over the span the client dropped.

The session never touches the socket: it hands JSON text to ``send`` (the server glue writes
it) and says when it is ``finished``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from ..errors import LiveError, ProtocolError
from ..media.pcm import L16Encoder, split_channels
from ..types import CallId, Consent, LegName
from .audiohook import (
    NULL_UUID,
    ClientError,
    ClientMessage,
    Close,
    Discarded,
    MediaFormat,
    Open,
    Paused,
    Ping,
    Resumed,
    Unknown,
    Update,
    parse_message,
    select_media,
    server_message,
)
from .audiohook_calls import AudioHookCall, AudioHookCalls
from .sink import CallAnnouncement

log = logging.getLogger(__name__)

SessionState = Literal["new", "active", "paused", "closing", "closed"]

CLOSE_WAIT_S = 5.0  # after our disconnect, how long the client has to send close
PROBE_WAIT_S = 10.0  # after opened on a probe, how long before we disconnect it ourselves
MAX_FRAME_S = 1.0  # a longer audio frame is damaged: the reference client sends 200 ms
POSITION_TOLERANCE_NS = 1_000_000_000
MAX_ATTRIBUTES = 20


@dataclass(frozen=True, slots=True)
class Handshake:
    """What the WebSocket upgrade request said (headers), already authenticated."""

    organization_id: str = ""
    session_id: str = ""
    correlation_id: str = ""


@dataclass(frozen=True, slots=True)
class CallKeys:
    """Which ``customConfig`` (or ``participant``) keys carry the call's agent, queue and
    caller consent (settings ``audiohook_agent_key``, ``_queue_key``, ``_consent_key``)."""

    agent: str = "agentId"
    queue: str = "queue"
    consent: str = "consent"


class AudioHookSession:
    def __init__(
        self,
        calls: AudioHookCalls,
        send: Callable[[str], None],
        handshake: Handshake = Handshake(),
        keys: CallKeys = CallKeys(),
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.calls = calls
        self.counters = calls.counters
        self._send_text = send
        self.handshake = handshake
        self.keys = keys
        self._clock = clock
        self.state: SessionState = "new"
        self.session_id = handshake.session_id
        self.seq = 0  # our last seq
        self.clientseq = 0  # the client's last seq
        self.position_ns = 0  # audio received plus audio discarded
        self.media: MediaFormat | None = None
        self.call: AudioHookCall | None = None
        self.probe = False
        self.paused_by_us = False
        self.close_code = 1000
        self._deadline: float | None = None
        self._encoders: dict[LegName, L16Encoder] = {}
        self.counters.sessions += 1

    # --- what the server glue asks --------------------------------------------------------

    @property
    def finished(self) -> bool:
        """The session is over: the glue closes the socket once ``send`` has been written."""
        return self.state == "closed"

    def wait_s(self) -> float | None:
        """How long to wait for the next client message before ``deadline_passed``."""
        if self._deadline is None:
            return None
        return max(0.0, self._deadline - self._clock())

    async def deadline_passed(self) -> None:
        self._deadline = None
        if self.state == "closing":
            log.info("audiohook session %s did not close after disconnect; cutting it off", self.session_id)
            self.close_code = 4408
            self.state = "closed"
        elif self.probe and self.state in ("active", "paused"):
            await self._disconnect("completed", "connection probe answered")

    def request_reconnect(self, info: str) -> None:
        """Ask the client to move this conversation to a new session (we are going away)."""
        if self.call is not None and self.state in ("active", "paused"):
            self._send("reconnect", {"info": info})
            self.counters.reconnects_sent += 1

    async def connection_lost(self) -> None:
        """The socket is gone (however): detach from the call; safe to call twice."""
        call, self.call = self.call, None
        abrupt = self.state != "closed"
        self.state = "closed"
        if call is not None:
            # A session that vanished without closing may come back as a continued session.
            await self.calls.detach(self, call, linger=abrupt)

    def set_flow(self, audible: bool) -> None:
        """Called by the call when the gate may have changed: pause or resume the client."""
        if self.state not in ("active", "paused"):
            return
        if not audible and not self.paused_by_us and self.state == "active":
            self.paused_by_us = True
            self.counters.pauses_sent += 1
            self._send("pause", {})
        elif audible and self.paused_by_us:
            self.paused_by_us = False
            self.counters.resumes_sent += 1
            self._send("resume", {})

    # --- messages -------------------------------------------------------------------------

    async def handle_text(self, text: str | bytes, arrived_ns: int) -> None:
        if self.state == "closed":
            return
        try:
            message = parse_message(text)
        except ProtocolError as exc:
            if self.state != "closing":
                await self._fail(exc.message)
            return
        if self.state == "closing":
            # Only the client's close matters now; its seq is echoed but not judged again.
            self.clientseq = message.seq
            if isinstance(message.body, Close):
                await self._closed(message.body)
            return
        if message.seq != self.clientseq + 1:
            await self._fail(f"seq {message.seq} after {self.clientseq}: must increase by 1")
            return
        self.clientseq = message.seq
        if message.serverseq > self.seq:
            await self._fail(f"serverseq {message.serverseq} is ahead of ours ({self.seq})")
            return
        if not self.session_id:
            self.session_id = message.id
        elif message.id.lower() != self.session_id.lower():
            await self._fail("message id is not this session's id (Audiohook-Session-Id)")
            return
        if abs(message.position_ns - self.position_ns) > POSITION_TOLERANCE_NS and self.state != "new":
            self.counters.position_mismatches += 1
        await self._dispatch(message)

    async def _dispatch(self, message: ClientMessage) -> None:
        body = message.body
        if isinstance(body, Open):
            await self._open(body)
        elif self.state == "new" and not isinstance(body, (Ping, Close, ClientError, Unknown)):
            await self._fail(f"{message.type} before open")
        elif isinstance(body, Ping):
            self._send("pong", {})
        elif isinstance(body, Update):
            self._send("updated", {})
        elif isinstance(body, Paused):
            if self.state == "active":
                self.state = "paused"
        elif isinstance(body, Resumed):
            if self.state == "paused":
                self.state = "active"
            self._discarded(body.discarded_ns)
            if self.call is not None:
                self.call.sync_gate()
        elif isinstance(body, Discarded):
            self._discarded(body.discarded_ns)
        elif isinstance(body, ClientError):
            self.counters.client_errors += 1
            log.warning("audiohook client error %d in session %s: %s", body.code, self.session_id, body.message)
        elif isinstance(body, Close):
            await self._closed(body)
        else:
            self.counters.ignored_messages += 1

    async def handle_binary(self, data: bytes, arrived_ns: int) -> None:
        if self.state == "new":
            await self._fail("audio before open")
            return
        media, call = self.media, self.call
        if media is None or call is None or self.state in ("closing", "closed"):
            self.counters.ignored_audio += 1  # a probe's audio, or audio after disconnect
            return
        frame = media.frame_bytes
        samples = len(data) // frame if frame else 0
        if not data or len(data) % frame or samples > MAX_FRAME_S * media.rate:
            self.counters.rejected_frames += 1
            return
        self.position_ns += samples * 1_000_000_000 // media.rate
        if not call.forwards(self):
            self.counters.ignored_audio += 1  # a newer session carries this conversation
            return
        channels = split_channels(data, len(media.channels), frame // len(media.channels))
        for leg, samples_of_leg in zip(media.legs, channels):
            encoder = self._encoders.get(leg)
            call.push(leg, encoder.encode(samples_of_leg) if encoder else samples_of_leg, arrived_ns)
        call.sync_gate()

    # --- transactions ---------------------------------------------------------------------

    async def _open(self, body: Open) -> None:
        if self.state != "new":
            await self._fail("a second open in one session")
            return
        header_org = self.handshake.organization_id.lower()
        if header_org and body.organization_id.lower() != header_org:
            await self._disconnect("unauthorized", "organizationId differs from Audiohook-Organization-Id")
            return
        media = select_media(body.media)
        if body.probe:
            self.probe = True
            self.counters.probes += 1
            self.state = "active"
            self._send("opened", {"media": [media.to_json()] if media else [], "startPaused": False})
            self._deadline = self._clock() + PROBE_WAIT_S
            return
        if media is None:
            await self._disconnect(
                "error", "none of the offered media can be forwarded: PCMU at 8000 Hz or L16 at 8000/16000 Hz, "
                "channels external and/or internal"
            )
            return
        announcement = self._announcement(body, media)
        try:
            call = await self.calls.attach(
                self, announcement, body.organization_id.lower(), tuple(s.id.lower() for s in body.continued_sessions)
            )
        except LiveError as exc:
            await self._disconnect("error", exc.message)
            return
        self.media, self.call = media, call
        if media.format == "L16":
            self._encoders = {leg: L16Encoder(media.rate) for leg in media.legs}
        start_paused = not call.audible()
        self.paused_by_us = start_paused
        self.state = "paused" if start_paused else "active"
        self._send("opened", {"media": [media.to_json()], "startPaused": start_paused})
        if start_paused:
            self.counters.pauses_sent += 1

    def _announcement(self, body: Open, media: MediaFormat) -> CallAnnouncement:
        config, participant = body.custom_config, body.participant

        def pick(key: str) -> str:
            return (config.get(key) or participant.get(key) or "").strip()[:200]

        known = {self.keys.agent, self.keys.queue, self.keys.consent, "private", "secret"}
        attributes = {k[:64]: v[:200] for k, v in config.items() if k not in known}
        attributes = dict(list(attributes.items())[:MAX_ATTRIBUTES])
        attributes["organization_id"] = body.organization_id
        if body.language:
            attributes["language"] = body.language[:32]
        if participant.get("dnis"):
            attributes["dnis"] = participant["dnis"][:64]
        return CallAnnouncement(
            call_id=CallId(body.call_id),
            source="audiohook",
            agent_id=pick(self.keys.agent),
            consent=Consent.parse(pick(self.keys.consent) or None),
            codec="PCMU",
            queue=pick(self.keys.queue),
            private=pick("private").lower() in ("1", "true", "yes"),
            attributes=attributes,
            legs=media.legs,
        )

    def _discarded(self, discarded_ns: int) -> None:
        self.position_ns += discarded_ns
        if self.call is not None and self.call.forwards(self):
            self.call.gap(discarded_ns * 8000 // 1_000_000_000)

    async def _closed(self, body: Close) -> None:
        self._send("closed", {})
        call, self.call = self.call, None
        self.state = "closed"
        if call is not None:
            await self.calls.detach(self, call, linger=body.reason == "reconnect")

    async def _fail(self, info: str) -> None:
        """A protocol violation: count it, disconnect with the reason."""
        self.counters.protocol_errors += 1
        log.warning("audiohook session %s: %s", self.session_id or "(no id yet)", info)
        self.close_code = 4400
        await self._disconnect("error", info)

    async def _disconnect(self, reason: str, info: str) -> None:
        """We end the session: ``disconnect``, end the call, wait for the client's ``close``."""
        self._send("disconnect", {"reason": reason, "info": info[:500]})
        self.state = "closing"
        self._deadline = self._clock() + CLOSE_WAIT_S
        call, self.call = self.call, None
        if call is not None:
            await self.calls.detach(self, call, linger=False)

    def _send(self, kind: str, parameters: dict[str, Any]) -> None:
        self.seq += 1
        session_id = self.session_id or NULL_UUID  # a first message too broken to have an id
        self._send_text(server_message(kind, session_id, self.seq, self.clientseq, parameters))
